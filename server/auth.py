"""Accounts and devices: teams, users, roles, device tokens, expiry, revocation, sign-in.

A device token is 256 random bits (URL-safe base64); only its sha256 is stored, which is
enough for a high-entropy secret. A token expires after ``token_idle_seconds`` unused and
``token_absolute_seconds`` after enrolment; a revoked device is told to wipe itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, any_, bindparam, insert, select, update

from server import audit, db
from server.errors import (
    Conflict,
    DeviceRevoked,
    Invalid,
    NotFound,
    TokenExpired,
    Unauthorized,
)
from server.scope import ROLES, Caller
from server.settings import Settings
from server.statement import Pipeline, Statement, json_texts

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Seconds between last_used_at writes: a read-only request writes only when its device's
# last use is older, so idle expiry is exact to this granularity and most reads never write.
TOUCH_EVERY = 60.0


def token_hash(token: str) -> str:
    """What is stored for a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_team(conn: Connection, name: str, now: float) -> str:
    """Add a team; raises Conflict when the name is taken."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("team name must be 1 to 100 characters", field="name")
    if conn.execute(select(db.teams.c.id).where(db.teams.c.name == name)).first():
        raise Conflict(f"team {name!r} already exists")
    team_id = str(uuid.uuid4())
    conn.execute(insert(db.teams).values(id=team_id, name=name, created_at=now))
    return team_id


def team_id_by_name(conn: Connection, name: str) -> str:
    """The id of the named team; raises NotFound."""
    found = conn.execute(select(db.teams.c.id).where(db.teams.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no team named {name!r}")
    return str(found)


def create_user(
    conn: Connection,
    username: str,
    password_hash: str,
    role: str,
    team_ids: list[str],
    now: float,
) -> str:
    """Add a user with a role and team memberships; raises Invalid or Conflict."""
    if not USERNAME_RE.match(username):
        raise Invalid("username: lower-case letters, digits, . _ -", field="username")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    if conn.execute(select(db.users.c.id).where(db.users.c.username == username)).first():
        raise Conflict(f"user {username!r} already exists")
    user_id = str(uuid.uuid4())
    conn.execute(
        insert(db.users).values(
            id=user_id, username=username, password_hash=password_hash, role=role, created_at=now
        )
    )
    for team_id in team_ids:
        conn.execute(insert(db.memberships).values(user_id=user_id, team_id=team_id))
    return user_id


def user_json(conn: Connection, user_id: str) -> dict[str, Any]:
    """The user as the API shows it: id, username, role and teams."""
    user = conn.execute(select(db.users).where(db.users.c.id == user_id)).one()
    teams = conn.execute(
        select(db.teams.c.id, db.teams.c.name)
        .join(db.memberships, db.memberships.c.team_id == db.teams.c.id)
        .where(db.memberships.c.user_id == user_id)
        .order_by(db.teams.c.name)
    )
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "teams": [{"id": t.id, "name": t.name} for t in teams],
    }


def sign_in_limits(
    username: str, address: str, cookie_device: str | None, settings: Settings
) -> dict[str, int]:
    """The throttle keys of a sign-in attempt and their limits.

    Attempts count against the username, except from a phone that shows the token it was
    given before (a *device cookie*, even an expired one): those count against that device
    only. So five wrong guesses by a stranger lock the name out for new phones for the
    window, but not the user's own phone signing in again. Every attempt also counts
    against the client's address.
    """
    subject = f"device:{cookie_device}" if cookie_device else f"user:{username[:64]}"
    return {
        subject: settings.throttle_user_failures,
        f"addr:{address[:100]}": settings.throttle_address_failures,
    }


def address_limit(address: str, settings: Settings) -> dict[str, int]:
    """The throttle key of the client address alone (checked before a body is read)."""
    return {f"addr:{address[:100]}": settings.throttle_address_failures}


def device_cookie(conn: Connection, device_token: str | None, username: str) -> str | None:
    """The id of the caller's earlier device when ``device_token`` is one of the named
    user's tokens (expired or not, never revoked); else None."""
    if not device_token or len(device_token) > 200:
        return None
    found = conn.execute(
        select(_D.c.id)
        .join(db.users, db.users.c.id == _D.c.user_id)
        .where(
            _D.c.token_hash == token_hash(device_token),
            db.users.c.username == username,
            _D.c.revoked_at.is_(None),
        )
    ).scalar()
    return str(found) if found else None


@dataclass(frozen=True)
class Account:
    """What a sign-in needs to know of a user."""

    user_id: str
    password_hash: str
    disabled: bool


def account_of(conn: Connection, username: str) -> Account | None:
    """The account of a username, or None."""
    u = db.users
    row = conn.execute(
        select(u.c.id, u.c.password_hash, u.c.disabled_at).where(u.c.username == username)
    ).first()
    return Account(row.id, row.password_hash, row.disabled_at is not None) if row else None


def enrol_device(conn: Connection, user_id: str, device_name: str, now: float) -> tuple[str, str]:
    """Register a device for the user; returns (device_id, token)."""
    device_id = str(uuid.uuid4())
    token = secrets.token_urlsafe(32)
    conn.execute(
        insert(db.devices).values(
            id=device_id,
            user_id=user_id,
            name=device_name,
            token_hash=token_hash(token),
            created_at=now,
            last_used_at=now,
            revoked_at=None,
            last_mutation_id=0,
        )
    )
    return device_id, token


_D = db.devices
_M = db.memberships
# The device and user behind a token, once per team of the user (the team NULL for none):
# one statement, one round trip, with the teams read in the same snapshot as the device.
_CALLER = Statement(
    select(
        _D.c.id,
        _D.c.user_id,
        _D.c.created_at,
        _D.c.last_used_at,
        _D.c.revoked_at,
        _D.c.last_mutation_id,
        db.users.c.username,
        db.users.c.role,
        db.users.c.disabled_at,
        _M.c.team_id,
    )
    .join(db.users, db.users.c.id == _D.c.user_id)
    .outerjoin(_M, _M.c.user_id == _D.c.user_id)
    .where(_D.c.token_hash == bindparam("token_hash"))
    .order_by(_M.c.team_id)
)
_TEAMS = Statement(
    select(_M.c.team_id).where(_M.c.user_id == bindparam("user_id")).order_by(_M.c.team_id)
)
TEAMS_OF_USERS = Statement(
    select(_M.c.user_id, _M.c.team_id)
    .where(_M.c.user_id == any_(json_texts("user_ids")))
    .order_by(_M.c.user_id, _M.c.team_id),
    replan=True,
)
"""(user id, team id) of every membership of the users in ``{"user_ids": <JSON array>}``
(PostgreSQL), in the order ``authenticate`` gives a caller's teams."""
_TOUCH = Statement(
    update(_D)
    .where(_D.c.id == bindparam("device_id"), _D.c.last_used_at < bindparam("now"))
    .values(last_used_at=bindparam("now"))
)


def authenticate(
    conn: Connection, token: str | None, settings: Settings, now: float, *, touch: bool = True
) -> Caller:
    """The caller behind a bearer token; raises Unauthorized, TokenExpired or DeviceRevoked.

    ``touch`` records the use (for idle expiry) when due; pass False in a read-only
    transaction and call ``record_use`` later in a write when ``needs_touch`` says so.
    """
    if not token:
        raise Unauthorized("sign in first: Authorization: Bearer <token>")
    rows = _CALLER.rows(conn, {"token_hash": token_hash(token)})
    if not rows:
        raise Unauthorized("unknown token")
    (
        device_id,
        user_id,
        created_at,
        last_used_at,
        revoked_at,
        last_id,
        username,
        role,
        disabled_at,
        _,
    ) = rows[0]
    if revoked_at is not None or disabled_at is not None:
        raise DeviceRevoked("this device was revoked; its local data must be erased")
    if now - created_at > settings.token_absolute_seconds:
        raise TokenExpired("the sign-in has expired; sign in again")
    if now - last_used_at > settings.token_idle_seconds:
        raise TokenExpired("the sign-in expired after a long idle time; sign in again")
    caller = Caller(
        user_id=user_id,
        username=username,
        role=role,
        team_ids=tuple(row[-1] for row in rows if row[-1] is not None),
        device_id=device_id,
        last_mutation_id=int(last_id),
        last_used_at=float(last_used_at),
    )
    if touch and needs_touch(caller, now):
        record_use(conn, caller, now)
    return caller


def team_ids_of(conn: Connection, user_id: str) -> tuple[str, ...]:
    """The teams the user is a member of now, in the order ``authenticate`` gives them."""
    return tuple(row[0] for row in _TEAMS.rows(conn, {"user_id": user_id}))


def needs_touch(caller: Caller, now: float) -> bool:
    """True when the device's last use is older than TOUCH_EVERY (idle expiry granularity)."""
    return now - caller.last_used_at > TOUCH_EVERY


def record_use(conn: Connection, caller: Caller, now: float) -> None:
    """Move the device's last use (for idle expiry) forward to ``now``."""
    _TOUCH.run(conn, {"device_id": caller.device_id, "now": now})


def queue_use(pipeline: Pipeline, caller: Caller, now: float) -> None:
    """``record_use``, queued on a pipeline."""
    pipeline.add(_TOUCH, {"device_id": caller.device_id, "now": now})


def device_ids_of(conn: Connection, user_id: str) -> set[str]:
    """Every device the user ever enrolled (revoked ones too): the clock nodes that are
    theirs, since a phone that signed in again keeps its clock."""
    devices = db.devices
    return set(conn.execute(select(devices.c.id).where(devices.c.user_id == user_id)).scalars())


def device_json(conn: Connection, device_id: str) -> dict[str, Any]:
    """A device as the API shows it."""
    row = conn.execute(select(db.devices).where(db.devices.c.id == device_id)).one()
    return {
        "id": row.id,
        "name": row.name,
        "created_at": row.created_at,
        "last_mutation_id": int(row.last_mutation_id),
    }


def revoke_device(conn: Connection, device_id: str, caller: Caller | None, now: float) -> None:
    """Revoke a device (the caller's own, or any for an admin or the CLI when caller=None)."""
    row = conn.execute(
        select(db.devices.c.user_id, db.devices.c.revoked_at).where(db.devices.c.id == device_id)
    ).first()
    if row is None:
        raise NotFound("no such device")
    if caller is not None and not caller.is_admin and row.user_id != caller.user_id:
        # Not 403: another user's device id must not be confirmed to exist.
        raise NotFound("no such device")
    if row.revoked_at is None:
        conn.execute(update(db.devices).where(db.devices.c.id == device_id).values(revoked_at=now))
    actor = caller.actor if caller else "cli"
    audit.append(conn, at=now, actor=actor, action="device.revoke", targets=[device_id])
