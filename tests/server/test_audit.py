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
    await alice.push(
        patient, alice.upsert("task", {"patient_id": patient["record_id"], "title": "x"})
    )
    await alice.pull_all()
    await client.delete(f"/api/v1/devices/{alice.id}", headers=alice.headers)
    return alice, patient


async def test_rows_name_actions_and_ids_never_values(client, clock, org, database):
    alice, patient = await _activity(client, clock)
    with database.read() as conn:
        rows = list(reversed(audit.rows(conn)))
    actions = [r["action"] for r in rows]
    assert actions == [
        "login.ok",
        "device.enrol",
        "login.failed",
        "sync.push",
        "sync.pull",
        "device.revoke",
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
        conn.execute(update(db.audit_log).where(db.audit_log.c.seq == 3).values(actor="user:alice"))
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


async def test_a_removed_head_row_is_reported_not_a_crash(
    client, clock, org, database, database_url, capsys
):
    await _activity(client, clock)
    with database.write() as conn:
        conn.execute(delete(db.audit_head))
    assert main(["verify-audit", "--database-url", database_url]) == 2
    err = capsys.readouterr().err
    assert "audit log BROKEN" in err and "head row" in err and "Traceback" not in err


def _recompute_chain_without_the_key(conn, drop_seq: int) -> None:
    """What someone with write access to the database alone can do: remove a row, then
    renumber and re-hash the rest (with any key but the server's)."""
    conn.execute(delete(db.audit_log).where(db.audit_log.c.seq == drop_seq))
    rows = conn.execute(select(db.audit_log).order_by(db.audit_log.c.seq)).mappings().all()
    conn.execute(delete(db.audit_log))
    prev = audit.GENESIS
    for seq, row in enumerate(rows, start=1):
        fixed = {**dict(row), "seq": seq}
        fixed["hash"] = audit.row_hash(b"guessed-key" * 3, prev, fixed)
        conn.execute(db.audit_log.insert().values(**fixed))
        prev = fixed["hash"]
    conn.execute(update(db.audit_head).values(seq=len(rows), hash=prev))


async def test_a_rewritten_chain_does_not_verify_without_the_key(
    client, clock, org, database, database_url, capsys
):
    await _activity(client, clock)
    with database.write() as conn:
        _recompute_chain_without_the_key(conn, drop_seq=3)
    assert main(["verify-audit", "--database-url", database_url]) == 2
    assert "row 1 was altered" in capsys.readouterr().err


async def test_anchors_catch_a_rewrite_by_someone_holding_the_key(
    client, clock, org, database, database_url, capsys, tmp_path
):
    from tests.conftest import TEST_AUDIT_KEY

    await _activity(client, clock)
    assert main(["audit-head", "--database-url", database_url]) == 0
    anchor = capsys.readouterr().out.strip()
    (tmp_path / "anchors").write_text(f"# kept on another machine\n{anchor}\n")
    ok = [
        "verify-audit",
        "--database-url",
        database_url,
        "--anchors-file",
        str(tmp_path / "anchors"),
    ]
    assert main(ok) == 0
    assert "1 anchors held" in capsys.readouterr().out
    with database.write() as conn:  # the insider re-keys the chain with the real key
        rows = conn.execute(select(db.audit_log).order_by(db.audit_log.c.seq)).mappings().all()
        conn.execute(delete(db.audit_log))
        prev = audit.GENESIS
        for row in rows:
            fixed = {**dict(row), "actor": "user:someone-else"}
            fixed["hash"] = audit.row_hash(TEST_AUDIT_KEY, prev, fixed)
            conn.execute(db.audit_log.insert().values(**fixed))
            prev = fixed["hash"]
        conn.execute(update(db.audit_head).values(hash=prev))
    assert main(["verify-audit", "--database-url", database_url]) == 0  # consistent ...
    capsys.readouterr()
    assert main(ok) == 2  # ... but it no longer holds the head kept elsewhere
    assert "differs from its anchor" in capsys.readouterr().err
    assert main(["verify-audit", "--database-url", database_url, "--anchor", "x:y"]) == 1


async def test_another_key_is_refused(client, clock, org, database_url, capsys, monkeypatch):
    await _activity(client, clock)
    monkeypatch.setenv("LIAISON_AUDIT_KEY", "ab" * 32)
    assert main(["verify-audit", "--database-url", database_url]) == 2
    assert "another audit key" in capsys.readouterr().err
    # A server started with the wrong key refuses to write to this chain at all.
    assert main(["create-team", "X", "--database-url", database_url]) == 1
    assert "another audit key" in capsys.readouterr().err


def test_the_key_file_is_created_private_and_checked(tmp_path):
    path = tmp_path / "keys" / "audit.key"
    env = {"LIAISON_AUDIT_KEY_FILE": str(path)}
    key = audit.load_key(env)
    assert len(key) == 32 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert audit.load_key(env) == key
    path.chmod(0o644)
    with pytest.raises(audit.AuditKeyError, match="readable by other users"):
        audit.load_key(env)
    with pytest.raises(audit.AuditKeyError, match="64 hex digits"):
        audit.load_key({"LIAISON_AUDIT_KEY": "too-short"})


async def test_a_pull_is_audited_once_not_per_page(client, clock, org, database):
    alice, amy = await enrol(client, clock, "alice"), await enrol(client, clock, "amy")
    patients = [alice.upsert("patient", {**PATIENT, "name": f"P{n}"}) for n in range(5)]
    await alice.push(*patients)

    def pull_rows():
        with database.read() as conn:
            return [
                r
                for r in audit.rows(conn)
                if r["action"] == "sync.pull" and r["actor"].endswith(amy.id)
            ]

    found, _ = await amy.pull_all(limit=2)  # three pages
    assert len(found) == 5
    rows = pull_rows()
    assert len(rows) == 1
    targets = json.loads(rows[0]["targets"])
    assert sorted(t for t in targets if not t.startswith("revs:")) == sorted(
        p["record_id"] for p in patients
    )
    await amy.pull_all(limit=2)  # nothing new: nothing shown, nothing audited
    assert len(pull_rows()) == 1
    amy.cursor = 0  # the phone pulls everything again: that is a new disclosure
    await amy.pull_all(limit=2)
    assert len(pull_rows()) == 2
    await alice.push(alice.upsert("task", {"patient_id": patients[0]["record_id"], "title": "t"}))
    await amy.pull_all(limit=2)
    newest = pull_rows()[0]
    assert len(pull_rows()) == 3 and patients[0]["record_id"] in newest["targets"]
