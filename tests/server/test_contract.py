"""Rules a client relies on that DESIGN §4 leaves implicit (found by walking it as a
stranger with only the CLI and an HTTP client; docs/protocol.md lists them)."""

from __future__ import annotations

import hashlib

import pytest

from tests.server.helpers import PATIENT, enrol, new_id
from tests.server.test_attachments import JPEG

pytestmark = pytest.mark.anyio


def _error(body: dict, index: int = 0) -> tuple[str, str, str | None]:
    result = body["results"][index]
    assert result["status"] == "rejected", result
    return result["error"]["code"], result["error"]["message"], result["error"]["field"]


async def test_a_clock_must_name_the_pushing_device(client, clock, org):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    patient = alice.upsert("patient", PATIENT)
    rev = (await alice.push(patient))["results"][0]["rev"]
    # Amy stamps her stale edit with Alice's device: the merge would take it for Alice's
    # own later write and drop Alice's value without reporting a conflict.
    forged = amy.upsert(
        "patient",
        {"phone": "555-0100"},
        patient["record_id"],
        base_rev=rev,
        stamp=amy.hlc.now()[:22] + alice.id,
    )
    code, _, field = _error(await amy.push(forged))
    assert (code, field) == ("invalid", "clock.phone")
    server_node = amy.upsert("site", {"name": "Clinic"}, stamp=f"{'0' * 15}-00000-server")
    assert _error(await amy.push(server_node))[2] == "clock.name"
    # Nothing was applied, and amy's counter moved on (a refusal never blocks the queue).
    assert (await amy.pull())["last_mutation_id"] == 2


async def test_a_phone_signed_in_again_keeps_its_clock_node(client, clock, org):
    first = await enrol(client, clock, "alice", "phone")
    again = await enrol(client, clock, "alice", "phone, signed in again")
    # The new device pushes what the old one stamped: the same user's node is accepted.
    edit = again.upsert("patient", PATIENT, stamp=first.hlc.now())
    assert (await again.push(edit))["results"][0]["status"] == "applied"
    # Another user's node is not.
    bob = await enrol(client, clock, "bob")
    assert (
        _error(await bob.push(bob.upsert("patient", PATIENT, stamp=first.hlc.now())))[0]
        == "invalid"
    )


async def test_ids_are_lower_case_uuids(client, clock, org):
    alice = await enrol(client, clock, "alice")
    patient = alice.upsert("patient", PATIENT)
    await alice.push(patient)
    upper = alice.upsert("patient", PATIENT, record_id=new_id().upper())
    assert _error(await alice.push(upper))[0::2] == ("invalid", "record_id")
    task = alice.upsert("task", {"patient_id": patient["record_id"].upper(), "title": "Call"})
    assert _error(await alice.push(task))[0::2] == ("invalid", "patient_id")


@pytest.mark.parametrize("ids", [[1, 1], [2, 1], [1, 3, 2]])
async def test_mutation_ids_must_rise_within_a_batch(client, clock, org, ids):
    alice = await enrol(client, clock, "alice")
    batch = [alice.upsert("site", {"name": f"Site {i}"}) for i in range(len(ids))]
    for mutation, mutation_id in zip(batch, ids, strict=True):
        mutation["id"] = mutation_id
    response = await alice.push_raw(*batch)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"
    assert "greater than the one before" in response.json()["error"]["message"]
    assert (await alice.pull())["records"] == []  # nothing applied


async def test_attachment_references_are_hashes_the_server_holds(client, clock, org):
    alice = await enrol(client, clock, "alice")
    patient = alice.upsert("patient", PATIENT)
    await alice.push(patient)
    sha = hashlib.sha256(JPEG).hexdigest()

    def visit(*items: dict) -> dict:
        return alice.upsert(
            "visit", {"patient_id": patient["record_id"], "attachments": list(items)}
        )

    bad = [
        {"sha256": "nothex"},
        {"sha256": sha.upper()},
        {"sha256": sha, "thumbnail": "x"},
        {"sha256": sha, "content_type": "text/html"},
        {"sha256": sha, "width": -3},
        {"sha256": sha, "caption": 5},
    ]
    for item in bad:
        assert _error(await alice.push(visit(item)))[0::2] == ("invalid", "attachments"), item
    assert _error(await alice.push(visit({"sha256": sha}, {"sha256": sha})))[2] == "attachments"
    # Well formed, but the bytes were never uploaded: refused, so no reader ever meets a
    # photo that nobody can download.
    code, message, field = _error(await alice.push(visit({"sha256": sha, "caption": "Rug"})))
    assert (code, field) == ("missing_attachment", "attachments") and sha[:12] in message
    put = await client.put(f"/api/v1/attachments/{sha}", content=JPEG, headers=alice.headers)
    assert put.status_code == 201
    good = visit(
        {"sha256": sha, "caption": "Rug", "content_type": "image/jpeg", "width": 1, "height": 1}
    )
    assert (await alice.push(good))["results"][0]["status"] == "applied"


async def test_only_supervisors_and_admins_remove_directory_entries(client, clock, org):
    alice = await enrol(client, clock, "alice")
    sue = await enrol(client, clock, "sue")  # supervisor of team A
    site = alice.upsert("site", {"name": "Clinic"})
    await alice.push(site)
    fixed = alice.upsert("site", {"name": "Clinic (north)"}, site["record_id"])
    assert (await alice.push(fixed))["results"][0]["status"] == "applied"  # a fix: fine
    code, _, _ = _error(await alice.push(alice.delete("site", site["record_id"], None)))
    assert code == "out_of_scope"
    assert (await sue.push(sue.delete("site", site["record_id"], None)))["results"][0][
        "status"
    ] == "applied"
