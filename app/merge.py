"""Merging a duplicate patient into another: the same person, recorded twice.

The merge screen (``app.views.patient_merge``) lets the liaison pick the other patient,
shows both side by side with what will move, asks, then calls ``merge``. The server does
the merge (``POST /api/v1/patients/{id}/merge``) so that every phone ends up the same:
it needs a connection, and a patient only on this phone is sent first. A sync then
brings the moved records; local edits still filed under the duplicate follow it
(``app.store.Store.apply_pull``, ``sync.merged``). No Flet here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sync import errors as sync_errors
from sync import merged

if TYPE_CHECKING:
    from app.state import AppState

NEEDS_CONNECTION = "Merging needs a connection to the server. Try again when you are online."
NOT_SENT = "{name} is not on the server yet. Sync, then try the merge again."
DETAILS = (
    ("birth_date", "Birth date"),
    ("phone", "Phone"),
    ("address", "Address"),
    ("language", "Language"),
    ("consent_status", "Consent"),
    ("risk_flags", "Risk flags"),
    ("caregivers", "Caregivers"),
    ("attachments", "Photos and documents"),
    ("status", "Status"),
)
LABELS = {"name": "Name", "site_id": "Site", **dict(DETAILS)}
REFUSED = {
    404: "The server does not know one of these patients. Sync, then try again.",
    409: "One of these patients was merged or deleted already. Sync to see the latest.",
    422: "These two patients cannot be merged: they belong to different teams.",
}


@dataclass
class MergeForm:
    """The merge screen's state while it is open (kept in ``AppState.ui``)."""

    query: str = ""
    survivor_id: str | None = None
    confirming: bool = False
    busy: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Side:
    """One patient as the side-by-side comparison shows them."""

    id: str
    name: str
    details: list[tuple[str, str]]  # (label, value) of the details they have
    records: int  # visits, tasks, referrals... filed under them on this phone


@dataclass(frozen=True)
class Preview:
    """Both patients and what the merge does, in words for the confirmation."""

    duplicate: Side
    survivor: Side
    gains: list[str] = field(default_factory=list)  # labels of details the survivor gains
    differing: list[str] = field(default_factory=list)  # labels both have, differently


def form(ui: dict[str, Any], duplicate_id: str) -> MergeForm:
    """The screen state for merging ``duplicate_id`` (created on first use)."""
    found = ui.get(f"merge:{duplicate_id}")
    if not isinstance(found, MergeForm):
        found = ui[f"merge:{duplicate_id}"] = MergeForm()
    return found


def _shown(value: Any) -> str:
    if isinstance(value, list):
        items = [item.get("name", "") if isinstance(item, dict) else str(item) for item in value]
        return ", ".join(i for i in items if i) or f"{len(value)}"
    return str(value)


def side(store: Any, patient: dict[str, Any]) -> Side:
    """A patient's name, details and how many records they have here."""
    fields = patient["fields"]
    details = [(label, _shown(fields[name])) for name, label in DETAILS if fields.get(name)]
    records = len([r for r in store.list(patient_id=patient["id"]) if r["type"] != "patient"])
    return Side(patient["id"], str(fields.get("name") or "Unnamed"), details, records)


def candidates(store: Any, duplicate_id: str, query: str, limit: int = 20) -> list[Side]:
    """Patients matching ``query`` the duplicate could merge into: same team, not itself."""
    duplicate = store.get(duplicate_id)
    if duplicate is None or not query.strip():
        return []
    team = duplicate["fields"].get("team_id")
    found = [
        p
        for p in store.search_patients(query, limit + 1)
        if p["id"] != duplicate_id and (team is None or p["fields"].get("team_id") in (None, team))
    ]
    return [side(store, p) for p in found[:limit]]


def preview(store: Any, duplicate_id: str, survivor_id: str) -> Preview | None:
    """Both patients side by side and what will change; None when one is not here."""
    duplicate, survivor = store.get(duplicate_id), store.get(survivor_id)
    if duplicate is None or survivor is None or duplicate_id == survivor_id:
        return None
    gains = merged.taken_from_duplicate(survivor["fields"], duplicate["fields"])
    differing = merged.differing(survivor["fields"], duplicate["fields"])
    return Preview(
        side(store, duplicate),
        side(store, survivor),
        [LABELS.get(name, name) for name in gains],
        [LABELS.get(name, name) for name in differing],
    )


async def merge(app: AppState, duplicate_id: str, survivor_id: str) -> str | None:
    """Ask the server to merge, then sync; None when done, else what to tell the user."""
    try:
        client = app.syncing.client()
    except (sync_errors.SyncError, ValueError):
        return NEEDS_CONNECTION
    try:
        if not await client.healthz():
            return NEEDS_CONNECTION
        problem = await _sent_first(app, duplicate_id, survivor_id)
        if problem is not None:
            return problem
        await client.merge_patient(duplicate_id, survivor_id)
    except sync_errors.ServerUnavailable:
        return NEEDS_CONNECTION
    except sync_errors.AuthExpired:
        return "Your sign-in has expired. Sign in again on the Sync screen, then try again."
    except sync_errors.ServerRefused as exc:
        return REFUSED.get(exc.status, f"The server refused: {exc.message}")
    finally:
        await client.aclose()
    await app.syncing.sync_now()  # the moved records, now
    return None


async def _sent_first(app: AppState, *patient_ids: str) -> str | None:
    """The server merges only what it has: sync first when a patient is only here."""
    if all(_on_server(app.require_store(), p) for p in patient_ids):
        return None
    await app.syncing.sync_now()
    store = app.require_store()  # VaultLocked if locked during the sync
    for patient_id in patient_ids:
        if not _on_server(store, patient_id):
            record = store.get(patient_id) or {"fields": {}}
            return NOT_SENT.format(name=record["fields"].get("name") or "This patient")
    return None


def _on_server(store: Any, record_id: str) -> bool:
    record = store.get(record_id)
    return record is not None and isinstance(record.get("rev"), int)
