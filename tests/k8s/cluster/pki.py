"""The test cluster's certificates: one CA signs every serving and client certificate, as
kubeadm lays them out, plus the key pair that signs ServiceAccount tokens."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=365)


@dataclass(frozen=True)
class Identity:
    """A certificate's subject and, for servers, the names it serves."""

    name: str
    common_name: str
    organization: str | None = None
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()

    @property
    def is_server(self) -> bool:
        return bool(self.dns_names or self.ip_addresses)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


class Pki:
    """Certificates under one directory; files that exist are kept, so a restart keeps its CA."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str, suffix: str) -> Path:
        return self.directory / f"{name}.{suffix}"

    def ensure(self, identities: list[Identity]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.path("ca", "crt").exists():
            self._make_ca()
        if not self.path("sa", "key").exists():
            key = _key()
            _write_key(self.path("sa", "key"), key)
            self.path("sa", "pub").write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        for identity in identities:
            if not self.path(identity.name, "crt").exists():
                self._issue(identity)

    def _make_ca(self) -> None:
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        name = _name("tesk-test-ca")
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_key(self.path("ca", "key"), key)
        self.path("ca", "crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def _issue(self, identity: Identity) -> None:
        ca_key = serialization.load_pem_private_key(self.path("ca", "key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.path("ca", "crt").read_bytes())
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if identity.is_server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(identity.common_name, identity.organization))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if identity.is_server:
            names: list[x509.GeneralName] = [x509.DNSName(name) for name in identity.dns_names]
            names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in identity.ip_addresses]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(ca_key, hashes.SHA256())
        _write_key(self.path(identity.name, "key"), key)
        self.path(identity.name, "crt").write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
        )
