"""A record's facts: the one date and the one state the lists filter on.

Today keeps the visits and rounds of a day and the open tasks and referrals due by it; the
caseload wants each patient's status, open follow-ups, open referrals and last visit. With
each record's facts beside the store's index, those lists look at a few short strings per
record and read in full only the records they show — which is what lets the records
themselves stay on disk (a store of 100k records holds about 250 MB of them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Fact = tuple[str, str]  # (when: an ISO date or date-time, or ""; state)
TYPES = frozenset({"visit", "task", "referral", "round", "patient"})  # the types with facts


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def fact_of(type_name: str, fields: Mapping[str, Any]) -> Fact | None:
    """The facts of a live record of ``type_name``, or None for a type no list filters:

    - visit: when it started; "final" or "draft";
    - task: its due date; "done" or "open";
    - referral: its due date; its status;
    - round: its date; "";
    - patient: ""; its status ("active" unless set).
    """
    if type_name == "visit":
        final = fields.get("status") == "final"
        return _text(fields.get("started_at")), "final" if final else "draft"
    if type_name == "task":
        return _text(fields.get("due_date")), "done" if fields.get("done") else "open"
    if type_name == "referral":
        return _text(fields.get("due_date")), _text(fields.get("status"))
    if type_name == "round":
        return _text(fields.get("date")), ""
    if type_name == "patient":
        status = fields.get("status", "active")
        return "", status if isinstance(status, str) else "active"
    return None
