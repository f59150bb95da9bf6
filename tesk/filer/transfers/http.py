"""http:// and https:// transfers: GET for inputs, PUT for outputs, streamed in chunks.

Downloads keep the bytes exactly as served (no content decoding), follow redirects and check the
length the server announced. Uploads stream the file with its Content-Length and follow
redirects keeping the PUT. Connection failures, timeouts, 408, 429 and 5xx are transient.
HTTP has no directory listing, so DIRECTORY inputs over HTTP are refused with a clear message;
directory outputs become one PUT per file.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import requests
import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from tesk.filer.base import TransferError, TransientTransferError
from tesk.filer.localfs import partial_file
from tesk.filer.network import BlockedHostError, GuardedAdapter, Network
from tesk.filer.retry import Retrier
from tesk.filer.transfers.common import TransferBase, os_reason, stream_block
from tesk.filer.urls import redact

if TYPE_CHECKING:  # the connection types urllib3's pools are annotated with
    from urllib3._base_connection import BaseHTTPConnection, BaseHTTPSConnection

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 507})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: back off as usual
    return max(0.0, moment.timestamp() - time.time())


def _status_error(response: requests.Response, url: str) -> TransferError:
    status = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if response.status_code in (404, 410):
        return TransferError(f"{redact(url)}: not found ({status})")
    if response.status_code in TRANSIENT_STATUS:
        return TransientTransferError(f"{redact(url)}: {status}", _retry_after(response))
    return TransferError(f"{redact(url)}: {status}")


def _request_error(error: Exception, url: str) -> TransferError:
    if isinstance(error, BlockedHostError):
        return TransferError(f"{redact(url)}: {error}")
    if isinstance(error, requests.exceptions.SSLError):
        return TransferError(f"{redact(url)}: TLS failed ({os_reason(error)})")
    if isinstance(error, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return TransientTransferError(f"{redact(url)}: timed out")
    if isinstance(error, OSError) and not isinstance(error, requests.RequestException):
        # requests and urllib3 wrap every socket error: a bare one is about the local file
        # (unreadable output, full disk), which no retry mends.
        where = f" ({error.filename})" if error.filename else ""
        return TransferError(f"{redact(url)}: local file: {os_reason(error)}{where}")
    if isinstance(
        error,
        requests.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | urllib3.exceptions.HTTPError
        | OSError,
    ):
        return TransientTransferError(f"{redact(url)}: connection failed ({os_reason(error)})")
    return TransferError(f"{redact(url)}: {type(error).__name__}")


class _BlockAdapter(GuardedAdapter):
    """Refuses blocked networks on every request and redirect (see GuardedAdapter); sends
    request bodies in larger blocks than urllib3's 16 KiB (several times faster); keeps track of
    its connections so that a cancel can break off a request that waits on the network."""

    def __init__(self, blocksize: int, blocked: Sequence[Network]) -> None:
        self._blocksize = blocksize
        self._connections: weakref.WeakSet[BaseHTTPConnection] = weakref.WeakSet()
        super().__init__(blocked)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = self._blocksize
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _tracking_pools(self._connections)

    def shut_down(self) -> None:
        """Shut down every open connection: a read or write blocked on one fails at once."""
        for connection in list(self._connections):
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):  # closed meanwhile
                    sock.shutdown(socket.SHUT_RDWR)


def _tracking_pools(
    connections: weakref.WeakSet[BaseHTTPConnection],
) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pools that add every connection they open to `connections`."""

    class Pool(HTTPConnectionPool):
        def _new_conn(self) -> BaseHTTPConnection:
            connection = super()._new_conn()
            connections.add(connection)
            return connection

    class TlsPool(HTTPSConnectionPool):
        def _new_conn(self) -> BaseHTTPSConnection:
            connection = super()._new_conn()
            connections.add(connection)
            return connection

    return {"http": Pool, "https": TlsPool}


class HttpTransfer(TransferBase):
    schemes: tuple[str, ...] = ("http", "https")

    def __init__(
        self,
        retry: Retrier,
        chunk_bytes: int,
        timeout_s: float,
        blocked: Sequence[Network] = (),
    ) -> None:
        self._retry = retry
        self.cancel = retry.cancel
        self._block = stream_block(chunk_bytes)
        self._timeout = timeout_s
        self._blocked = list(blocked)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # requests sessions are not thread-safe; one per thread keeps connection reuse.
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept-Encoding"] = "identity"
            for prefix in ("http://", "https://"):
                session.mount(prefix, _BlockAdapter(256 * 1024, self._blocked))
            self._local.session = session
        return session

    def _interrupt(self, session: requests.Session) -> None:
        for adapter in session.adapters.values():
            if isinstance(adapter, _BlockAdapter):
                adapter.shut_down()

    def download_file(self, url: str, dest: Path) -> None:
        self._retry.run(lambda: self._get(url, dest))

    def _get(self, url: str, dest: Path) -> None:
        session = self._session()
        try:
            with (
                self.cancel.on_cancel(lambda: self._interrupt(session)),
                session.get(url, stream=True, timeout=self._timeout) as response,
            ):
                if response.status_code >= 300:
                    raise _status_error(response, url)
                announced = response.headers.get("Content-Length")
                received = 0
                with partial_file(dest) as temporary, temporary.open("wb") as out:
                    for chunk in response.raw.stream(self._block, decode_content=False):
                        self.cancel.check()
                        out.write(chunk)
                        received += len(chunk)
                    if announced is not None and announced.isdigit() and received != int(announced):
                        raise TransientTransferError(
                            f"{redact(url)}: connection closed after {received} of "
                            f"{announced} bytes"
                        )
        except TransferError:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            self.cancel.check()  # the cancel broke the connection: no failure of the server
            raise _request_error(error, url) from error

    def download_directory(self, url: str, dest: Path) -> None:
        raise TransferError(
            f"{redact(url)}: HTTP has no directory listing; list each file as its own input"
        )

    def upload_file(self, src: Path, url: str) -> None:
        self._retry.run(lambda: self._put(src, url))

    def _put(self, src: Path, url: str) -> None:
        target = url
        session = self._session()
        try:
            for _ in range(MAX_REDIRECTS + 1):
                with (
                    src.open("rb") as body,
                    self.cancel.on_cancel(lambda: self._interrupt(session)),
                ):
                    size = src.stat().st_size
                    # An empty file object would make requests switch to chunked encoding.
                    response = session.put(
                        target,
                        data=body if size else b"",
                        headers={"Content-Length": str(size)},
                        timeout=self._timeout,
                        allow_redirects=False,
                    )
                with response:
                    location = response.headers.get("Location")
                    if response.status_code in REDIRECT_STATUS and location:
                        target = urljoin(target, location)
                        continue
                    if response.status_code >= 300:
                        raise _status_error(response, url)
                    return
        except TransferError:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            self.cancel.check()
            raise _request_error(error, url) from error
        raise TransferError(f"{redact(url)}: more than {MAX_REDIRECTS} redirects")

    def exists(self, url: str) -> bool:
        return self._retry.run(lambda: self._exists(url))

    def _exists(self, url: str) -> bool:
        try:
            session = self._session()
            response = session.head(url, allow_redirects=True, timeout=self._timeout)
            if response.status_code in (405, 501):  # no HEAD here: ask for the body, read none
                with session.get(url, stream=True, timeout=self._timeout) as response:
                    pass
        except (requests.RequestException, OSError) as error:
            raise _request_error(error, url) from error
        if response.status_code in (404, 410):
            return False
        if response.status_code >= 300:
            raise _status_error(response, url)
        return True

    def is_directory(self, url: str) -> bool:
        return False  # HTTP names documents; there is no directory to list
