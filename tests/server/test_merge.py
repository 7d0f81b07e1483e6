"""Merging a duplicate patient into its survivor: every record moves (new revs, so every
device pulls it), the duplicate becomes a tombstone with ``merged_into``, one audit row,
retries answer the same, and later pushes that still name the duplicate land on the
survivor. On SQLite and PostgreSQL (the ``database`` fixture)."""

from __future__ import annotations

import json

import pytest

from server import audit, records
from tests.server.helpers import enrol, new_id

pytestmark = pytest.mark.anyio

SURVIVOR = {"name": "Ana Silva", "status": "active", "language": "Portuguese"}
DUPLICATE = {
    "name": "Anna Silva",
    "status": "active",
    "language": "Spanish",
    "phone": "555-0101",
    "birth_date": "1950-02-03",
    "risk_flags": ["falls"],
    "caregivers": [{"name": "Rui", "relation": "son", "phone": "555-0102"}],
}


async def _merge(client, device, duplicate, into):
    return await client.post(
        f"/api/v1/patients/{duplicate}/merge", json={"into": into}, headers=device.headers
    )


async def _two_patients(device):
    survivor, duplicate = device.upsert("patient", SURVIVOR), device.upsert("patient", DUPLICATE)
    await device.push(survivor, duplicate)
    return survivor["record_id"], duplicate["record_id"]


def _actions(database, action):
    with database.read() as conn:
        return [r for r in audit.rows(conn) if r["action"] == action]


async def test_merge_moves_every_record_and_keeps_what_the_survivor_lacked(
    client, clock, org, database
):
    alice, amy = await enrol(client, clock, "alice"), await enrol(client, clock, "amy")
    survivor, duplicate = await _two_patients(alice)
    visit = alice.upsert("visit", {"patient_id": duplicate, "setting": "home"})
    task = alice.upsert("task", {"patient_id": duplicate, "title": "Call back"})
    gone = alice.upsert("task", {"patient_id": duplicate, "title": "Mistake"})
    await alice.push(visit, task, gone)
    await alice.push(alice.delete("task", gone["record_id"], None))
    await amy.pull_all()  # amy's phone holds everything as it was

    response = await _merge(client, alice, duplicate, survivor)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patient_id"] == survivor and body["merged"] == duplicate
    assert body["moved"] == 3 and body["already_merged"] is False
    assert body["kept_from_duplicate"] == ["birth_date", "caregivers", "phone", "risk_flags"]
    assert body["differing"] == ["name", "language"]
    found, purged = await amy.pull_all()
    assert purged == []
    for record_id in (visit["record_id"], task["record_id"], gone["record_id"]):
        assert found[record_id]["fields"]["patient_id"] == survivor
        assert found[record_id]["clock"]["patient_id"] > visit["clock"]["patient_id"]
    assert found[gone["record_id"]]["deleted"] is True
    kept = found[survivor]["fields"]
    assert kept["name"] == "Ana Silva" and kept["language"] == "Portuguese"
    assert kept["phone"] == "555-0101" and kept["birth_date"] == "1950-02-03"
    assert kept["caregivers"] == DUPLICATE["caregivers"]
    tomb = found[duplicate]
    assert tomb["deleted"] is True and tomb["fields"] == {"merged_into": survivor}
    assert tomb["rev"] == max(r["rev"] for r in found.values())  # last: after every move
    [row] = _actions(database, "patient.merge")
    assert json.loads(row["targets"]) == sorted([duplicate, survivor])
    assert row["actor"].startswith("user:alice ")


async def test_a_retry_answers_the_same_and_changes_nothing(client, clock, org, database):
    alice = await enrol(client, clock, "alice")
    survivor, duplicate = await _two_patients(alice)
    await alice.push(alice.upsert("task", {"patient_id": duplicate, "title": "Call"}))
    first = await _merge(client, alice, duplicate, survivor)
    with database.read() as conn:
        top = records.high_water(conn)
    again = await _merge(client, alice, duplicate, survivor)
    assert again.status_code == 200
    assert again.json()["already_merged"] is True and again.json()["moved"] == 0
    assert again.json()["patient_id"] == first.json()["patient_id"]
    with database.read() as conn:
        assert records.high_water(conn) == top
    assert len(_actions(database, "patient.merge")) == 1


async def test_a_supervisor_of_the_team_may_merge(client, clock, org):
    alice, sue = await enrol(client, clock, "alice"), await enrol(client, clock, "sue")
    survivor, duplicate = await _two_patients(alice)
    assert (await _merge(client, sue, duplicate, survivor)).status_code == 200


async def test_another_team_learns_nothing(client, clock, org, database):
    alice, bob = await enrol(client, clock, "alice"), await enrol(client, clock, "bob")
    root = await enrol(client, clock, "root")  # an admin in no team sees no patient
    survivor, duplicate = await _two_patients(alice)
    bobs = bob.upsert("patient", SURVIVOR)
    await bob.push(bobs)
    unknown = new_id()
    answers = [
        await _merge(client, bob, duplicate, survivor),
        await _merge(client, bob, bobs["record_id"], survivor),
        await _merge(client, bob, unknown, bobs["record_id"]),
        await _merge(client, root, duplicate, survivor),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert len({a.json()["error"]["message"] for a in answers}) == 1
    assert _actions(database, "patient.merge") == []
    found, _ = await alice.pull_all()
    assert found[duplicate]["deleted"] is False


async def test_never_across_teams_even_for_a_member_of_both(client, clock, org):
    multi = await enrol(client, clock, "multi")
    in_a = multi.upsert("patient", {**SURVIVOR, "team_id": org.team_a})
    in_b = multi.upsert("patient", {**DUPLICATE, "team_id": org.team_b})
    await multi.push(in_a, in_b)
    response = await _merge(client, multi, in_b["record_id"], in_a["record_id"])
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "into"


async def test_refusals(client, clock, org):
    alice = await enrol(client, clock, "alice")
    survivor, duplicate = await _two_patients(alice)
    third = alice.upsert("patient", {"name": "Third"})
    await alice.push(third)
    visit = alice.upsert("visit", {"patient_id": survivor})
    await alice.push(visit)
    assert (await _merge(client, alice, survivor, survivor)).status_code == 422
    assert (await _merge(client, alice, survivor, visit["record_id"])).status_code == 404
    bad = await client.post(
        f"/api/v1/patients/{survivor}/merge", json={"into": "nope"}, headers=alice.headers
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "into"
    assert (await _merge(client, alice, duplicate, survivor)).status_code == 200
    # Merged away already, into someone else; or into a patient merged away.
    again = await _merge(client, alice, duplicate, third["record_id"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "record_deleted"
    assert (await _merge(client, alice, third["record_id"], duplicate)).status_code == 409
    anonymous = await client.post(f"/api/v1/patients/{duplicate}/merge", json={"into": survivor})
    assert anonymous.status_code == 401


async def test_an_offline_device_s_records_land_on_the_survivor(client, clock, org):
    """Amy was offline during the merge: her new visit, her edit of a moved task and her
    edit of the duplicate's details all name the duplicate, and none is lost."""
    alice, amy = await enrol(client, clock, "alice"), await enrol(client, clock, "amy")
    survivor, duplicate = await _two_patients(alice)
    task = alice.upsert("task", {"patient_id": duplicate, "title": "Call"})
    await alice.push(task)
    found, _ = await amy.pull_all()
    task_rev, duplicate_rev = found[task["record_id"]]["rev"], found[duplicate]["rev"]
    clock.advance(60)
    assert (await _merge(client, alice, duplicate, survivor)).status_code == 200
    clock.advance(60)

    visit = amy.upsert("visit", {"patient_id": duplicate, "setting": "phone"})
    done = amy.upsert(
        "task", {"patient_id": duplicate, "done": True}, task["record_id"], base_rev=task_rev
    )
    phone = amy.upsert("patient", {"phone": "555-0199"}, duplicate, base_rev=duplicate_rev)
    answer = await amy.push(visit, done, phone)

    assert [r["status"] for r in answer["results"]] == ["applied", "applied", "merged"]
    [conflict] = answer["results"][2]["conflicts"]
    assert conflict["field"] == "phone"  # the merge had given the survivor the duplicate's
    assert conflict["value"] == "555-0199" and conflict["lost_value"] == "555-0101"
    found, _ = await amy.pull_all()
    assert found[visit["record_id"]]["fields"]["patient_id"] == survivor
    assert found[visit["record_id"]]["clock"]["patient_id"] > visit["clock"]["patient_id"]
    assert found[task["record_id"]]["fields"] == {
        "patient_id": survivor,
        "title": "Call",
        "done": True,
    }
    assert found[survivor]["fields"]["phone"] == "555-0199"


async def test_a_chain_of_merges_is_followed(client, clock, org, database):
    alice = await enrol(client, clock, "alice")
    first, second = await _two_patients(alice)
    third = alice.upsert("patient", {"name": "Third"})
    await alice.push(third)
    assert (await _merge(client, alice, first, second)).status_code == 200
    assert (await _merge(client, alice, second, third["record_id"])).status_code == 200
    visit = alice.upsert("visit", {"patient_id": first})
    assert (await alice.push(visit))["results"][0]["status"] == "applied"
    with database.read() as conn:
        stored = records.load(conn, visit["record_id"])
        assert stored is not None
        assert stored.patient_id == third["record_id"]
