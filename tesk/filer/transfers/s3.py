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

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import boto3
import botocore.exceptions
from botocore import UNSIGNED
from botocore.config import Config
from s3transfer.manager import TransferConfig, TransferManager

from tesk.filer.base import PartialUploadError, TransferError, TransientTransferError
from tesk.filer.localfs import destination, local_files, partial_file
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


_S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError)


class S3Transfer(TransferBase):
    schemes: tuple[str, ...] = ("s3",)

    def __init__(self, retry: Retrier, chunk_bytes: int, timeout_s: float) -> None:
        self._retry = retry
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
                session = boto3.session.Session()
                signed = session.get_credentials() is not None
                config = Config(
                    connect_timeout=self._timeout,
                    read_timeout=self._timeout,
                    retries={"total_max_attempts": 1},
                    max_pool_connections=PARTS_IN_FLIGHT * 2,
                    signature_version=None if signed else UNSIGNED,
                )
                self._client = session.client("s3", config=config)
            return self._client

    def _call(self, url: str, operation: Callable[[], T]) -> T:
        """Run `operation` with retries, turning S3 errors into TransferErrors."""

        def attempt() -> T:
            try:
                return operation()
            except _S3_ERRORS as error:
                raise _error(error, url) from error

        return self._retry.run(attempt)

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

    def _pages(self, url: str, bucket: str, prefix: str) -> Iterator[list[str]]:
        """The keys below `prefix`, one page at a time, each page fetched with retries."""
        token: str | None = None
        while True:
            page = self._call(url, partial(self._list_page, bucket, prefix, token))
            yield [item["Key"] for item in page.get("Contents", []) if "Key" in item]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def _list_page(self, bucket: str, prefix: str, token: str | None) -> ListObjectsV2OutputTypeDef:
        if token:
            return self._s3().list_objects_v2(Bucket=bucket, Prefix=prefix, ContinuationToken=token)
        return self._s3().list_objects_v2(Bucket=bucket, Prefix=prefix)

    # The Transfer contract ---------------------------------------------------------------------

    def _get(self, manager: TransferManager, url: str, bucket: str, key: str, dest: Path) -> None:
        def fetch() -> None:
            with partial_file(dest) as temporary, temporary.open("wb") as out:
                manager.download(bucket, key, out).result()

        self._call(url, fetch)

    def download_file(self, url: str, dest: Path) -> None:
        bucket, key = self._location(url)
        if not key or key.endswith("/"):
            raise TransferError(f"{url} names a directory (no object key)")
        with self._manager() as manager:
            self._get(manager, url, bucket, key, dest)

    def download_directory(self, url: str, dest: Path) -> None:
        bucket, key = self._location(url)
        prefix = key.rstrip("/") + "/" if key.strip("/") else ""
        found = False
        with self._manager() as manager:
            for keys in self._pages(url, bucket, prefix):
                for item in keys:
                    found = True
                    name = item[len(prefix) :]
                    try:
                        local = destination(dest, name.rstrip("/")) if name.strip("/") else dest
                    except ValueError as error:
                        raise TransferError(f"s3://{bucket}/{item}: {error}") from error
                    if item.endswith("/"):  # a "folder" marker object
                        local.mkdir(parents=True, exist_ok=True)
                        continue
                    self._get(manager, f"s3://{bucket}/{item}", bucket, item, local)
        if not found:
            raise TransferError(f"{url}: not found (no objects under this prefix)")
        dest.mkdir(parents=True, exist_ok=True)

    def _put(self, manager: TransferManager, src: Path, url: str) -> None:
        bucket, key = self._location(url)
        if not key or key.endswith("/"):
            raise TransferError(f"{url} names a directory (no object key); cannot write a file")
        self._call(url, lambda: manager.upload(str(src), bucket, key).result())

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
