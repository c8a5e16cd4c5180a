"""Responses carrying file bytes: 200, 206, 304, 416 and HEAD, streamed from an open file.

A shard is streamed in CHUNK_BYTES pieces read with pread at absolute offsets, so
memory stays flat however large the shard and however many requests run at once.
The open file is closed when the stream ends, or when the generator is dropped
after a client disconnects. Its size comes from the open file (fstat), not the
manifest, so Content-Length always matches the bytes actually sent.
"""

import os

from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from service.ranges import Unsatisfiable, if_range_allows, none_match, parse_range

CHUNK_BYTES = 512 * 1024  # large enough that per-chunk overhead is small, small enough to interleave clients
CACHE_CONTROL = "max-age=3600"  # a dataset id names fixed content; the ETag revalidates after an hour


def file_chunks(file, start: int, length: int):
    """Yield `length` bytes of `file` from `start`, then close it (also if the consumer stops early)."""
    try:
        position, end = start, start + length
        while position < end:
            chunk = os.pread(file.fileno(), min(CHUNK_BYTES, end - position), position)
            if not chunk:
                return  # the file shrank under us: the short body makes the client see an incomplete response
            position += len(chunk)
            yield chunk
    finally:
        file.close()


def not_modified(request: Request, etag: str) -> Response | None:
    """304 when If-None-Match names `etag`, else None: answer before doing any expensive work."""
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
    return None


def file_response(request: Request, file, etag: str, media_type: str) -> Response:
    """The file's bytes for GET or HEAD, honouring If-None-Match, If-Range and a single Range.
    Takes ownership of `file`: it is closed here or by the streaming body."""
    size = os.fstat(file.fileno()).st_size
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": CACHE_CONTROL}
    cached = not_modified(request, etag)
    if cached is not None:
        file.close()
        return cached
    byte_range = None
    if if_range_allows(request.headers.get("if-range"), etag):
        try:
            byte_range = parse_range(request.headers.get("range"), size)
        except Unsatisfiable:
            file.close()
            return JSONResponse({"detail": f"range not satisfiable: the file has {size} bytes"}, status_code=416,
                                headers={**headers, "Content-Range": f"bytes */{size}"})
    start, length, status = 0, size, 200
    if byte_range is not None:
        start, length, status = byte_range.start, byte_range.length, 206
        headers["Content-Range"] = byte_range.content_range(size)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        file.close()
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(file_chunks(file, start, length), status_code=status, headers=headers,
                             media_type=media_type)
