"""Serving the app for a browser: web mode, for development and tests (the product is the
phone app).

flet_web serves the Flutter web build as it lies on disk: 17.7 MB for the first screen, most of
it ``main.dart.js`` (9.6 MB) and CanvasKit's wasm. And ``main.dart.js`` loads rive's runtime
from a CDN that ``no_cdn`` does not cover, so every load asked a host elsewhere. The stack, in
``create_app``, from the outside in:

- Starlette's ``GZipMiddleware`` compresses what the layer below leaves alone (the index page
  flet writes per process, its manifests): at most ``COMPRESS_LEVEL``, never below
  ``MINIMUM_SIZE``. WebSockets (the Flet session) pass through untouched, as in every layer.
- ``Copies`` keeps each file of a compressible type, fetched from flet once, gzip-compressed in
  memory: the build's large files are read and compressed once per process, not per request.
  ``main.dart.js`` is kept with the rive CDN base turned into ``RIVE_PATH``, a path on the
  app's own origin.
- ``NoRive`` serves ``NO_RIVE`` there, as rive's runtime: one that fails to start, so that
  the loader records rive as unavailable (the app shows no rive animation). Flet answered
  that path with 404: a console error on every load, and a loader that never finished.
- flet's own ASGI app (``ft.run(..., export_asgi_app=True)``): the Flet session, the static
  files, and the lifespan that starts and stops flet's app manager.

``serve`` runs it in uvicorn as flet's own web server does, and exits with code 0 on SIGTERM.
No phone has starlette or uvicorn: this module imports them inside functions, so that it
imports anywhere (``make phone-check`` imports every module), and ``app.main`` imports it only
in ``run_web``.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import FrameType
from typing import TYPE_CHECKING, Any

import flet as ft

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Below about a kilobyte a response fits one TCP segment either way: compressing it saves no
# round trip and costs CPU and gzip's framing. Level 6 (zlib's default) comes within 1 % of
# level 9 on main.dart.js and CanvasKit's wasm in half the CPU time or less.
MINIMUM_SIZE = 1024
COMPRESS_LEVEL = 6
# The types of the build's files worth compressing; images and woff2 already are.
COMPRESSIBLE = frozenset({".js", ".mjs", ".wasm", ".json", ".css", ".map", ".otf", ".ttf"})
# main.dart.js returns this as the base URL of rive's runtime, and appends
# ``wasm/rive_native.js``, then ``wasm_compatibility/rive_native.js`` when the first fails.
RIVE_CDN = re.compile(rb'"https://cdn\.jsdelivr\.net/npm/@rive-app/[^"]*"')
RIVE_PATH = "/rive-unavailable/"
# What NoRive serves as either script. The loader waits for the script's load event (a 404
# never sends one), calls ``RiveNative()`` and takes a rejected promise as "no rive".
NO_RIVE = (
    b"// Liaison serves no rive runtime: this tells rive's loader that rive is unavailable.\n"
    b'window.RiveNative = () => Promise.reject(new Error("rive is not served here"));\n'
)
# flet's headers that describe the file's own bytes, which a copy replaces with its own.
# Range requests are not honoured for a copy (a server may ignore Range), so not advertised.
BODY_HEADERS = frozenset(
    {b"content-length", b"content-encoding", b"etag", b"last-modified", b"accept-ranges"}
)

Headers = list[tuple[bytes, bytes]]
logger = logging.getLogger(__name__)


def rewrite(path: str, body: bytes) -> bytes:
    """The file ``path`` as a browser here gets it: main.dart.js without rive's CDN base."""
    if PurePosixPath(path).name != "main.dart.js":
        return body
    body, found = RIVE_CDN.subn(f'"{RIVE_PATH}"'.encode(), body)
    if not found:
        logger.warning("main.dart.js names no rive CDN base: the rewrite in app.web is stale")
    return body


@dataclass(frozen=True)
class Copy:
    """One file as served, kept in memory: flet's headers, the body gzip-compressed when it
    is at least ``MINIMUM_SIZE`` long, and an ETag of its content."""

    headers: Headers
    body: bytes
    gzipped: bool
    etag: str

    @classmethod
    def make(cls, path: str, headers: Headers, body: bytes) -> Copy:
        """The copy of ``path`` from flet's response (``headers``, ``body``)."""
        body = rewrite(path, body)
        etag = hashlib.sha256(body).hexdigest()[:24]
        kept = [(k, v) for k, v in headers if k.lower() not in BODY_HEADERS]
        if len(body) < MINIMUM_SIZE:
            return cls(kept, body, gzipped=False, etag=etag)
        return cls(kept, gzip.compress(body, COMPRESS_LEVEL, mtime=0), gzipped=True, etag=etag)

    async def respond(self, scope: Scope, send: Send) -> None:
        """Answer the request ``scope`` (GET or HEAD): 200, or 304 when the client's copy is
        this one; compressed when the client accepts gzip."""
        request = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
        encode = self.gzipped and "gzip" in request.get(b"accept-encoding", "")
        etag = f'"{self.etag}-gzip"' if encode else f'"{self.etag}"'
        headers = [
            *self.headers,
            (b"etag", etag.encode()),
            # Paths carry no version: the browser asks again each time, and mostly hears 304.
            (b"cache-control", b"no-cache"),
            (b"vary", b"Accept-Encoding"),
        ]
        if _matches(request.get(b"if-none-match", ""), etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = self.body
        if encode:
            headers.append((b"content-encoding", b"gzip"))
        elif self.gzipped:  # a client without gzip: rare (tools, tests), so not kept
            body = await asyncio.to_thread(gzip.decompress, body)
        headers.append((b"content-length", str(len(body)).encode()))
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (weak comparison, as RFC 9110 says)."""
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


class Copies:
    """Serves each file of a compressible type from a ``Copy`` made at its first request.

    The files are taken to stay as they are while the process runs: flet's build does; an
    edited file under assets/ shows after a restart. Everything else goes to ``app``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.copies: dict[str, Copy] = {}
        self._making = asyncio.Lock()  # one file at a time is fetched and compressed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or PurePosixPath(path).suffix not in COMPRESSIBLE
        ):
            await self.app(scope, receive, send)
            return
        copy = self.copies.get(path) or await self._make(path, scope)
        if isinstance(copy, Copy):
            await copy.respond(scope, send)
            return
        status, headers, body = copy  # not a file (404, ...): answered as flet answered
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _make(self, path: str, scope: Scope) -> Copy | tuple[int, Headers, bytes]:
        """The copy of ``path``, made now unless another request just made it; or flet's
        answer when that is not 200."""
        async with self._making:
            if path in self.copies:
                return self.copies[path]
            status, headers, body = await _fetch(self.app, scope)
            if status != 200:
                return status, headers, body
            copy = await asyncio.to_thread(Copy.make, path, headers, body)
            self.copies[path] = copy
            return copy


async def _fetch(app: ASGIApp, scope: Scope) -> tuple[int, Headers, bytes]:
    """``app``'s whole answer to a plain GET of the path in ``scope``."""
    plain = {b"accept-encoding", b"if-none-match", b"if-modified-since", b"range", b"if-range"}
    request = dict(
        scope,
        method="GET",
        headers=[(k, v) for k, v in scope["headers"] if k.lower() not in plain],
    )
    answered = asyncio.Event()
    status, headers, body = 500, [], bytearray()
    sent_request = False

    async def receive() -> Message:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def collect(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    try:
        await app(request, receive, collect)
    finally:
        answered.set()
    return status, headers, bytes(body)


class NoRive:
    """Answers a GET or HEAD of a ``rive_native.js`` under ``RIVE_PATH`` with ``NO_RIVE``;
    everything else goes to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not path.startswith(RIVE_PATH)
            or PurePosixPath(path).name != "rive_native.js"
        ):
            await self.app(scope, receive, send)
            return
        headers = [
            (b"content-type", b"text/javascript; charset=utf-8"),
            (b"content-length", str(len(NO_RIVE)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else NO_RIVE
        await send({"type": "http.response.body", "body": body})


def create_app(main: Callable[[ft.Page], Any], *, assets_dir: str) -> ASGIApp:
    """The ASGI app serving ``main`` to a browser: offline (no CDN, CanvasKit), compressed."""
    flet_app = ft.run(
        main,
        view=None,
        no_cdn=True,
        web_renderer=ft.WebRenderer.CANVAS_KIT,
        assets_dir=assets_dir,
        export_asgi_app=True,
    )
    if flet_app is None:  # Pyodide: ft.run ran the app in the browser; nothing to serve
        raise RuntimeError("ft.run(export_asgi_app=True) returned no ASGI app")
    from starlette.middleware.gzip import GZipMiddleware

    return GZipMiddleware(
        Copies(NoRive(flet_app)), minimum_size=MINIMUM_SIZE, compresslevel=COMPRESS_LEVEL
    )


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(main: Callable[[ft.Page], Any], *, host: str, port: int, assets_dir: str) -> None:
    """Serve ``main`` on ``host:port`` until interrupted, as ``ft.run`` serves the web (from
    the main thread: it sets a signal handler)."""
    import uvicorn

    app = create_app(main, assets_dir=assets_dir)  # first: it applies FLET_LOG_LEVEL
    # As flet's web server: flet's log level (warning unless FLET_LOG_LEVEL says otherwise)
    # and the websockets implementation it chose.
    level = logging.getLogger("flet").getEffectiveLevel()
    if level in (logging.NOTSET, logging.CRITICAL):
        level = logging.CRITICAL
    # uvicorn shuts down on SIGTERM, then raises the signal again for the handler it found
    # at start. The default one ended the process by the signal after a clean shutdown (exit
    # code 143 in a shell, -15 to Popen); this one exits with 0 (and ``make run`` stops its
    # server on the way out), as does a SIGTERM that comes before uvicorn listens.
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=logging.getLevelName(level).lower(),
            ws="websockets-sansio",
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
