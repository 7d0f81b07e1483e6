"""Deleting a patient added by mistake: a liaison's only while nothing else names it, a
supervisor's or an admin's with its records unless a visit is final; refusals carry a
code (never a 500)."""

from __future__ import annotations

import pytest

from server import accounts
from tests.server.helpers import PATIENT, enrol

pytestmark = pytest.mark.anyio


def _outcome(body):
    result = body["results"][-1]
    return result["status"], (result["error"] or {}).get("code")


async def _patient(device):
    patient = device.upsert("patient", PATIENT)
    assert _outcome(await device.push(patient)) == ("applied", None)
    return patient["record_id"]


async def test_a_liaison_deletes_a_patient_with_no_other_records(client, clock, org):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    pid = await _patient(alice)
    assert _outcome(await alice.push(alice.delete("patient", pid, None))) == ("applied", None)
    found, _ = await amy.pull_all()
    assert found[pid]["deleted"] is True


async def test_a_liaison_may_not_delete_a_patient_with_records(client, clock, org):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    pid = await _patient(alice)
    task = amy.upsert("task", {"patient_id": pid, "title": "Call back"})
    await amy.push(task)  # a teammate's task the first phone has not seen yet
    refused = await alice.push(alice.delete("patient", pid, None))
    assert _outcome(refused) == ("rejected", "has_records")
    assert "supervisor" in refused["results"][0]["error"]["message"]
    found, _ = await alice.pull_all()
    assert found[pid]["deleted"] is False and found[task["record_id"]]["deleted"] is False


@pytest.mark.parametrize("who", ["sue", "root"])
async def test_a_supervisor_deletes_a_patient_and_its_draft_records(
    client, clock, org, database, who
):
    alice = await enrol(client, clock, "alice")
    if who == "root":  # an admin sees patients only of a team it is a member of
        with database.write() as conn:
            accounts.add_to_team(conn, org.users["root"], org.team_a, "test", clock())
    boss = await enrol(client, clock, who)
    pid = await _patient(alice)
    records = [
        alice.upsert("visit", {"patient_id": pid, "setting": "home", "status": "draft"}),
        alice.upsert("task", {"patient_id": pid, "title": "Call back"}),
        alice.upsert("referral", {"patient_id": pid, "to_name": "Food bank"}),
        alice.upsert("transition", {"patient_id": pid, "status": "planned"}),
    ]
    await alice.push(*records)
    await boss.pull_all()
    assert _outcome(await boss.push(boss.delete("patient", pid, None))) == ("applied", None)
    found, _ = await alice.pull_all()
    assert {r["record_id"] for r in records} | {pid} <= set(found)
    assert all(found[i]["deleted"] for i in [pid, *(r["record_id"] for r in records)])


async def test_nobody_deletes_a_patient_with_a_final_visit(client, clock, org):
    alice = await enrol(client, clock, "alice")
    sue = await enrol(client, clock, "sue")
    pid = await _patient(alice)
    final = {
        "patient_id": pid,
        "setting": "home",
        "started_at": "2026-12-01T10:00:00",
        "triage": "information_referral",
        "consent_confirmed": True,
        "status": "final",
    }
    await alice.push(alice.upsert("visit", final))
    for device in (alice, sue):
        assert _outcome(await device.push(device.delete("patient", pid, None))) == (
            "rejected",
            "has_final_visits",
        )


async def test_the_same_batch_deletes_records_then_the_patient(client, clock, org):
    """A supervisor's phone sends the records' deletes before the patient's; a liaison's
    phone may delete its own task first, then the patient it no longer needs."""
    alice = await enrol(client, clock, "alice")
    pid = await _patient(alice)
    task = alice.upsert("task", {"patient_id": pid, "title": "Typo"})
    await alice.push(task)
    body = await alice.push(
        alice.delete("task", task["record_id"], None), alice.delete("patient", pid, None)
    )
    assert [r["status"] for r in body["results"]] == ["applied", "applied"]


async def test_another_teams_patient_stays_out_of_scope(client, clock, org):
    alice = await enrol(client, clock, "alice")
    bob = await enrol(client, clock, "bob")
    pid = await _patient(alice)
    assert _outcome(await bob.push(bob.delete("patient", pid, None))) == (
        "rejected",
        "out_of_scope",
    )
