"""s3://bucket/key transfers with boto3, configured by the standard AWS settings.

Endpoint, region and credentials come from where every AWS tool looks (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/config, ...); with no credentials at all, requests go
unsigned, which is what public buckets need. Keys are literal, as for the AWS CLI: no percent
decoding. Files move through s3transfer's managed transfers (multipart uploads, ranged
downloads) with a bounded number of parts in memory. Listings are paginated without limit.

botocore's own retries are off: the filer's retry policy applies to every whole-file operation
and to every listing page, the same for every scheme.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import boto3
import botocore.exceptions
from botocore import UNSIGNED
from botocore.config import Config
from s3transfer.futures import TransferFuture
from s3transfer.manager import TransferConfig, TransferManager
from s3transfer.subscribers import BaseSubscriber

from tesk.filer.base import PartialUploadError, TransferError, TransientTransferError
from tesk.filer.localfs import commit, destination, local_files, new_partial, partial_file
from tesk.filer.retry import Retrier
from tesk.filer.transfers.common import TransferBase
from tesk.filer.urls import join_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef

T = TypeVar("T")

THROTTLING_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
    }
)
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
PARTS_IN_FLIGHT = 4  # parts of one file moved at once; bounds memory at ~2x this many chunks


def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URL; the key may be empty (the whole bucket)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "s3":
        raise ValueError(f"{url} is not an s3:// URL")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"{url}: no bucket")
    return bucket, key


def _error(error: Exception, url: str) -> TransferError:
    if isinstance(error, TransferError):
        return error
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        message = details.get("Message") or code
        if code in NOT_FOUND_CODES or status == 404:
            what = "no such bucket" if code == "NoSuchBucket" else "not found"
            return TransferError(f"{url}: {what}")
        if code in THROTTLING_CODES or status == 429 or status >= 500:
            return TransientTransferError(f"{url}: {code or status} ({message})")
        return TransferError(f"{url}: {code or status} ({message})")
    if isinstance(
        error, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return TransferError(f"{url}: incomplete AWS credentials ({error})")
    if isinstance(error, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError):
        return TransientTransferError(f"{url}: connection failed ({error})")
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return TransferError(f"{url}: {error}")
    if isinstance(error, OSError):
        return TransferError(f"{url}: {error.strerror or error}")
    return TransferError(f"{url}: {type(error).__name__}: {error}")


class _KnownSize(BaseSubscriber):
    def __init__(self, size: int) -> None:
        self._size = size

    def on_queued(self, future: TransferFuture, **kwargs: object) -> None:
        future.meta.provide_transfer_size(self._size)


_S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError)
WINDOW = PARTS_IN_FLIGHT * 4  # objects of one directory in flight at once


@dataclass
class _Pending:
    url: str
    key: str
    dest: Path
    size: int
    temporary: Path
    out: BinaryIO
    future: TransferFuture


class _Window:
    """Downloads of a directory's objects, several in flight (many small objects are common).

    Each finished object is renamed into place; one that failed transiently is downloaded again
    on its own under the retry policy.
    """

    def __init__(self, transfer: S3Transfer, manager: TransferManager, bucket: str) -> None:
        self._transfer = transfer
        self._manager = manager
        self._bucket = bucket
        self._pending: deque[_Pending] = deque()

    def add(self, url: str, key: str, dest: Path, size: int) -> None:
        if len(self._pending) >= WINDOW:
            self._finish(self._pending.popleft())
        temporary = new_partial(dest)
        out = temporary.open("wb")
        future = self._manager.download(self._bucket, key, out, subscribers=[_KnownSize(size)])
        self._pending.append(_Pending(url, key, dest, size, temporary, out, future))

    def _finish(self, pending: _Pending) -> None:
        try:
            self._transfer.wait(pending.future)
        except _S3_ERRORS as error:
            pending.out.close()
            pending.temporary.unlink(missing_ok=True)
            failure = _error(error, pending.url)
            if not isinstance(failure, TransientTransferError):
                raise failure from error
            self._transfer.get_object(
                self._manager, pending.url, self._bucket, pending.key, pending.dest, pending.size
            )
            return
        pending.out.close()
        commit(pending.temporary, pending.dest)

    def drain(self) -> None:
        while self._pending:
            self._finish(self._pending.popleft())

    def abandon(self) -> None:
        """Stop what is still in flight and leave no temporary file behind."""
        while self._pending:
            pending = self._pending.popleft()
            pending.future.cancel()
            with contextlib.suppress(Exception):
                pending.future.result()
            pending.out.close()
            pending.temporary.unlink(missing_ok=True)


class S3Transfer(TransferBase):
    schemes: tuple[str, ...] = ("s3",)

    def __init__(self, retry: Retrier, chunk_bytes: int, timeout_s: float) -> None:
        self._retry = retry
        self.cancel = retry.cancel
        self._timeout = timeout_s
        self._transfer_config = TransferConfig(
            multipart_threshold=chunk_bytes,
            multipart_chunksize=chunk_bytes,
            max_request_concurrency=PARTS_IN_FLIGHT,
            max_submission_concurrency=PARTS_IN_FLIGHT,
            max_in_memory_upload_chunks=PARTS_IN_FLIGHT,
            max_in_memory_download_chunks=PARTS_IN_FLIGHT * max(1, chunk_bytes // (256 * 1024)),
            max_io_queue_size=PARTS_IN_FLIGHT * 8,
            num_download_attempts=1,
        )
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    def _s3(self) -> S3Client:
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._new_client()
                except (botocore.exceptions.BotoCoreError, ValueError) as error:
                    raise TransferError(f"the S3 settings cannot be used: {error}") from error
            return self._client

    def _new_client(self) -> S3Client:
        session = boto3.session.Session()
        signed = session.get_credentials() is not None
        config = Config(
            connect_timeout=self._timeout,
            read_timeout=self._timeout,
            retries={"total_max_attempts": 1},
            max_pool_connections=PARTS_IN_FLIGHT * 2,
            signature_version=None if signed else UNSIGNED,
        )
        return session.client("s3", config=config)

    def _call(self, url: str, operation: Callable[[], T]) -> T:
        """Run `operation` with retries, turning S3 errors into TransferErrors."""

        def attempt() -> T:
            try:
                return operation()
            except _S3_ERRORS as error:
                self.cancel.check()
                raise _error(error, url) from error

        return self._retry.run(attempt)

    def wait(self, future: TransferFuture) -> None:
        """The transfer's end; a cancel meanwhile stops it after the part under way."""
        with self.cancel.on_cancel(future.cancel):
            try:
                future.result()
            except Exception:
                self.cancel.check()
                raise
        self.cancel.check()

    @contextmanager
    def _manager(self) -> Iterator[TransferManager]:
        manager = TransferManager(self._s3(), self._transfer_config)
        try:
            yield manager
        finally:
            manager.shutdown()

    # Remote queries ----------------------------------------------------------------------------

    def _object_exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3().head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in NOT_FOUND_CODES and code != "NoSuchBucket":
                return False
            raise
        return True

    def _prefix_exists(self, bucket: str, prefix: str) -> bool:
        page = self._s3().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        return bool(page.get("KeyCount", 0))

    def _pages(self, url: str, bucket: str, prefix: str) -> Iterator[list[tuple[str, int]]]:
        """(key, size) of every object below `prefix`, a page at a time, each page retried."""
        token: str | None = None
        while True:
            page = self._call(url, partial(self._list_page, bucket, prefix, token))
            yield [
                (item["Key"], item.get("Size", 0))
                for item in page.get("Contents", [])
                if "Key" in item
            ]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def _list_page(self, bucket: str, prefix: str, token: str | None) -> ListObjectsV2OutputTypeDef:
        if token:
            return self._s3().list_objects_v2(Bucket=bucket, Prefix=prefix, ContinuationToken=token)
        return self._s3().list_objects_v2(Bucket=bucket, Prefix=prefix)

    # The Transfer contract ---------------------------------------------------------------------

    def get_object(
        self,
        manager: TransferManager,
        url: str,
        bucket: str,
        key: str,
        dest: Path,
        size: int | None = None,
    ) -> None:
        # A size known from a listing spares the HeadObject request s3transfer would make.
        subscribers = [_KnownSize(size)] if size is not None else None

        def fetch() -> None:
            with partial_file(dest) as temporary, temporary.open("wb") as out:
                self.wait(manager.download(bucket, key, out, subscribers=subscribers))

        self._call(url, fetch)

    def download_file(self, url: str, dest: Path) -> None:
        bucket, key = self._location(url)
        if not key or key.endswith("/"):
            raise TransferError(f"{url} names a directory (no object key)")
        with self._manager() as manager:
            self.get_object(manager, url, bucket, key, dest)

    def download_directory(self, url: str, dest: Path) -> None:
        bucket, key = self._location(url)
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        found = False
        with self._manager() as manager:
            window = _Window(self, manager, bucket)
            try:
                for page in self._pages(url, bucket, prefix):
                    for item, size in page:
                        found = True
                        name = item[len(prefix) :]
                        try:
                            local = destination(dest, name.rstrip("/")) if name.strip("/") else dest
                        except ValueError as error:
                            raise TransferError(f"s3://{bucket}/{item}: {error}") from error
                        if item.endswith("/"):  # a "folder" marker object
                            local.mkdir(parents=True, exist_ok=True)
                        else:
                            window.add(f"s3://{bucket}/{item}", item, local, size)
                window.drain()
            finally:
                window.abandon()
        if not found:
            raise TransferError(f"{url}: not found (no objects under this prefix)")
        dest.mkdir(parents=True, exist_ok=True)

    def _put(self, manager: TransferManager, src: Path, url: str) -> None:
        bucket, key = self._location(url)
        if not key or key.endswith("/"):
            raise TransferError(f"{url} names a directory (no object key); cannot write a file")
        self._call(url, lambda: self.wait(manager.upload(str(src), bucket, key)))

    def upload_file(self, src: Path, url: str) -> None:
        with self._manager() as manager:
            self._put(manager, src, url)

    def upload_directory(
        self, src: Path, url: str, files: Sequence[tuple[str, Path]] | None = None
    ) -> list[tuple[str, Path]]:
        uploaded: list[tuple[str, Path]] = []
        with self._manager() as manager:
            for relative, path in local_files(src) if files is None else files:
                target = join_url(url, relative)
                try:
                    self.cancel.check()
                    self._put(manager, path, target)
                except TransferError as error:
                    raise PartialUploadError(str(error), uploaded) from error
                uploaded.append((target, path))
        return uploaded

    def exists(self, url: str) -> bool:
        bucket, key = self._location(url)
        if (
            key
            and not key.endswith("/")
            and self._call(url, lambda: self._object_exists(bucket, key))
        ):
            return True
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        return self._call(url, lambda: self._prefix_exists(bucket, prefix))

    def is_directory(self, url: str) -> bool:
        bucket, key = self._location(url)
        if (
            key
            and not key.endswith("/")
            and self._call(url, lambda: self._object_exists(bucket, key))
        ):
            return False
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        if self._call(url, lambda: self._prefix_exists(bucket, prefix)):
            return True
        raise TransferError(f"{url}: not found")

    @staticmethod
    def _location(url: str) -> tuple[str, str]:
        try:
            return split_s3_url(url)
        except ValueError as error:
            raise TransferError(str(error)) from error
