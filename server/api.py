"""HTTP endpoints of DESIGN §4: parse the request, call the service in a thread, answer JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from anyio import to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.bodies import (
    GZIP_FROM,
    accepts_gzip,
    check_encoding,
    content_encoding,
    gzip_body,
    json_object,
    read_bytes,
    read_json,
)
from server.errors import BadRequest
from server.openapi import openapi_document
from server.service import Service
from sync import schema
from sync.protocol import MAX_COUNTER

T = TypeVar("T")
SMALL_BODY = 256 * 1024  # a push body this small is read before its token is checked


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def _in_thread(request: Request, function: Callable[..., T], *args: Any) -> T:
    """Run database work in a worker thread, as many at once as ``app.worker_threads``."""
    return await to_thread.run_sync(function, *args, limiter=request.app.state.limiter)


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _sha256(request: Request) -> str:
    value = str(request.path_params["sha256"])
    if not schema.SHA256_RE.match(value):
        raise BadRequest("must be 64 lower-case hex digits", field="sha256")
    return value


def _int_param(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not minimum <= int(raw) < MAX_COUNTER:
        raise BadRequest(f"must be a whole number of at least {minimum}", field=name)
    return int(raw)


async def healthz(request: Request) -> Response:
    """Liveness probe."""
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> Response:
    """The OpenAPI description of every endpoint."""
    return JSONResponse(openapi_document())


async def enrol(request: Request) -> Response:
    """POST /api/v1/devices: sign in and register this device."""
    service = _service(request)
    body = json_object(
        await read_json(request, service.settings.body_limit),
        "username",
        "password",
        "device_name",
    )
    address = request.client.host if request.client else "unknown"
    result = await run_in_threadpool(
        service.enrol, body["username"], body["password"], body["device_name"], address
    )
    return JSONResponse(result, status_code=201)


async def revoke_device(request: Request) -> Response:
    """DELETE /api/v1/devices/{device_id}."""
    device_id = str(request.path_params["device_id"])
    if not schema.is_uuid(device_id):
        raise BadRequest("must be a lower-case UUID", field="device_id")
    await _in_thread(request, _service(request).revoke, _token(request), device_id)
    return Response(status_code=204)


async def me(request: Request) -> Response:
    """GET /api/v1/me."""
    return JSONResponse(await _in_thread(request, _service(request).me, _token(request)))


async def push(request: Request) -> Response:
    """POST /api/v1/sync/push."""
    service = _service(request)
    token, limit = _token(request), service.settings.body_limit
    encoding = content_encoding(request)
    if not _announced_at_most(request, min(limit, SMALL_BODY)):
        # A large body is read only for a good token. A small one is read first, and
        # Service.push_json checks the token before looking at it, in the same order.
        await _in_thread(request, service.check_token, token)
        check_encoding(encoding)
    data = await read_bytes(request, limit)
    return JSONResponse(await _in_thread(request, service.push_json, token, data, encoding))


def _announced_at_most(request: Request, size: int) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isascii() and declared.isdigit() and int(declared) <= size


async def pull(request: Request) -> Response:
    """GET /api/v1/sync/pull?cursor=&limit=."""
    service = _service(request)
    cursor = _int_param(request, "cursor", 0, 0)
    limit = _int_param(request, "limit", service.settings.pull_limit, 1)
    body = await _in_thread(request, service.pull_body, _token(request), cursor, limit)
    headers = {"Vary": "Accept-Encoding"}
    if len(body) >= GZIP_FROM and accepts_gzip(request):
        # A page of records shrinks about tenfold: what a weak mobile link needs most.
        body = await to_thread.run_sync(gzip_body, body)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


async def put_attachment(request: Request) -> Response:
    """PUT /api/v1/attachments/{sha256}: 201 when new, 200 when already stored."""
    service = _service(request)
    sha256 = _sha256(request)
    await _in_thread(request, service.check_token, _token(request))
    data = await read_bytes(request, service.settings.attachment_limit)
    created = await _in_thread(
        request, service.put_attachment, _token(request), sha256, data
    )
    return JSONResponse({"sha256": sha256, "size": len(data)}, status_code=201 if created else 200)


async def get_attachment(request: Request) -> Response:
    """GET /api/v1/attachments/{sha256}."""
    service = _service(request)
    content_type, data = await _in_thread(
        request, service.get_attachment, _token(request), _sha256(request)
    )
    headers = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=content_type, headers=headers)
