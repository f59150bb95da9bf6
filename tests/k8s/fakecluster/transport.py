"""HTTP for the fake API server: TLS, keep-alive, chunked streams, peer detection."""

from __future__ import annotations

import json
import select
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


@dataclass
class Reply:
    code: int
    body: Any  # JSON value, or bytes sent as text/plain
    stream: Callable[[Callable[[bytes], bool]], None] | None = None  # chunked streaming


class Endpoint(Protocol):
    def handle(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        connection: socket.socket | None = None,
    ) -> Reply: ...

    def track(self, connection: socket.socket, open_: bool) -> None: ...


class TlsServer(ThreadingHTTPServer):
    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(address, handler)
        self._context = context

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        # The handshake happens in the request's thread, on its first read.
        wrapped = self._context.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address


class Handler(BaseHTTPRequestHandler):
    api: Endpoint
    protocol_version = "HTTP/1.1"
    server_version = "fakecluster"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.api.track(self.connection, True)

    def finish(self) -> None:
        self.api.track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.api.handle(method, self.path, headers, body, self.connection)
        if reply.stream is not None:
            self._send_stream(reply)
            return
        if isinstance(reply.body, bytes):
            payload, content_type = reply.body, "text/plain"
        else:
            payload, content_type = json.dumps(reply.body).encode(), "application/json"
        self.send_response(reply.code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(payload)

    def _send_stream(self, reply: Reply) -> None:
        assert reply.stream is not None
        self.send_response(reply.code)
        content_type = "text/plain" if isinstance(reply.body, bytes) else "application/json"
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        alive = [True]

        def write(chunk: bytes) -> bool:
            if not chunk:
                return True
            try:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            except OSError:
                alive[0] = False
            return alive[0]

        reply.stream(write)
        if alive[0]:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True
        else:
            self.close_connection = True


def peer_closed(connection: socket.socket | None) -> bool:
    """Whether the client hung up (the socket reads as closed), without consuming data."""
    if connection is None or isinstance(connection, ssl.SSLSocket):
        return False  # TLS cannot peek; writes and the watch timeout notice a gone client
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            return False
        return connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
