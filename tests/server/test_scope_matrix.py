"""The scope matrix as data: every endpoint x role x own/other team, with the expected answer.

Team A holds patient PA (with attachment XA); team B holds PB (with XB); the site is an
org record. The actors: a liaison and a supervisor of team A, and an admin in no team.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.server.helpers import PATIENT, Device, enrol

pytestmark = pytest.mark.anyio

ROLES = {"liaison": "amy", "supervisor": "sue", "admin": "root"}
XA = b"\x89PNG\r\n\x1a\n team A"
XB = b"\x89PNG\r\n\x1a\n team B"

# action, target, expected per role (liaison, supervisor, admin)
MATRIX: list[tuple[str, str, tuple[Any, Any, Any]]] = [
    ("me", "-", (200, 200, 200)),
    ("pull_sees", "PA", (True, True, False)),
    ("pull_sees", "PB", (False, False, False)),
    ("pull_sees", "site", (True, True, True)),
    ("update", "PA", ("applied", "applied", "out_of_scope")),
    ("update", "PB", ("out_of_scope",) * 3),
    ("add_task", "PA", ("applied", "applied", "out_of_scope")),
    ("add_task", "PB", ("out_of_scope",) * 3),
    ("delete", "PA", ("applied", "applied", "out_of_scope")),
    ("delete", "PB", ("out_of_scope",) * 3),
    ("update", "site", ("applied",) * 3),
    ("get_attachment", "PA", (200, 200, 404)),
    ("get_attachment", "PB", (404, 404, 404)),
    ("put_attachment", "-", (201, 201, 201)),
    ("revoke", "own", (204, 204, 204)),
    ("revoke", "PA", (404, 404, 204)),  # a device of team A's other liaison: not confirmed
    ("revoke", "PB", (404, 404, 204)),  # a device of team B's liaison
]


async def _world(client, clock) -> dict[str, Any]:
    alice = await enrol(client, clock, "alice")
    bob = await enrol(client, clock, "bob")
    world: dict[str, Any] = {"alice": alice, "bob": bob}
    for device, key, data in ((alice, "PA", XA), (bob, "PB", XB)):
        digest = hashlib.sha256(data).hexdigest()
        await client.put(f"/api/v1/attachments/{digest}", content=data, headers=device.headers)
        patient = device.upsert("patient", {**PATIENT, "attachments": [{"sha256": digest}]})
        await device.push(patient)
        world[key] = patient["record_id"]
        world[f"X{key}"] = digest
    site = alice.upsert("site", {"name": "Clinic"})
    await alice.push(site)
    world["site"] = site["record_id"]
    return world


async def _do(client, actor: Device, world: dict[str, Any], action: str, target: str) -> Any:
    if action == "me":
        return (await client.get("/api/v1/me", headers=actor.headers)).status_code
    if action == "pull_sees":
        found, _ = await actor.pull_all()
        return world[target] in found
    if action in ("update", "add_task", "delete"):
        record_id = world[target]
        if action == "update":
            kind = "site" if target == "site" else "patient"
            mutation = actor.upsert(kind, {"phone": "555-0000"}, record_id)
        elif action == "add_task":
            mutation = actor.upsert("task", {"patient_id": record_id, "title": "call"})
        else:
            mutation = actor.delete("patient", record_id, None)
        result = (await actor.push(mutation))["results"][0]
        return result["status"] if result["error"] is None else result["error"]["code"]
    if action == "get_attachment":
        url = f"/api/v1/attachments/{world['X' + target]}"
        return (await client.get(url, headers=actor.headers)).status_code
    if action == "put_attachment":
        data = b"%PDF-1.4 " + actor.id.encode()
        url = f"/api/v1/attachments/{hashlib.sha256(data).hexdigest()}"
        return (await client.put(url, content=data, headers=actor.headers)).status_code
    if action == "revoke":
        victim = {"own": actor, "PA": world["alice"], "PB": world["bob"]}[target]
        url = f"/api/v1/devices/{victim.id}"
        return (await client.delete(url, headers=actor.headers)).status_code
    raise AssertionError(action)


@pytest.mark.parametrize("action,target,expected", MATRIX, ids=[f"{a}-{t}" for a, t, _ in MATRIX])
async def test_scope_matrix(client, clock, org, action, target, expected):
    world = await _world(client, clock)
    actors = {role: await enrol(client, clock, name) for role, name in ROLES.items()}
    got = {}
    for role, actor in actors.items():
        if action == "delete":  # each role deletes a fresh copy: a tombstone is final
            world = await _world(client, clock)
        got[role] = await _do(client, actor, world, action, target)
    assert got == dict(zip(ROLES, expected, strict=True))
