"""The Starlette application: routes listed in one place, errors as the JSON envelope."""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import AsyncIterator

import anyio
from anyio import CapacityLimiter, to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import admin, api, merge
from server.db import Database
from server.errors import ServerError
from server.service import Clock, Service
from server.settings import Settings

log = logging.getLogger("server")

ROUTES = [
    Route("/healthz", api.healthz, methods=["GET"]),
    Route("/readyz", api.readyz, methods=["GET"]),
    Route("/openapi.json", api.openapi, methods=["GET"]),
    Route("/api/v1/devices", api.enrol, methods=["POST"]),
    Route("/api/v1/devices/{device_id}", api.revoke_device, methods=["DELETE"]),
    Route("/api/v1/me", api.me, methods=["GET"]),
    Route("/api/v1/sync/push", api.push, methods=["POST"]),
    Route("/api/v1/sync/pull", api.pull, methods=["GET"]),
    Route("/api/v1/attachments/{sha256}", api.put_attachment, methods=["PUT"]),
    Route("/api/v1/attachments/{sha256}", api.get_attachment, methods=["GET"]),
    Route("/api/v1/patients/{patient_id}/merge", merge.merge_patient, methods=["POST"]),
    # Administration (admins only): users and teams.
    Route("/api/v1/users", admin.list_users, methods=["GET"]),
    Route("/api/v1/users", admin.create_user, methods=["POST"]),
    Route("/api/v1/users/{user_id}", admin.show_user, methods=["GET"]),
    Route("/api/v1/users/{user_id}/disable", admin.disable_user, methods=["POST"]),
    Route("/api/v1/users/{user_id}/enable", admin.enable_user, methods=["POST"]),
    Route("/api/v1/users/{user_id}/password", admin.set_password, methods=["PUT"]),
    Route("/api/v1/users/{user_id}/role", admin.set_role, methods=["PUT"]),
    Route("/api/v1/users/{user_id}/teams/{team_id}", admin.add_member, methods=["PUT"]),
    Route("/api/v1/users/{user_id}/teams/{team_id}", admin.remove_member, methods=["DELETE"]),
    Route("/api/v1/teams", admin.list_teams, methods=["GET"]),
    Route("/api/v1/teams", admin.create_team, methods=["POST"]),
]

HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _envelope(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


async def server_error(request: Request, exc: Exception) -> Response:
    """A ServerError as its status and envelope."""
    assert isinstance(exc, ServerError)
    return JSONResponse(exc.envelope(), status_code=exc.status, headers=exc.headers())


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) in the same envelope."""
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return _envelope(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up while sending its body: nothing to answer, nothing to log."""
    return Response(status_code=400)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: log it without request data and answer the envelope with 500."""
    # The traceback's frames only: messages of driver errors can carry patient values.
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "unexpected %s on %s %s\n%s", type(exc).__name__, request.method, request.url.path, frames
    )
    return _envelope(500, "internal_error", "unexpected server error")


HOUSEKEEPING_EVERY = 3600.0  # seconds between runs of Service.housekeeping in a server


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """While the server runs: housekeeping every hour (each process; the work is
    idempotent), first a minute after start."""

    async def every_hour() -> None:
        await anyio.sleep(60)
        while True:
            try:
                await to_thread.run_sync(app.state.service.housekeeping, limiter=app.state.limiter)
            except ServerError as exc:  # the database was busy: next hour
                log.warning("housekeeping skipped: %s", exc.code)
            await anyio.sleep(HOUSEKEEPING_EVERY)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(every_hour)
        yield
        tasks.cancel_scope.cancel()


def create_app(settings: Settings, database: Database, *, clock: Clock = time.time) -> Starlette:
    """The API over ``database``; ``clock`` (seconds since the epoch) is injectable for tests."""
    app = Starlette(
        lifespan=lifespan,
        routes=ROUTES,
        exception_handlers={
            ServerError: server_error,
            HTTPException: http_error,
            ClientDisconnect: client_gone,
            Exception: unexpected_error,
        },
    )
    # "/api/v1/me/" is not a route: a 404 envelope, not a redirect with an empty body.
    app.router.redirect_slashes = False
    app.state.service = Service(settings, database, clock)
    app.state.limiter = CapacityLimiter(worker_threads(settings, database))
    # Sign-ins wait here, not on the database's threads: one hashes at a time in the process
    # (server.passwords), a few more hold their short database reads meanwhile.
    app.state.sign_in_limiter = CapacityLimiter(4)
    return app


def worker_threads(settings: Settings, database: Database) -> int:
    """How many threads run database work at once.

    Few on SQLite: the work is Python holding the GIL and writers queue on one lock, so
    more threads only trade the GIL back and forth (at 32 threads that doubled the CPU
    time of a pull and cost a third of push throughput in ``benchmarks.server``). More on
    PostgreSQL, where threads also wait on the network. Password hashing, which releases
    the GIL, keeps the framework's default pool (``api.enrol``).
    """
    return settings.worker_threads or (2 if database.is_sqlite else 8)
