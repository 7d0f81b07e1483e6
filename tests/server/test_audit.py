"""The audit log: what is written, verification, tamper detection from the CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, select, update

from server import audit, db
from server.__main__ import main
from tests.server.helpers import PATIENT, enrol

pytestmark = pytest.mark.anyio


async def _activity(client, clock):
    alice = await enrol(client, clock, "alice")
    await client.post(
        "/api/v1/devices", json={"username": "alice", "password": "nope-nope", "device_name": "p"}
    )
    patient = alice.upsert("patient", PATIENT)
    await alice.push(patient, alice.upsert("task", {"patient_id": patient["record_id"],
                                                      "title": "x"}))
    await alice.pull_all()
    await client.delete(f"/api/v1/devices/{alice.id}", headers=alice.headers)
    return alice, patient


async def test_rows_name_actions_and_ids_never_values(client, clock, org, database):
    alice, patient = await _activity(client, clock)
    with database.read() as conn:
        rows = list(reversed(audit.rows(conn)))
    actions = [r["action"] for r in rows]
    assert actions == [
        "login.ok", "device.enrol", "login.failed", "sync.push", "sync.pull", "device.revoke"
    ]
    push = rows[3]
    assert push["actor"] == f"user:alice device:{alice.id}"
    assert patient["record_id"] in json.loads(push["targets"])
    text = json.dumps(rows)
    assert "Test Patient" not in text and "nope-nope" not in text
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))


async def test_verify_and_tamper_detection(client, clock, org, database, database_url, capsys):
    await _activity(client, clock)
    args = ["verify-audit", "--database-url", database_url]
    assert main(args) == 0
    assert "audit log ok: 6 rows" in capsys.readouterr().out
    with database.write() as conn:
        conn.execute(update(db.audit_log).where(db.audit_log.c.seq == 3).values(actor="x"))
    assert main(args) != 0
    assert "row 3" in capsys.readouterr().err
    with database.write() as conn:  # restore, then remove a row in the middle
        conn.execute(update(db.audit_log).where(db.audit_log.c.seq == 3)
                     .values(actor="user:alice"))
    assert main(args) == 0
    capsys.readouterr()
    with database.write() as conn:
        conn.execute(delete(db.audit_log).where(db.audit_log.c.seq == 4))
    assert main(args) != 0
    assert "row 4 is missing" in capsys.readouterr().err


async def test_removing_the_tail_is_detected(client, clock, org, database, database_url, capsys):
    await _activity(client, clock)
    with database.write() as conn:
        last = conn.execute(select(db.audit_head.c.seq)).scalar_one()
        conn.execute(delete(db.audit_log).where(db.audit_log.c.seq == last))
    assert main(["verify-audit", "--database-url", database_url]) != 0
    assert f"row {last} is missing" in capsys.readouterr().err


async def test_a_removed_head_row_is_reported_not_a_crash(client, clock, org, database,
                                                          database_url, capsys):
    await _activity(client, clock)
    with database.write() as conn:
        conn.execute(delete(db.audit_head))
    assert main(["verify-audit", "--database-url", database_url]) == 2
    err = capsys.readouterr().err
    assert "audit log BROKEN" in err and "head row" in err and "Traceback" not in err
