"""The life of an account: listing, disabling and enabling users, resetting passwords,
changing roles and team memberships. Each change writes its audit row.

A disabled user cannot sign in and every device of theirs is revoked, so its next request
gets ``device_revoked`` and the phone erases its data. Leaving a team is recorded with a
rev (``membership_changes``): the user's devices are told in their next pull to purge that
team's patients (``server.pull``). Joining a team gives the team's records new revs so
the new member's devices pull them, even though their cursors are past the old revs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from server import audit, auth, db, records
from server.errors import Conflict, Invalid, NotFound
from server.scope import ROLES

_U, _D, _M = db.users, db.devices, db.memberships


def user_id_by_name(conn: Connection, username: str) -> str:
    """The id of a username; raises NotFound."""
    found = conn.execute(select(_U.c.id).where(_U.c.username == username.strip().lower())).scalar()
    if found is None:
        raise NotFound(f"no user named {username!r}")
    return str(found)


def _check_user(conn: Connection, user_id: str) -> Any:
    row = conn.execute(select(_U).where(_U.c.id == user_id)).first()
    if row is None:
        raise NotFound("no such user")
    return row


def check_team(conn: Connection, team_id: str) -> None:
    """Raise NotFound unless the team exists."""
    if conn.execute(select(db.teams.c.id).where(db.teams.c.id == team_id)).first() is None:
        raise NotFound("no such team")


def audit_create(conn: Connection, user_id: str, actor: str, now: float) -> None:
    """The audit row of a new user (``auth.create_user`` adds it)."""
    audit.append(conn, at=now, actor=actor, action="user.create", targets=[user_id])


def audit_team(conn: Connection, team_id: str, actor: str, now: float) -> None:
    """The audit row of a new team (``auth.create_team`` adds it)."""
    audit.append(conn, at=now, actor=actor, action="team.create", targets=[team_id])


def user_detail(conn: Connection, user_id: str) -> dict[str, Any]:
    """A user as an administrator sees it: the API's user, disabled or not, devices."""
    row = _check_user(conn, user_id)
    return {
        **auth.user_json(conn, user_id),
        "disabled": row.disabled_at is not None,
        "devices": devices_of(conn, user_id),
    }


def list_users(conn: Connection) -> list[dict[str, Any]]:
    """Every user with role, teams, disabled or not and the count of active devices."""
    active: dict[str, int] = dict(
        conn.execute(
            select(_D.c.user_id, func.count())
            .where(_D.c.revoked_at.is_(None))
            .group_by(_D.c.user_id)
        ).all()
    )
    users = conn.execute(select(_U.c.id, _U.c.disabled_at).order_by(_U.c.username)).all()
    return [
        {
            **auth.user_json(conn, row.id),
            "disabled": row.disabled_at is not None,
            "active_devices": int(active.get(row.id, 0)),
        }
        for row in users
    ]


def devices_of(conn: Connection, user_id: str) -> list[dict[str, Any]]:
    """The user's devices, newest first, revoked ones included."""
    rows = conn.execute(select(_D).where(_D.c.user_id == user_id).order_by(_D.c.created_at.desc()))
    return [
        {
            "id": r.id,
            "name": r.name,
            "created_at": r.created_at,
            "last_used_at": r.last_used_at,
            "revoked_at": r.revoked_at,
        }
        for r in rows
    ]


def list_teams(conn: Connection) -> list[dict[str, Any]]:
    """Every team, by name."""
    rows = conn.execute(select(db.teams.c.id, db.teams.c.name).order_by(db.teams.c.name))
    return [{"id": r.id, "name": r.name} for r in rows]


def disable(conn: Connection, user_id: str, actor: str, now: float) -> list[str]:
    """Disable a user and revoke every device of theirs; returns the devices revoked."""
    _check_user(conn, user_id)
    conn.execute(
        update(_U).where(_U.c.id == user_id, _U.c.disabled_at.is_(None)).values(disabled_at=now)
    )
    revoked = _revoke_devices(conn, user_id, now)
    audit.append(conn, at=now, actor=actor, action="user.disable", targets=[user_id, *revoked])
    return revoked


def _revoke_devices(conn: Connection, user_id: str, now: float) -> list[str]:
    """Revoke every active device of the user; returns their ids."""
    return list(
        conn.execute(
            update(_D)
            .where(_D.c.user_id == user_id, _D.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(_D.c.id)
        ).scalars()
    )


def enable(conn: Connection, user_id: str, actor: str, now: float) -> None:
    """Let a disabled user sign in again (their old devices stay revoked)."""
    _check_user(conn, user_id)
    conn.execute(update(_U).where(_U.c.id == user_id).values(disabled_at=None))
    audit.append(conn, at=now, actor=actor, action="user.enable", targets=[user_id])


def set_password(
    conn: Connection,
    user_id: str,
    encoded: str,
    actor: str,
    now: float,
    *,
    revoke_devices: bool = False,
) -> list[str]:
    """Store a new password hash; optionally revoke the user's devices (they erase their
    data, unsynced edits included: for a compromised account). Returns the revoked."""
    _check_user(conn, user_id)
    conn.execute(update(_U).where(_U.c.id == user_id).values(password_hash=encoded))
    revoked = _revoke_devices(conn, user_id, now) if revoke_devices else []
    audit.append(conn, at=now, actor=actor, action="user.password", targets=[user_id, *revoked])
    return revoked


def set_role(conn: Connection, user_id: str, role: str, actor: str, now: float) -> None:
    """Change a user's role."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    _check_user(conn, user_id)
    conn.execute(update(_U).where(_U.c.id == user_id).values(role=role))
    audit.append(conn, at=now, actor=actor, action=f"user.role.{role}", targets=[user_id])


def add_to_team(conn: Connection, user_id: str, team_id: str, actor: str, now: float) -> int:
    """Make the user a member of the team; returns how many records get new revs."""
    _check_user(conn, user_id)
    check_team(conn, team_id)
    member = select(_M).where(_M.c.user_id == user_id, _M.c.team_id == team_id)
    if conn.execute(member).first() is not None:
        raise Conflict("already a member of that team")
    conn.execute(insert(_M).values(user_id=user_id, team_id=team_id))
    moved = records.restamp_team(conn, team_id)
    audit.append(conn, at=now, actor=actor, action="team.add_member", targets=[user_id, team_id])
    return moved


def remove_from_team(conn: Connection, user_id: str, team_id: str, actor: str, now: float) -> None:
    """End a membership; the user's devices purge the team's patients at their next pull."""
    _check_user(conn, user_id)
    gone = conn.execute(delete(_M).where(_M.c.user_id == user_id, _M.c.team_id == team_id))
    if not gone.rowcount:
        raise NotFound("not a member of that team")
    revs = records.Revs(conn)
    conn.execute(
        insert(db.membership_changes).values(
            rev=revs.next(), user_id=user_id, team_id=team_id, created_at=now
        )
    )
    revs.finish()
    audit.append(conn, at=now, actor=actor, action="team.remove_member", targets=[user_id, team_id])
