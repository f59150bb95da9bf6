"""ftp:// and ftps:// transfers (ftplib), passive mode, binary, recursive directories.

Credentials come from the URL (`ftp://user:password@host/path`), else from the netrc file
($NETRC, else ~/.netrc), else anonymous login. As in RFC 1738 and curl, the URL path is relative
to the login directory; `%2F` at its start makes it absolute. ftps:// is explicit FTPS (AUTH TLS)
with a protected data channel; certificates are verified against the system's trust store
(or SSL_CERT_FILE).
"""

from __future__ import annotations

import contextlib
import ftplib
import netrc
import os
import posixpath
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

from tesk.filer.base import PartialUploadError, TransferError, TransientTransferError
from tesk.filer.localfs import destination, local_files, partial_file
from tesk.filer.retry import Retrier
from tesk.filer.transfers.common import TransferBase, os_reason, stream_block
from tesk.filer.urls import join_url, redact

T = TypeVar("T")


@dataclass(frozen=True)
class FtpLocation:
    tls: bool
    host: str
    port: int
    path: str  # relative to the login directory unless it starts with '/'
    user: str | None = None  # None: from netrc, else anonymous
    password: str | None = field(default=None, repr=False)

    def credentials(self) -> tuple[str, str]:
        if self.user is not None:
            return self.user, self.password or ""
        return _netrc_login(self.host) or ("anonymous", "anonymous@")


def _netrc_login(host: str) -> tuple[str, str] | None:
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    if not os.path.isfile(path):
        return None
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (netrc.NetrcParseError, OSError) as error:
        raise TransferError(f"cannot read the netrc file {path}: {error}") from error
    if entry is None:
        return None
    login, _, password = entry
    return login, password or ""


def parse_ftp_url(url: str) -> FtpLocation:
    """Where an ftp(s):// URL points and how to log in; ValueError if it cannot be used."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ftp", "ftps"):
        raise ValueError(f"{redact(url)} is not an ftp:// URL")
    if not parts.hostname:
        raise ValueError(f"{redact(url)}: no host")
    try:
        port = parts.port or 21
    except ValueError as error:
        raise ValueError(f"{redact(url)}: bad port") from error
    path = unquote(parts.path)
    if any(ch in path for ch in "\r\n\x00"):
        raise ValueError(f"{redact(url)}: control characters in the path")
    path = path[1:] if path.startswith("/") else path
    if parts.username is None:
        return FtpLocation(scheme == "ftps", parts.hostname, port, path)
    user, password = unquote(parts.username), unquote(parts.password or "")
    return FtpLocation(scheme == "ftps", parts.hostname, port, path, user, password)


def _error(error: BaseException, url: str) -> TransferError:
    if isinstance(error, TransferError):
        return error
    if isinstance(error, ftplib.error_perm):
        reply = str(error).strip()
        if reply.startswith("550"):
            return TransferError(f"{redact(url)}: not found or not accessible ({reply})")
        if reply.startswith("530"):
            return TransferError(f"{redact(url)}: login refused ({reply})")
        return TransferError(f"{redact(url)}: {reply}")
    if isinstance(error, ssl.SSLCertVerificationError):
        return TransferError(f"{redact(url)}: TLS certificate not trusted ({error.verify_message})")
    if isinstance(error, ftplib.error_temp | ftplib.error_reply | ftplib.error_proto):
        return TransientTransferError(f"{redact(url)}: {str(error).strip()}")
    if isinstance(error, TimeoutError):
        return TransientTransferError(f"{redact(url)}: timed out")
    if isinstance(error, OSError) and error.filename is not None:
        # Socket errors name no file: this one is about the local file, which no retry mends.
        return TransferError(f"{redact(url)}: local file: {os_reason(error)} ({error.filename})")
    return TransientTransferError(f"{redact(url)}: connection failed ({os_reason(error)})")


_FTP_ERRORS = (ftplib.Error, OSError, EOFError)


class _Session:
    """One FTP control connection, opened on first use and dropped after any failure."""

    def __init__(self, transfer: FtpTransfer, location: FtpLocation) -> None:
        self._transfer = transfer
        self._location = location
        self._ftp: ftplib.FTP | None = None
        self.made: set[str] = set()  # remote directories known to exist

    def run(self, url: str, operation: Callable[[ftplib.FTP], T]) -> T:
        try:
            if self._ftp is None:
                self._ftp = self._transfer.connect(self._location)
            return operation(self._ftp)
        except _FTP_ERRORS as error:
            self.close()
            raise _error(error, url) from error

    def close(self) -> None:
        if self._ftp is not None:
            try:
                self._ftp.close()
            finally:
                self._ftp = None


class FtpTransfer(TransferBase):
    schemes: tuple[str, ...] = ("ftp", "ftps")

    def __init__(self, retry: Retrier, chunk_bytes: int, timeout_s: float) -> None:
        self._retry = retry
        self.cancel = retry.cancel
        self._block = stream_block(chunk_bytes)
        self._timeout = timeout_s

    def _write_checked(self, out: BinaryIO) -> Callable[[bytes], None]:
        """`out.write` that first stops the transfer once the stage is cancelled."""

        def write(block: bytes) -> None:
            self.cancel.check()
            out.write(block)

        return write

    def connect(self, location: FtpLocation) -> ftplib.FTP:
        ftp: ftplib.FTP
        if location.tls:
            ftp = ftplib.FTP_TLS(context=ssl.create_default_context(), timeout=self._timeout)  # noqa: S321
        else:
            ftp = ftplib.FTP(timeout=self._timeout)  # noqa: S321 (ftp:// is what the user asked for)
        try:
            ftp.connect(location.host, location.port)
            ftp.login(*location.credentials())
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.set_pasv(True)
            ftp.voidcmd("TYPE I")
        except BaseException:
            ftp.close()
            raise
        return ftp

    @contextmanager
    def _session(self, url: str) -> Iterator[tuple[_Session, FtpLocation]]:
        try:
            location = parse_ftp_url(url)
        except ValueError as error:
            raise TransferError(str(error)) from error
        session = _Session(self, location)
        try:
            yield session, location
        finally:
            session.close()

    # What a remote path is --------------------------------------------------------------------

    @staticmethod
    def _is_dir(ftp: ftplib.FTP, path: str) -> bool:
        home = ftp.pwd()
        try:
            ftp.cwd(path or home)
        except ftplib.error_perm:
            return False
        ftp.cwd(home)
        return True

    @staticmethod
    def _is_file(ftp: ftplib.FTP, path: str) -> bool:
        try:
            ftp.size(path)
        except ftplib.error_perm:
            return False
        return True

    def _listing(self, ftp: ftplib.FTP, path: str) -> list[tuple[str, bool]]:
        """(name, is directory) of the entries of one remote directory."""
        target = path or "."
        try:
            entries = list(ftp.mlsd(target, facts=["type"]))
        except ftplib.error_perm as error:
            if not str(error).startswith(("500", "501", "502")):
                raise
            # No MLSD on this server: names from NLST, directories found by trying to enter them.
            names = [posixpath.basename(name.rstrip("/")) for name in ftp.nlst(target)]
            return [
                (name, self._is_dir(ftp, posixpath.join(path, name)))
                for name in names
                if name not in (".", "..")
            ]
        return [
            (name, facts.get("type", "").lower() == "dir")
            for name, facts in entries
            if facts.get("type", "").lower() in ("dir", "file")
        ]

    def _tree(self, ftp: ftplib.FTP, path: str) -> tuple[list[str], list[str]]:
        """Relative paths of every file and every directory below the remote directory `path`."""
        files: list[str] = []
        directories: list[str] = []
        pending = [""]
        while pending:
            relative = pending.pop()
            for name, is_dir in self._listing(ftp, posixpath.join(path, relative)):
                child = posixpath.join(relative, name)
                if is_dir:
                    directories.append(child)
                    pending.append(child)
                else:
                    files.append(child)
        return sorted(files), sorted(directories)

    # The Transfer contract ---------------------------------------------------------------------

    def _retrieve(self, ftp: ftplib.FTP, path: str, dest: Path) -> None:
        with partial_file(dest) as temporary, temporary.open("wb") as out:
            ftp.retrbinary(f"RETR {path}", self._write_checked(out), blocksize=self._block)

    def download_file(self, url: str, dest: Path) -> None:
        with self._session(url) as (session, location):
            self._retry.run(
                lambda: session.run(url, lambda ftp: self._retrieve(ftp, location.path, dest))
            )

    def download_directory(self, url: str, dest: Path) -> None:
        with self._session(url) as (session, location):

            def tree(ftp: ftplib.FTP) -> tuple[list[str], list[str]]:
                if not self._is_dir(ftp, location.path):
                    reason = (
                        "is a file, not a directory"
                        if self._is_file(ftp, location.path)
                        else "not found"
                    )
                    raise TransferError(f"{redact(url)}: {reason}")
                return self._tree(ftp, location.path)

            files, directories = self._retry.run(lambda: session.run(url, tree))
            try:
                dest.mkdir(parents=True, exist_ok=True)
                for name in directories:
                    destination(dest, name).mkdir(parents=True, exist_ok=True)
            except ValueError as error:
                raise TransferError(f"{redact(url)}: {error}") from error
            for name in files:
                self._download_one(
                    session,
                    join_url(url, name),
                    posixpath.join(location.path, name),
                    destination(dest, name),
                )

    def _download_one(self, session: _Session, url: str, path: str, dest: Path) -> None:
        self._retry.run(lambda: session.run(url, lambda ftp: self._retrieve(ftp, path, dest)))

    def _store(self, session: _Session, ftp: ftplib.FTP, src: Path, path: str) -> None:
        parent = posixpath.dirname(path)
        if parent and parent not in session.made:
            self._make_directories(ftp, parent)
            session.made.add(parent)
        with src.open("rb") as data:
            # storbinary calls back after each block it sent: a cancel stops it there.
            ftp.storbinary(
                f"STOR {path}", data, blocksize=self._block, callback=lambda _: self.cancel.check()
            )

    @staticmethod
    def _make_directories(ftp: ftplib.FTP, path: str) -> None:
        prefix = "/" if path.startswith("/") else ""
        for part in [p for p in path.split("/") if p]:
            prefix = posixpath.join(prefix, part)
            with contextlib.suppress(ftplib.error_perm):  # there already (or denied: STOR says)
                ftp.mkd(prefix)

    def _upload_one(self, session: _Session, src: Path, url: str, path: str) -> None:
        self._retry.run(lambda: session.run(url, lambda ftp: self._store(session, ftp, src, path)))

    def upload_file(self, src: Path, url: str) -> None:
        with self._session(url) as (session, location):
            self._retry.run(
                lambda: session.run(url, lambda ftp: self._store(session, ftp, src, location.path))
            )

    def upload_directory(
        self, src: Path, url: str, files: Sequence[tuple[str, Path]] | None = None
    ) -> list[tuple[str, Path]]:
        uploaded: list[tuple[str, Path]] = []
        with self._session(url) as (session, location):
            for relative, path in local_files(src) if files is None else files:
                target = join_url(url, relative)
                remote = posixpath.join(location.path, relative)
                try:
                    self.cancel.check()
                    self._upload_one(session, path, target, remote)
                except TransferError as error:
                    raise PartialUploadError(str(error), uploaded) from error
                uploaded.append((target, path))
        return uploaded

    def exists(self, url: str) -> bool:
        with self._session(url) as (session, location):
            return self._retry.run(
                lambda: session.run(
                    url,
                    lambda ftp: (
                        self._is_dir(ftp, location.path) or self._is_file(ftp, location.path)
                    ),
                )
            )

    def is_directory(self, url: str) -> bool:
        with self._session(url) as (session, location):

            def probe(ftp: ftplib.FTP) -> bool:
                if self._is_dir(ftp, location.path):
                    return True
                if self._is_file(ftp, location.path):
                    return False
                raise TransferError(f"{redact(url)}: not found")

            return self._retry.run(lambda: session.run(url, probe))
