"""check_url: what the API accepts at create time, and service-info storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tesk.config import FilerConfig
from tesk.filer import check_url, storage_locations

ROOT = Path("/srv/tesk-data")
CONFIG = FilerConfig(file_roots=[ROOT])


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/tesk-data/in/a.txt",
        "file://localhost/srv/tesk-data/x",
        "file:///srv/tesk-data",
        "http://example.org/a?b=c",
        "https://user:pw@example.org/a",
        "ftp://host/dir/",
        "ftps://user@host:990/x",
        "s3://bucket",
        "s3://bucket/some/key",
        "S3://bucket/key",
    ],
)
@pytest.mark.parametrize("for_output", [False, True])
def test_supported_urls_are_accepted(url: str, for_output: bool) -> None:
    check_url(url, CONFIG, for_output=for_output)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gs://bucket/key", "no transfer for gs://"),
        ("drs://example.org/obj", "no transfer for drs://"),
        ("/data/no-scheme", "has no scheme"),
        ("", "is empty"),
        ("file:///srv/other/x", "outside the allowed file roots"),
        ("file:///srv/tesk-data-evil/x", "outside the allowed file roots"),
        ("file:///srv/tesk-data/../etc/passwd", "'..' is not allowed"),
        ("file:///srv/tesk-data/a/%2E%2E/%2E%2E/etc", "'..' is not allowed"),
        ("file://otherhost/srv/tesk-data/x", "must name a local path"),
        ("http:///path-only", "has no host"),
        ("ftp:///x", "no host"),
        ("ftp://h/a%0D%0ADELE%20x", "control characters"),
        ("s3:///key", "no bucket"),
    ],
)
def test_unusable_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_url(url, CONFIG, for_output=False)


def test_refusal_names_the_role_and_hides_credentials() -> None:
    with pytest.raises(ValueError, match="output URL") as caught:
        check_url("gs://user:secret@bucket/x", CONFIG, for_output=True)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("config", "url", "message"),
    [
        (FilerConfig(), "file:///srv/tesk-data/x", "no file roots are configured"),
        (FilerConfig(s3=False), "s3://b/k", "s3:// transfers are disabled"),
        (FilerConfig(ftp=False), "ftps://h/k", "ftps:// transfers are disabled"),
        (FilerConfig(http=False), "https://h/k", "https:// transfers are disabled"),
    ],
)
def test_disabled_schemes_are_refused(config: FilerConfig, url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_url(url, config, for_output=False)


def test_storage_lists_file_roots_and_enabled_schemes() -> None:
    assert storage_locations(CONFIG) == [
        "file:///srv/tesk-data",
        "http://",
        "https://",
        "ftp://",
        "ftps://",
        "s3://",
    ]
    assert storage_locations(FilerConfig(ftp=False, http=False)) == ["s3://"]
