"""HTTP endpoints of DESIGN §4: parse the request, call the service in a thread, answer JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from anyio import CapacityLimiter, to_thread
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
from server.errors import BadRequest, Unavailable
from server.openapi import openapi_document
from server.service import Service
from sync import schema
from sync.protocol import MAX_COUNTER

T = TypeVar("T")
SMALL_BODY = 256 * 1024  # a push body this small is read before its token is checked
SIGN_IN_BODY = 4096  # three short strings and an optional token
SIGN_INS_WAITING = 64  # sign-ins queued for a hashing thread before "try again"


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def in_thread(
    request: Request, function: Callable[..., T], *args: Any, limiter: CapacityLimiter | None = None
) -> T:
    """Run database work in a worker thread, as many at once as ``app.worker_threads``.

    A request waits at most ``request_deadline_seconds`` for it, then answers 503: when
    the database stops answering, requests fail fast instead of piling up. The thread
    itself cannot be stopped; it ends when its database call gives up or returns (every
    use case is safe to run after its answer was lost: a push is applied once, by id).
    """
    deadline = service_of(request).settings.request_deadline_seconds
    with anyio.move_on_after(deadline):
        return await to_thread.run_sync(
            function, *args, abandon_on_cancel=True, limiter=limiter or request.app.state.limiter
        )
    raise Unavailable("the database is not answering; try again")


def bearer_token(request: Request) -> str | None:
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
    """Liveness probe: the process answers (it does not touch the database)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness probe: the database answers a query in time (else 503), so a load
    balancer sends no traffic to a process whose database is gone."""
    await in_thread(request, service_of(request).check_database)
    return JSONResponse({"status": "ready"})


async def openapi(request: Request) -> Response:
    """The OpenAPI description of every endpoint."""
    return JSONResponse(openapi_document())


async def enrol(request: Request) -> Response:
    """POST /api/v1/devices: sign in and register this device.

    Nobody is known yet, so the work is cheap until the attempt is allowed: the address's
    throttle first, then a body of at most ``SIGN_IN_BODY`` bytes; the password hash runs
    behind its own limiter (``app.sign_in_limiter``), never on the database's threads.
    """
    service = service_of(request)
    address = request.client.host if request.client else "unknown"
    await in_thread(request, service.check_address, address)
    body = await read_json(request, SIGN_IN_BODY)
    fields = json_object(body, "username", "password", "device_name")
    token = body.get("device_token")
    if token is not None and not isinstance(token, str):
        raise BadRequest("must be a string", field="device_token")
    limiter: CapacityLimiter = request.app.state.sign_in_limiter
    if limiter.statistics().tasks_waiting >= SIGN_INS_WAITING:
        raise Unavailable("too many sign-ins at once; try again in a moment")
    result = await in_thread(
        request,
        service.enrol,
        fields["username"],
        fields["password"],
        fields["device_name"],
        address,
        token,
        limiter=limiter,
    )
    return JSONResponse(result, status_code=201)


async def revoke_device(request: Request) -> Response:
    """DELETE /api/v1/devices/{device_id}."""
    device_id = str(request.path_params["device_id"])
    if not schema.is_uuid(device_id):
        raise BadRequest("must be a lower-case UUID", field="device_id")
    await in_thread(request, service_of(request).revoke, bearer_token(request), device_id)
    return Response(status_code=204)


async def me(request: Request) -> Response:
    """GET /api/v1/me."""
    return JSONResponse(await in_thread(request, service_of(request).me, bearer_token(request)))


async def push(request: Request) -> Response:
    """POST /api/v1/sync/push."""
    service = service_of(request)
    token, limit = bearer_token(request), service.settings.body_limit
    encoding = content_encoding(request)
    if not _announced_at_most(request, min(limit, SMALL_BODY)):
        # A large body is read only for a good token. A small one is read first, and
        # Service.push_json checks the token before looking at it, in the same order.
        await in_thread(request, service.check_token, token)
        check_encoding(encoding)
    data = await read_bytes(request, limit)
    return JSONResponse(await in_thread(request, service.push_json, token, data, encoding))


def _announced_at_most(request: Request, size: int) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isascii() and declared.isdigit() and int(declared) <= size


async def pull(request: Request) -> Response:
    """GET /api/v1/sync/pull?cursor=&limit=."""
    service = service_of(request)
    cursor = _int_param(request, "cursor", 0, 0)
    limit = _int_param(request, "limit", service.settings.pull_limit, 1)
    body = await in_thread(request, service.pull_body, bearer_token(request), cursor, limit)
    headers = {"Vary": "Accept-Encoding"}
    if len(body) >= GZIP_FROM and accepts_gzip(request):
        # A page of records shrinks about tenfold: what a weak mobile link needs most.
        body = await to_thread.run_sync(gzip_body, body)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


async def put_attachment(request: Request) -> Response:
    """PUT /api/v1/attachments/{sha256}: 201, whether new or stored before."""
    service = service_of(request)
    sha256 = _sha256(request)
    await in_thread(request, service.check_token, bearer_token(request))
    data = await read_bytes(request, service.settings.attachment_limit)
    # 201 whether or not the bytes were there already: the answer tells nothing about
    # what others uploaded.
    await in_thread(request, service.put_attachment, bearer_token(request), sha256, data)
    return JSONResponse({"sha256": sha256, "size": len(data)}, status_code=201)


async def get_attachment(request: Request) -> Response:
    """GET /api/v1/attachments/{sha256}."""
    service = service_of(request)
    content_type, data = await in_thread(
        request, service.get_attachment, bearer_token(request), _sha256(request)
    )
    headers = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=content_type, headers=headers)
