"""app.web in process: what a browser downloads from the app served in web mode.

Through ``httpx.ASGITransport``, not a browser (tests/e2e/test_first_load.py measures one);
the last test serves it as ``make run`` does, in a process of its own, and stops it.
The starlette import keeps this module off the phone's device tests: no phone has starlette.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from app import web
from app.main import main
from server import launch

pytestmark = pytest.mark.anyio

ASSETS = str(Path(__file__).resolve().parents[2] / "assets")
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def served() -> ASGIApp:
    """The app as ``run_web`` serves it, one per module: its copies are made once."""
    return web.create_app(main, assets_dir=ASSETS)


@pytest.fixture
async def client(served: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``served`` (no lifespan: no Flet session is opened here)."""
    async with _client(served) as c:
        yield c


def _client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_main_dart_js_is_served_gzipped(client: httpx.AsyncClient) -> None:
    zipped = await client.get("/main.dart.js", headers=GZIP)
    plain = await client.get("/main.dart.js", headers=IDENTITY)
    assert zipped.status_code == plain.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert int(zipped.headers["content-length"]) < int(plain.headers["content-length"]) * 0.4
    assert zipped.content == plain.content  # httpx decoded the first
    assert "javascript" in zipped.headers["content-type"]
    # flet's own headers stay (cross-origin isolation), the body's are the copy's.
    assert zipped.headers["cross-origin-embedder-policy"] == "require-corp"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.headers["etag"] != plain.headers["etag"]


async def test_main_dart_js_names_no_offsite_base(client: httpx.AsyncClient) -> None:
    body = (await client.get("/main.dart.js", headers=GZIP)).content
    assert b"cdn.jsdelivr.net" not in body
    assert f'"{web.RIVE_PATH}"'.encode() in body
    # The other offsite bases in main.dart.js are defaults that the page's config replaces.
    index = await client.get("/", headers=GZIP)
    assert index.headers["content-encoding"] == "gzip"
    assert 'flet.canvasKitBaseUrl="/canvaskit/"' in index.text
    assert 'flet.fontFallbackBaseUrl="assets/fonts/"' in index.text
    assert 'flet.webRenderer="canvaskit"' in index.text


async def test_rive_s_loader_gets_a_runtime_that_declines(client: httpx.AsyncClient) -> None:
    # A 404 here was a console error on every first load, and a loader that never finished.
    for name in ("wasm/rive_native.js", "wasm_compatibility/rive_native.js"):
        response = await client.get(f"{web.RIVE_PATH}{name}", headers=GZIP)
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        assert response.content == web.NO_RIVE
        assert b"window.RiveNative = () => Promise.reject(" in response.content
    assert (await client.get(f"{web.RIVE_PATH}other.js")).status_code == 404


async def test_canvaskit_is_served_gzipped(client: httpx.AsyncClient) -> None:
    wasm = await client.get("/canvaskit/chromium/canvaskit.wasm", headers=GZIP)
    assert wasm.headers["content-encoding"] == "gzip"
    assert wasm.headers["content-type"] == "application/wasm"
    assert wasm.content.startswith(b"\0asm")


async def test_a_known_copy_is_not_sent_again(client: httpx.AsyncClient) -> None:
    first = await client.get("/main.dart.js", headers=GZIP)
    again = await client.get(
        "/main.dart.js", headers={**GZIP, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert first.headers["cache-control"] == "no-cache"
    head = await client.head("/main.dart.js", headers=GZIP)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == first.headers["content-length"]


class Files:
    """A stand-in for flet's app: serves ``files`` by path and counts the requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.requests += 1
        body = self.files.get(scope["path"])
        headers = [(b"content-type", b"text/javascript"), (b"x-flet", b"1")]
        status = 404 if body is None else 200
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body or b"Not Found"})


async def test_a_file_is_fetched_and_compressed_once() -> None:
    big = b"console.log('liaison');\n" * 1000
    files = Files({"/big.js": big, "/small.js": b"x=1"})
    async with _client(web.Copies(files)) as client:
        for _ in range(3):
            response = await client.get("/big.js", headers=GZIP)
            assert response.headers["content-encoding"] == "gzip"
            assert int(response.headers["content-length"]) < len(big) / 10
            assert response.content == big
            assert response.headers["x-flet"] == "1"  # the wrapped app's headers stay
        assert files.requests == 1
        small = await client.get("/small.js", headers=GZIP)
        assert small.content == b"x=1" and "content-encoding" not in small.headers
        assert (await client.get("/missing.js")).status_code == 404
        assert (await client.get("/missing.js")).status_code == 404
        assert files.requests == 4  # a 404 is asked again: the file may appear
        assert (await client.get("/route")).status_code == 404  # not a copied type: passed on
        assert files.requests == 5


def test_the_app_served_as_make_run_serves_it_stops_cleanly(tmp_path: Path) -> None:
    app = launch.AppProcess(tmp_path / "device", tmp_path / "app.log")
    with app:
        assert httpx.get(app.url, timeout=10).status_code == 200
        # A SIGTERM (the tests' stop, a service manager's) once ended it by the signal (143).
        assert app.stop()
    assert not app.alive
    assert "Traceback" not in app.log.read_text(errors="replace")
