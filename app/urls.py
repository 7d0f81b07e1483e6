"""Every link in the app, written once: one function per screen, and where a record leads.

Views and read models never spell a route: they call these (``urls.patient(pid)``), so a
screen's address changes in one place. The route table (``app.routes``) holds the patterns
these produce; ``tests/app/test_routes.py`` checks that each helper lands on its screen.
"""

from __future__ import annotations

from urllib.parse import urlencode

FIRST_RUN = "/first-run"
UNLOCK = "/unlock"
TODAY = "/today"
CASELOAD = "/caseload"
PICK_PATIENT = "/new-assessment"  # the caseload, choosing whom to assess
SYNC = "/sync"
SETTINGS = "/settings"
TASKS = "/tasks"
REFERRALS = "/referrals"
ROUNDS = "/rounds"
NEW_ROUND = "/round"
HOME = TODAY


def _query(path: str, **params: str | None) -> str:
    given = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(given)}" if given else path


def patient(patient_id: str) -> str:
    """A patient's page."""
    return f"/patient/{patient_id}"


def edit_patient(patient_id: str) -> str:
    """The form that edits a patient's details."""
    return f"/patient/{patient_id}/edit"


def merge_patient(patient_id: str) -> str:
    """Merge a patient recorded twice into their other record."""
    return f"/patient/{patient_id}/merge"


def assess(patient_id: str) -> str:
    """A new assessment (or today's draft) for a patient."""
    return f"/assess/{patient_id}"


def visit(visit_id: str) -> str:
    """One visit: its draft form, or the final record with its addenda."""
    return f"/visit/{visit_id}"


def refer(patient_id: str, referral_id: str | None = None, **extra: str | None) -> str:
    """A patient's referral form: a new one, or ``referral_id``."""
    return _query(f"/refer/{patient_id}", referral_id=referral_id, **extra)


def tasks(patient_id: str | None = None) -> str:
    """The task list: everyone's, or one patient's."""
    return _query(TASKS, patient_id=patient_id)


def transition(patient_id: str, transition_id: str | None = None) -> str:
    """A patient's transition form: a new one, or ``transition_id``."""
    return _query(f"/transition/{patient_id}", transition_id=transition_id)


def office_round(round_id: str | None = None) -> str:
    """An office round: a new one (``None``), or a saved one to go on with."""
    return f"/round/{round_id}" if round_id else NEW_ROUND


def for_record(
    kind: str | None,
    record_id: str | None,
    patient_id: str | None = None,
    *,
    link: str | None = None,
) -> str | None:
    """Where a record of ``kind`` is seen and edited (None: nowhere on this phone).

    ``link`` is the record the row points into: a round entry's round, an addendum's visit.
    """
    if kind == "patient" and record_id:
        return patient(record_id)
    if kind == "visit" and record_id:
        return visit(record_id)
    if kind == "addendum":
        return visit(link) if link else None
    if kind in ("round", "round_entry"):
        round_id = record_id if kind == "round" else link
        return office_round(round_id) if round_id else ROUNDS
    if kind == "task":
        return tasks(patient_id)
    if kind == "referral" and patient_id:
        return refer(patient_id, record_id)
    if kind == "transition" and patient_id:
        return transition(patient_id, record_id)
    return patient(patient_id) if patient_id else None
