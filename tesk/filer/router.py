"""Which transfer serves a URL, which URLs a deployment accepts, and what it can reach."""

from __future__ import annotations

from pathlib import Path

from tesk.config import FilerConfig
from tesk.engine.cancellation import Cancellation
from tesk.filer.base import Transfer, TransferError
from tesk.filer.retry import Retrier
from tesk.filer.transfers.file import FileTransfer, file_url_path
from tesk.filer.transfers.ftp import FtpTransfer, parse_ftp_url
from tesk.filer.transfers.http import HttpTransfer
from tesk.filer.transfers.s3 import S3Transfer, split_s3_url
from tesk.filer.urls import redact, scheme_of

# scheme -> the FilerConfig switch that enables it (file:// is enabled by having file roots)
_SWITCHES = {"http": "http", "https": "http", "ftp": "ftp", "ftps": "ftp", "s3": "s3"}
ALL_SCHEMES = ("file", "http", "https", "ftp", "ftps", "s3")


def enabled_schemes(config: FilerConfig) -> list[str]:
    schemes = ["file"] if config.file_roots else []
    return schemes + [s for s, switch in _SWITCHES.items() if getattr(config, switch)]


def check_url(url: str, config: FilerConfig, *, for_output: bool) -> None:
    """Raise ValueError saying why TESK cannot use `url`; return if it can.

    Only what is known without contacting the storage is checked: the scheme has a transfer that
    this deployment enables, the URL is well-formed for it, and file:// URLs stay inside the
    configured roots. Credentials and reachability are found out when staging.
    """
    role = "output" if for_output else "input"
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{role} URL is empty")
    scheme = scheme_of(url)
    enabled = enabled_schemes(config)
    offered = ", ".join(f"{s}://" for s in enabled) or "none"
    if not scheme:
        raise ValueError(f"{role} URL {redact(url)!r} has no scheme (supported here: {offered})")
    if scheme not in ALL_SCHEMES:
        raise ValueError(
            f"{role} URL {redact(url)!r}: TESK has no transfer for {scheme}:// URLs "
            f"(supported here: {offered})"
        )
    if scheme not in enabled:
        reason = (
            "off: no file roots are configured (filer.file_roots, TESK_FILE_ROOTS)"
            if scheme == "file"
            else "disabled in this deployment"
        )
        raise ValueError(f"{role} URL {redact(url)!r}: {scheme}:// transfers are {reason}")
    if scheme == "file":
        file_url_path(url, config.file_roots)
    elif scheme in ("ftp", "ftps"):
        parse_ftp_url(url)
    elif scheme == "s3":
        split_s3_url(url)
    elif "://" not in url or not url.split("://", 1)[1].split("/", 1)[0]:
        raise ValueError(f"{role} URL {redact(url)!r} has no host")


def storage_locations(config: FilerConfig) -> list[str]:
    """What this deployment can reach, for service-info `storage`."""
    locations = [Path(root).absolute().as_uri() for root in config.file_roots]
    return locations + [f"{scheme}://" for scheme in enabled_schemes(config) if scheme != "file"]


class Router:
    """Picks the transfer for a URL among those the configuration enables.

    One router serves one stage: its transfers stop once the stage's cancellation is requested.
    """

    def __init__(self, config: FilerConfig, cancel: Cancellation) -> None:
        retry = Retrier(config.retry, cancel)
        chunk, timeout = config.chunk_bytes, config.retry.timeout_s
        transfers: list[Transfer] = [FileTransfer(config.file_roots, cancel)]
        if config.http:
            transfers.append(HttpTransfer(retry, chunk, timeout, config.blocked_networks))
        if config.ftp:
            transfers.append(FtpTransfer(retry, chunk, timeout))
        if config.s3:
            transfers.append(S3Transfer(retry, chunk, timeout))
        self._by_scheme = {scheme: t for t in transfers for scheme in t.schemes}
        self._config = config

    def transfer_for(self, url: str, *, for_output: bool) -> Transfer:
        try:
            check_url(url, self._config, for_output=for_output)
        except ValueError as error:
            raise TransferError(str(error)) from error
        return self._by_scheme[scheme_of(url)]
