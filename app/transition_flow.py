"""A care transition's life as a state machine: planned -> handed_off -> acknowledged ->
complete, and what each step needs. Pure functions, table-tested in tests/app/test_flows.py.

Handing off needs the discharge date, the receiving site or home care agency and who is
accountable; completing needs every checklist item ticked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync.errors import FieldError
from sync.schema import CHECKLIST_ITEMS

TRANSITION_NEXT: dict[str, tuple[str, ...]] = {
    "planned": ("handed_off",),
    "handed_off": ("acknowledged",),
    "acknowledged": ("complete",),
    "complete": (),
}


def transition_step_errors(fields: Mapping[str, Any], status: str) -> list[FieldError]:
    """Why a transition cannot move to ``status`` now (empty when it can)."""
    current = fields.get("status") or "planned"
    if status not in TRANSITION_NEXT.get(current, ()):
        return [FieldError("status", f"cannot go from {current} to {status}")]
    if status == "handed_off":
        return _hand_off_errors(fields)
    if status == "complete":
        checklist = fields.get("checklist") or {}
        if not all(checklist.get(i) for i in CHECKLIST_ITEMS):
            return [FieldError("checklist", "tick every item to complete")]
    return []


def _hand_off_errors(fields: Mapping[str, Any]) -> list[FieldError]:
    errors = []
    if not fields.get("discharge_date"):
        errors.append(FieldError("discharge_date", "is required to hand off"))
    if not (fields.get("to_site_id") or fields.get("home_care_agency")):
        errors.append(FieldError("home_care_agency", "is required to hand off"))
    if not str(fields.get("accountable") or "").strip():
        errors.append(FieldError("accountable", "is required to hand off"))
    return errors
