"""Scope: teams see only their patients; purge when a patient leaves the caller's team."""

from __future__ import annotations

import pytest

from server.__main__ import main
from tests.server.helpers import PATIENT, enrol, new_id

pytestmark = pytest.mark.anyio


async def test_other_team_neither_sees_nor_writes(client, clock, org):
    alice = await enrol(client, clock, "alice")
    bob = await enrol(client, clock, "bob")
    patient = alice.upsert("patient", PATIENT)
    pid = patient["record_id"]
    site = alice.upsert("site", {"name": "Clinic"})
    await alice.push(patient, site)
    found, _ = await bob.pull_all()
    assert set(found) == {site["record_id"]}  # org records are shared
    body = await bob.push(
        bob.upsert("patient", {"phone": "1"}, pid),
        bob.upsert("task", {"patient_id": pid, "title": "x"}),
        bob.upsert("task", {"patient_id": new_id(), "title": "x"}),
        bob.delete("patient", pid, None),
    )
    assert [r["error"]["code"] for r in body["results"]] == ["out_of_scope"] * 4


async def test_supervisor_sees_and_writes_the_team(client, clock, org):
    alice = await enrol(client, clock, "alice")
    sue = await enrol(client, clock, "sue")
    patient = alice.upsert("patient", PATIENT)
    await alice.push(patient)
    found, _ = await sue.pull_all()
    assert patient["record_id"] in found
    task = sue.upsert("task", {"patient_id": patient["record_id"], "title": "follow up"})
    assert (await sue.push(task))["results"][0]["status"] == "applied"


async def test_admin_without_team_sees_no_patients(client, clock, org):
    alice = await enrol(client, clock, "alice")
    root = await enrol(client, clock, "root")
    await alice.push(alice.upsert("patient", PATIENT))
    found, _ = await root.pull_all()
    assert found == {}


async def test_team_of_a_new_patient(client, clock, org):
    multi = await enrol(client, clock, "multi")
    alice = await enrol(client, clock, "alice")
    lonely = await enrol(client, clock, "lonely")
    body = await multi.push(
        multi.upsert("patient", PATIENT),
        multi.upsert("patient", {**PATIENT, "team_id": org.team_b}),
    )
    unnamed, named = body["results"]
    assert unnamed["error"]["code"] == "invalid" and unnamed["error"]["field"] == "team_id"
    assert named["status"] == "applied"
    body = await alice.push(alice.upsert("patient", {**PATIENT, "team_id": org.team_b}))
    assert body["results"][0]["error"]["code"] == "out_of_scope"
    body = await lonely.push(lonely.upsert("patient", PATIENT))
    assert body["results"][0]["error"]["code"] == "out_of_scope"


async def test_team_and_patient_links_cannot_be_changed_by_push(client, clock, org):
    multi = await enrol(client, clock, "multi")
    patient = multi.upsert("patient", {**PATIENT, "team_id": org.team_a})
    other = multi.upsert("patient", {**PATIENT, "team_id": org.team_a})
    pid = patient["record_id"]
    task = multi.upsert("task", {"patient_id": pid, "title": "t"})
    await multi.push(patient, other, task)
    body = await multi.push(
        multi.upsert("patient", {"team_id": org.team_b}, pid),
        multi.upsert("task", {"patient_id": other["record_id"]}, task["record_id"]),
        multi.upsert("patient", {"team_id": org.team_a, "phone": "1"}, pid),
    )
    assert [(r["status"], (r["error"] or {}).get("field")) for r in body["results"]] == [
        ("rejected", "team_id"),
        ("rejected", "patient_id"),
        ("applied", None),
    ]


async def test_purge_on_reassign(client, clock, org, database_url, capsys):
    alice = await enrol(client, clock, "alice")
    bob = await enrol(client, clock, "bob")
    multi = await enrol(client, clock, "multi")
    patient = alice.upsert("patient", PATIENT)
    pid = patient["record_id"]
    task = alice.upsert("task", {"patient_id": pid, "title": "call"})
    keep = alice.upsert("patient", PATIENT)
    await alice.push(patient, task, keep)
    for device in (alice, bob, multi):
        await device.pull_all()
    assert main(["assign", pid, "--team", "B", "--database-url", database_url]) == 0
    assert "moved 2 records" in capsys.readouterr().out
    found, purged = await alice.pull_all()
    assert purged == [pid] and found == {}
    found, purged = await bob.pull_all()
    assert purged == [] and set(found) == {pid, task["record_id"]}
    assert found[pid]["fields"]["team_id"] == org.team_b
    found, purged = await multi.pull_all()  # in both teams: keeps it, sees the move
    assert purged == [] and set(found) == {pid, task["record_id"]}
    late = alice.upsert("task", {"patient_id": pid, "title": "x"})
    assert (await alice.push(late))["results"][0]["error"]["code"] == "out_of_scope"
    fresh = await enrol(client, clock, "amy")
    found, purged = await fresh.pull_all()
    assert purged == [] and set(found) == {keep["record_id"]}


async def test_assign_unknown_patient_or_team_fails(database_url, org, capsys):
    assert main(["assign", new_id(), "--team", "B", "--database-url", database_url]) == 1
    assert main(["assign", new_id(), "--team", "Z", "--database-url", database_url]) == 1
