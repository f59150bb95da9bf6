"""The one byte range of a `Range` request header (RFC 9110 section 14), against a length.

Only single ranges of the `bytes` unit are served: `a-b` (bytes a to b, both included), `a-`
(from a to the end) and `-n` (the last n bytes). Anything else is answered 400 with the reason
rather than ignored, so a client never mistakes a whole answer for the part it asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tesk.tes.errors import InvalidRequest, RangeNotSatisfiable

_SPEC = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    """What a client asked for: `first`..`last` (None: to the end), or the last `suffix` bytes."""

    first: int | None = None
    last: int | None = None
    suffix: int | None = None

    def describe(self) -> str:
        if self.suffix is not None:
            return f"bytes=-{self.suffix}"
        return f"bytes={self.first}-{'' if self.last is None else self.last}"


@dataclass(frozen=True)
class Span:
    """Bytes `start` (included) to `end` (excluded) of `size`."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def parse_range(header: str | None) -> ByteRange | None:
    """The range of a `Range` header (None: no header). Raises InvalidRequest."""
    if header is None or not header.strip():
        return None
    if "," in header:
        raise InvalidRequest(
            f"Range {header!r}: only one byte range per request is served (bytes=a-b, a- or -n)"
        )
    match = _SPEC.match(header)
    if match is None:
        raise InvalidRequest(
            f"Range {header!r}: not a byte range (bytes=a-b, bytes=a- or bytes=-n)"
        )
    first, last = match.group(1), match.group(2)
    if not first and not last:
        raise InvalidRequest(f"Range {header!r}: neither a first byte nor a length is given")
    if not first:
        return ByteRange(suffix=int(last))
    if last and int(last) < int(first):
        raise InvalidRequest(f"Range {header!r}: the last byte comes before the first")
    return ByteRange(first=int(first), last=int(last) if last else None)


def resolve(wanted: ByteRange | None, size: int) -> Span:
    """The bytes of `size` that `wanted` selects (None: all). Raises RangeNotSatisfiable."""
    if wanted is None:
        return Span(0, size, size)
    if wanted.suffix is not None:
        if wanted.suffix == 0 or size == 0:
            raise RangeNotSatisfiable(
                f"Range {wanted.describe()}: there are no last bytes to serve of {size}", size
            )
        return Span(max(0, size - wanted.suffix), size, size)
    first = wanted.first or 0
    if first >= size:
        raise RangeNotSatisfiable(
            f"Range {wanted.describe()}: the output has {size} bytes so far", size
        )
    end = size if wanted.last is None else min(size, wanted.last + 1)
    return Span(first, end, size)
