"""Two patients who are the same person, merged: the rules phone and server both follow.

The server merges (``server.merge``): every record of the *duplicate* moves to the
*survivor*, and the duplicate becomes a tombstone whose ``merged_into`` names the survivor.
That link is what lets nothing be lost later: a record that still names the duplicate
(pushed by a phone that was offline during the merge, or pending on a phone when the
tombstone arrives) is filed under the patient the link leads to (``survivor``).

``taken_from_duplicate`` says which of the duplicate's details the survivor gains: the
ones it lacks (a phone, a birth date...), and the list items it does not have yet
(risk flags, caregivers, documents). The merge screen shows the same answer before asking.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sync import schema

MERGED_INTO = "merged_into"
MAX_HOPS = 32  # a chain of merges longer than this is a loop or a bug: stop following
KEEP = ("name", "team_id")  # always the survivor's own
LIST_KINDS = ("list", "objects", "attachments")


def merged_into(record: Mapping[str, Any] | None) -> str | None:
    """The survivor a merged-away patient's tombstone names, else None."""
    if not record or record.get("type") != "patient" or not record.get("deleted"):
        return None
    fields = record.get("fields")
    value = fields.get(MERGED_INTO) if isinstance(fields, Mapping) else None
    return value if schema.is_uuid(value) else None


def survivor(patient_id: str, link: Callable[[str], str | None]) -> str:
    """The patient that holds ``patient_id``'s records now: follow ``link`` (a patient id to
    the id it was merged into, or None) until it ends; ``patient_id`` itself when not merged."""
    current, seen = patient_id, {patient_id}
    for _ in range(MAX_HOPS):
        following = link(current)
        if following is None or following in seen:
            break
        current = following
        seen.add(current)
    return current


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _key(kind: str, item: Any) -> str:
    if kind == "attachments" and isinstance(item, Mapping):
        return str(item.get("sha256"))  # one photo, whatever its caption
    return json.dumps(item, sort_keys=True)


def _union(kind: str, ours: list[Any], theirs: list[Any], limit: int) -> list[Any]:
    seen = {_key(kind, item) for item in ours}
    out = list(ours)
    for item in theirs:
        if _key(kind, item) not in seen and len(out) < limit:
            seen.add(_key(kind, item))
            out.append(item)
    return out


def taken_from_duplicate(
    survivor_fields: Mapping[str, Any], duplicate_fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The survivor's fields that change in a merge (name -> new value): a detail it lacks
    takes the duplicate's, a list gains the duplicate's items it does not have."""
    changes: dict[str, Any] = {}
    for name, spec in schema.TYPES["patient"].fields.items():
        theirs, ours = duplicate_fields.get(name), survivor_fields.get(name)
        if name in KEEP or _empty(theirs):
            continue
        if _empty(ours):
            changes[name] = theirs
        elif spec.kind in LIST_KINDS and isinstance(ours, list) and isinstance(theirs, list):
            combined = _union(spec.kind, ours, theirs, spec.max_items)
            if combined != ours:
                changes[name] = combined
    return changes


def differing(survivor_fields: Mapping[str, Any], duplicate_fields: Mapping[str, Any]) -> list[str]:
    """Details both patients have with different values: the survivor's stay (the
    duplicate's are kept on the server with its tombstone), so the screen names them."""
    out = []
    for name, spec in schema.TYPES["patient"].fields.items():
        theirs, ours = duplicate_fields.get(name), survivor_fields.get(name)
        if name == "team_id" or spec.kind in LIST_KINDS or _empty(theirs) or _empty(ours):
            continue
        if theirs != ours:
            out.append(name)
    return out
