"""HTTP conditional and range request headers (RFC 9110), parsed without touching any file.

Supported: one range per request in all three forms (`bytes=a-b`, `bytes=a-`,
`bytes=-n`); If-None-Match (weak comparison, `*`); If-Range with an entity tag
(strong comparison). Anything else about Range is ignored and the whole file is
served with 200, which RFC 9110 section 14.2 allows: a malformed header, another
unit, and several ranges at once (multipart/byteranges would buy trainers nothing:
they fetch one contiguous piece per request). If-Range with a date never matches,
since the catalog sends no Last-Modified (the ETag is the sha256, a better validator).
"""

import re
from dataclasses import dataclass

SINGLE_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.ASCII | re.IGNORECASE)


class Unsatisfiable(Exception):
    """The range lies wholly past the end of the file (HTTP 416)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    """First byte, counted from 0."""
    end: int
    """Last byte, inclusive, as in Content-Range."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The byte range a Range header asks of a file of `size` bytes, clipped to the file;
    None to serve the whole file; Unsatisfiable when no byte of the range exists."""
    if not header:
        return None
    match = SINGLE_RANGE.fullmatch(header)
    if match is None:
        return None  # malformed, another unit, or several ranges
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # bytes=-n: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # an invalid range is ignored, not refused (RFC 9110 14.1.1)
    end = int(last) if last else size - 1
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start, min(end, size - 1))


def _tags(header: str) -> list:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def none_match(header: str | None, etag: str) -> bool:
    """If-None-Match matches (so answer 304): `*`, or any listed tag equal to ours, weak or not."""
    if not header:
        return False
    opaque = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == opaque for tag in _tags(header))


def if_range_allows(header: str | None, etag: str) -> bool:
    """Honour the Range header? Yes without If-Range, or when it names our strong tag exactly."""
    if header is None:
        return True
    return not etag.startswith("W/") and header.strip() == etag
