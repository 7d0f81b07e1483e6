"""HTTP endpoints for administrators: users and teams, their whole life (DESIGN §5).

Each endpoint checks the caller is an admin, then runs one ``server.accounts`` change in
one transaction with its audit row. A new password is hashed between the two, behind the
sign-in limiter, so nobody but an admin can make the server hash.
"""

from __future__ import annotations

from typing import Any

from anyio import CapacityLimiter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server import accounts, auth
from server.api import SIGN_IN_BODY, bearer_token, in_thread, service_of
from server.bodies import read_json
from server.errors import BadRequest, Invalid
from server.passwords import hash_password, password_problem
from sync import schema


def _id(request: Request, name: str) -> str:
    value = str(request.path_params[name])
    if not schema.is_uuid(value):
        raise BadRequest("must be a lower-case UUID", field=name)
    return value


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request, SIGN_IN_BODY)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or "\x00" in value:
        raise BadRequest("must be a string", field=name)
    return value


async def _password_hash(request: Request, password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise Invalid(problem, field="password")
    service = service_of(request)
    limiter: CapacityLimiter = request.app.state.sign_in_limiter
    return await in_thread(request, hash_password, password, service.settings, limiter=limiter)


async def list_users(request: Request) -> Response:
    """GET /api/v1/users."""
    found = await in_thread(
        request,
        service_of(request).admin,
        bearer_token(request),
        lambda conn, actor, now: accounts.list_users(conn),
    )
    return JSONResponse({"users": found})


async def create_user(request: Request) -> Response:
    """POST /api/v1/users {username, password, role, team_ids}."""
    service, token = service_of(request), bearer_token(request)
    await in_thread(request, service.require_admin, token)
    body = await _body(request)
    username, role = _text(body, "username").strip().lower(), _text(body, "role")
    team_ids = body.get("team_ids", [])
    if not isinstance(team_ids, list) or not all(schema.is_uuid(t) for t in team_ids):
        raise BadRequest("must be a list of team ids", field="team_ids")
    encoded = await _password_hash(request, _text(body, "password"))

    def create(conn: Any, actor: str, now: float) -> dict[str, Any]:
        for team_id in team_ids:
            accounts.check_team(conn, team_id)
        user_id = auth.create_user(conn, username, encoded, role, list(team_ids), now)
        accounts.audit_create(conn, user_id, actor, now)
        return accounts.user_detail(conn, user_id)

    return JSONResponse(await in_thread(request, service.admin, token, create), status_code=201)


async def show_user(request: Request) -> Response:
    """GET /api/v1/users/{user_id}: the user with their devices."""
    user_id = _id(request, "user_id")
    found = await in_thread(
        request,
        service_of(request).admin,
        bearer_token(request),
        lambda conn, actor, now: accounts.user_detail(conn, user_id),
    )
    return JSONResponse(found)


async def _change_user(request: Request, change: Any) -> Response:
    """Run ``change(conn, user_id, actor, now)`` as an admin; answer the user's detail."""
    user_id = _id(request, "user_id")

    def run(conn: Any, actor: str, now: float) -> dict[str, Any]:
        change(conn, user_id, actor, now)
        return accounts.user_detail(conn, user_id)

    return JSONResponse(
        await in_thread(request, service_of(request).admin, bearer_token(request), run)
    )


async def disable_user(request: Request) -> Response:
    """POST /api/v1/users/{user_id}/disable: no sign-in, every device revoked."""
    return await _change_user(request, accounts.disable)


async def enable_user(request: Request) -> Response:
    """POST /api/v1/users/{user_id}/enable."""
    return await _change_user(request, accounts.enable)


async def set_password(request: Request) -> Response:
    """PUT /api/v1/users/{user_id}/password {password, revoke_devices}."""
    service, token, user_id = service_of(request), bearer_token(request), _id(request, "user_id")
    await in_thread(request, service.require_admin, token)
    body = await _body(request)
    revoke = body.get("revoke_devices", False)
    if not isinstance(revoke, bool):
        raise BadRequest("must be true or false", field="revoke_devices")
    encoded = await _password_hash(request, _text(body, "password"))
    await in_thread(
        request,
        service.admin,
        token,
        lambda conn, actor, now: accounts.set_password(
            conn, user_id, encoded, actor, now, revoke_devices=revoke
        ),
    )
    return Response(status_code=204)


async def set_role(request: Request) -> Response:
    """PUT /api/v1/users/{user_id}/role {role}."""
    role = _text(await _body(request), "role")
    return await _change_user(
        request,
        lambda conn, user_id, actor, now: accounts.set_role(conn, user_id, role, actor, now),
    )


async def add_member(request: Request) -> Response:
    """PUT /api/v1/users/{user_id}/teams/{team_id}."""
    user_id, team_id = _id(request, "user_id"), _id(request, "team_id")
    await in_thread(
        request,
        service_of(request).admin,
        bearer_token(request),
        lambda conn, actor, now: accounts.add_to_team(conn, user_id, team_id, actor, now),
    )
    return Response(status_code=204)


async def remove_member(request: Request) -> Response:
    """DELETE /api/v1/users/{user_id}/teams/{team_id}."""
    user_id, team_id = _id(request, "user_id"), _id(request, "team_id")
    await in_thread(
        request,
        service_of(request).admin,
        bearer_token(request),
        lambda conn, actor, now: accounts.remove_from_team(conn, user_id, team_id, actor, now),
    )
    return Response(status_code=204)


async def list_teams(request: Request) -> Response:
    """GET /api/v1/teams."""
    found = await in_thread(
        request,
        service_of(request).admin,
        bearer_token(request),
        lambda conn, actor, now: accounts.list_teams(conn),
    )
    return JSONResponse({"teams": found})


async def create_team(request: Request) -> Response:
    """POST /api/v1/teams {name}."""
    name = _text(await _body(request), "name")

    def create(conn: Any, actor: str, now: float) -> dict[str, Any]:
        team_id = auth.create_team(conn, name, now)
        accounts.audit_team(conn, team_id, actor, now)
        return {"id": team_id, "name": name.strip()}

    return JSONResponse(
        await in_thread(request, service_of(request).admin, bearer_token(request), create),
        status_code=201,
    )
