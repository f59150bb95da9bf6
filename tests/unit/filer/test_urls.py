"""URL helpers: redaction of credentials, joining, remote names that try to climb out."""

from __future__ import annotations

import pytest

from tesk.filer.urls import join_url, redact, safe_relative


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://user:pw@host:2121/a/b", "ftp://host:2121/a/b"),
        ("https://user@example.org/x?y=1", "https://example.org/x?y=1"),
        (
            "https://h/o?X-Amz-Signature=abc&X-Amz-Credential=k&part=2",
            "https://h/o?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&part=2",
        ),
        ("https://h/blob?sig=s&sv=2020", "https://h/blob?sig=REDACTED&sv=2020"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("s3://bucket/key?odd", "s3://bucket/key?odd"),
        ("file:///data/x", "file:///data/x"),
    ],
)
def test_redact_strips_credentials_and_secret_query_values(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_redact_never_returns_the_password() -> None:
    assert "pw" not in redact("ftp://u:pw@h/x")


@pytest.mark.parametrize(
    ("base", "relative", "expected"),
    [
        ("s3://b/out", "a/b.txt", "s3://b/out/a/b.txt"),
        ("s3://b/out/", "/a b.txt", "s3://b/out/a b.txt"),
        ("http://h/out/", "a b#c.txt", "http://h/out/a%20b%23c.txt"),
        ("ftp://u:p@h/out", "x", "ftp://u:p@h/out/x"),
        ("http://h/out?x=1", "f", "http://h/out/f?x=1"),
        ("file:///r/o", "", "file:///r/o"),
    ],
)
def test_join_url_puts_one_slash_between(base: str, relative: str, expected: str) -> None:
    assert join_url(base, relative) == expected


@pytest.mark.parametrize("name", ["a", "a/b", "a/./b", "a/../b"])
def test_safe_relative_accepts_names_inside(name: str) -> None:
    assert not safe_relative(name).startswith("..")


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "..", ".", "", "a\\b"])
def test_safe_relative_refuses_names_that_leave(name: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        safe_relative(name)
