"""Request bodies read under a size limit (Content-Length checked, streamed bytes counted).

JSON bodies may be gzipped (``Content-Encoding: gzip``); the limit then applies to both
the compressed and the decompressed size, so a small bomb cannot blow up in memory.
Large JSON answers go back gzipped to clients that accept it (``accepts_gzip``).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from typing import Any

import anyio
from starlette.requests import Request

from server.errors import BadRequest, RequestTimeout, TooLarge, UnsupportedMediaType


async def read_bytes(request: Request, limit: int, idle: float | None = None) -> bytes:
    """The raw body; raises TooLarge past ``limit`` bytes, before reading when announced,
    and RequestTimeout when the client pauses longer than ``idle`` seconds (its
    settings' ``body_idle_seconds``) between chunks: a slow client holds no connection
    for ever."""
    if idle is None:
        idle = float(request.app.state.service.settings.body_idle_seconds)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("bad Content-Length")
        if int(declared) > limit:
            raise TooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()
    while True:
        try:
            with anyio.fail_after(idle):
                chunk = await anext(stream)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise RequestTimeout(f"the body stalled for more than {idle:g} s") from None
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BadRequest("the gzip body is damaged", code="malformed_json") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"the decompressed body is larger than {limit} bytes")
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated", code="malformed_json")
    return out


async def read_json(request: Request, limit: int) -> Any:
    """The JSON body (plain or gzip); raises BadRequest when not JSON, TooLarge past limit."""
    encoding = content_encoding(request)
    check_encoding(encoding)  # before reading the body
    return parse_json(await read_bytes(request, limit), encoding, limit)


def content_encoding(request: Request) -> str:
    """The request's Content-Encoding header, as ``parse_json`` takes it."""
    return request.headers.get("content-encoding", "identity")


def check_encoding(encoding: str) -> str:
    """The encoding, normalized; raises UnsupportedMediaType unless identity or gzip."""
    encoding = encoding.strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding[:20]!r} is not supported")
    return encoding


def parse_json(data: bytes, encoding: str, limit: int) -> Any:
    """A body read by ``read_bytes`` as JSON; raises as ``read_json`` does.

    ``encoding`` is the Content-Encoding header (identity or gzip; UnsupportedMediaType
    otherwise). Callers that must check something first read the bytes, then parse.
    """
    if check_encoding(encoding) == "gzip":
        data = _gunzip(data, limit)
    try:
        if json.detect_encoding(data) == "utf-8":
            # Strict UTF-8 refuses surrogates smuggled in as bytes; then only an escape
            # can spell a lone surrogate, and the costly check below is rarely needed.
            text = data.decode("utf-8")
            body = _loads(text)
            if "\\u" in text:
                _encodable(body)
        else:
            body = _loads(data)
            _encodable(body)
    except _OutOfRange as exc:
        raise BadRequest(str(exc)) from exc
    except (ValueError, RecursionError) as exc:  # Unicode errors are ValueErrors
        raise BadRequest("the body is not valid JSON", code="malformed_json") from exc
    return body


MAX_INT_DIGITS = 20  # beyond any count, rev or id here; Python would take 4,300


class _OutOfRange(ValueError):
    """A number JSON allows but no field here can hold."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _OutOfRange(f"a number in the body has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: stored JSON must stay strict (no Infinity)
        raise _OutOfRange("a number in the body is out of range")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's json takes them


def _loads(text: str | bytes) -> Any:
    return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)


def _encodable(body: Any) -> None:
    # A lone surrogate ("\\ud800") parses but cannot be stored or sent back as UTF-8.
    json.dumps(body, ensure_ascii=False).encode()


def json_object(body: Any, *names: str) -> dict[str, str]:
    """The named string members of a JSON object; raises BadRequest naming a bad one."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    values = {}
    for name in names:
        value = body.get(name)
        if not isinstance(value, str):
            raise BadRequest("must be a string", field=name)
        if "\x00" in value:
            raise BadRequest("must not contain NUL characters", field=name)
        values[name] = value
    return values


GZIP_FROM = 2048  # smaller answers are sent as they are: not worth a client's CPU
GZIP_LEVEL = 6  # zlib's default: most of level 9's saving at a third of its time


def accepts_gzip(request: Request) -> bool:
    """True when the request's Accept-Encoding lists gzip (and not with q=0)."""
    for item in request.headers.get("accept-encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def gzip_body(body: bytes) -> bytes:
    """``body`` compressed as a gzip member (zlib releases the GIL: run it in a thread)."""
    return gzip.compress(body, GZIP_LEVEL, mtime=0)
