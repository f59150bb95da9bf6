from __future__ import annotations

import pytest

from tesk.logs.ranges import ByteRange, Span, parse_range, resolve
from tesk.tes.errors import InvalidRequest, RangeNotSatisfiable


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        (None, 10, Span(0, 10, 10)),
        ("bytes=0-0", 10, Span(0, 1, 10)),
        ("bytes=2-5", 10, Span(2, 6, 10)),
        ("bytes=2-", 10, Span(2, 10, 10)),
        ("bytes=5-100", 10, Span(5, 10, 10)),  # a last byte beyond the end: up to the end
        ("bytes=-3", 10, Span(7, 10, 10)),
        ("bytes=-30", 10, Span(0, 10, 10)),  # more last bytes than there are: all
        (" Bytes = 1 - 2 ", 10, Span(1, 3, 10)),
        (None, 0, Span(0, 0, 0)),
    ],
)
def test_ranges_select_the_bytes_rfc_9110_says(header: str | None, size: int, span: Span) -> None:
    assert resolve(parse_range(header), size) == span


def test_content_range_names_the_last_byte_included() -> None:
    assert Span(2, 6, 10).content_range() == "bytes 2-5/10"
    assert Span(2, 6, 10).length == 4


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=0-", 0), ("bytes=-0", 10), ("bytes=-5", 0)],
)
def test_ranges_beyond_the_output_are_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        resolve(parse_range(header), size)
    assert raised.value.size == size


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("bytes=0-1,4-5", "only one byte range"),
        ("lines=1-2", "not a byte range"),
        ("bytes=a-b", "not a byte range"),
        ("bytes=-", "neither a first byte nor a length"),
        ("bytes=5-2", "the last byte comes before the first"),
        ("bytes=-1-2", "not a byte range"),
    ],
)
def test_malformed_ranges_are_refused_with_the_reason(header: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        parse_range(header)


def test_an_empty_header_asks_for_everything() -> None:
    assert parse_range("  ") is None
    assert parse_range("bytes=-4") == ByteRange(suffix=4)
