"""Who may see what: the authenticated caller and the SQL filter of visible records.

Org records (site, resource, round) are visible to every user. A patient and its records
are visible to the members of the patient's team, whatever their role: supervisors see
the teams they belong to, and an admin manages accounts but sees patient data only of
teams it is a member of (least privilege; DESIGN leaves this open).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, or_

ROLES = ("liaison", "supervisor", "admin")


@dataclass(frozen=True)
class Caller:
    """The user and device behind a request, taken from the token only."""

    user_id: str
    username: str
    role: str
    team_ids: tuple[str, ...]
    device_id: str
    last_mutation_id: int = 0
    last_used_at: float = 0.0

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"user:{self.username} device:{self.device_id}"

    @property
    def is_admin(self) -> bool:
        """True for the admin role."""
        return self.role == "admin"

    def sees_team(self, team_id: str | None) -> bool:
        """True when a record of ``team_id`` (None for org records) is in scope."""
        return team_id is None or team_id in self.team_ids


def visible(table: Table, caller: Caller) -> ColumnElement[bool]:
    """SQL condition: rows of ``table`` (with a ``team_id`` column) the caller may see."""
    return or_(table.c.team_id.is_(None), table.c.team_id.in_(caller.team_ids))
