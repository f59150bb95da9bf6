"""A real OpenID Connect issuer on 127.0.0.1 for the auth tests (this module holds no tests).

It serves a discovery document and the JWKS of keys generated here, counts the requests it gets,
and signs tokens with any of its keys.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class SigningKey:
    kid: str
    private: PrivateKey
    algorithm: str

    @classmethod
    def rsa(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(uuid.uuid4().hex, key, "RS256")

    @classmethod
    def ec(cls) -> SigningKey:
        return cls(uuid.uuid4().hex, ec.generate_private_key(ec.SECP256R1()), "ES256")

    def jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.algorithm})
        return dict(jwk)


@dataclass
class Issuer:
    url: str
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.rsa()])
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def key(self) -> SigningKey:
        return self.keys[0]

    def token(
        self,
        subject: str = "alice",
        *,
        audience: str | list[str] = "tesk",
        key: SigningKey | None = None,
        lifetime_s: int = 300,
        typ: str = "at+jwt",
        **claims: Any,
    ) -> str:
        signer = key or self.key
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime_s,
        }
        payload.update(claims)
        return jwt.encode(
            payload,
            signer.private,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, "typ": typ},
        )


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    """An issuer serving discovery and JWKS on a free port of 127.0.0.1."""
    issuer_box: list[Issuer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer = issuer_box[0]
            issuer.requests[self.path] += 1
            if self.path == "/.well-known/openid-configuration":
                body: dict[str, Any] = {
                    "issuer": issuer.url,
                    "jwks_uri": f"{issuer.url}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                }
            elif self.path == "/jwks":
                body = {"keys": [key.jwk() for key in issuer.keys]}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer_box.append(Issuer(url=f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer_box[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
