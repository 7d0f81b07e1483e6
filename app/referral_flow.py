"""A referral's life as a state machine: which status may follow which, and what each step
needs. Pure functions of a referral's fields, table-tested in tests/app/test_flows.py.

draft -> sent -> accepted -> completed -> closed; sent -> declined -> closed; any open
referral may be closed. Sending needs a recipient; completing or closing needs the outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from app import triage
from sync.errors import FieldError

OPEN = ("draft", "sent", "accepted")  # still waiting on someone: listed, can be overdue
REFERRAL_NEXT: dict[str, tuple[str, ...]] = {
    "draft": ("sent", "closed"),
    "sent": ("accepted", "declined", "closed"),
    "accepted": ("completed", "closed"),
    "declined": ("closed",),
    "completed": ("closed",),
    "closed": (),
}
NEEDS_OUTCOME = ("completed", "closed")
DEFAULT_DUE_DAYS = 14  # an urgency the triage table does not know is routine


def referral_step_errors(fields: Mapping[str, Any], status: str) -> list[FieldError]:
    """Why a referral cannot move to ``status`` now (empty when it can)."""
    current = fields.get("status") or "draft"
    if status not in REFERRAL_NEXT.get(current, ()):
        return [FieldError("status", f"cannot go from {current} to {status}")]
    errors = []
    if status == "sent" and not (fields.get("resource_id") or fields.get("to_name")):
        errors.append(FieldError("to_name", "choose a resource or type who it goes to"))
    if status in NEEDS_OUTCOME and not str(fields.get("outcome") or "").strip():
        errors.append(FieldError("outcome", "write the outcome first"))
    return errors


def default_due(urgency: str, today: dt.date) -> str:
    """The due date a referral of ``urgency`` gets unless the liaison picks one."""
    days = triage.URGENCY_DAYS.get(urgency, DEFAULT_DUE_DAYS)
    return (today + dt.timedelta(days=days)).isoformat()


def is_overdue(due: Any, today: dt.date) -> bool:
    """True when ``due`` (YYYY-MM-DD) is before today."""
    return isinstance(due, str) and due[:10] < today.isoformat()
