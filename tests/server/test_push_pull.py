"""Push and pull as DESIGN §4: round trip, retries, gaps, rejections, conflicts, finality."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from starlette.responses import JSONResponse

from server import auth, db, records
from tests.server.helpers import PATIENT, enrol, new_id

pytestmark = pytest.mark.anyio

SITE = {"name": "Clinic", "kind": "hospital"}


async def test_round_trip(client, clock, org):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    patient = alice.upsert("patient", PATIENT)
    site = alice.upsert("site", SITE)
    body = await alice.push(patient, site)
    assert body["last_mutation_id"] == 2
    assert [(r["id"], r["status"], r["error"], r["conflicts"]) for r in body["results"]] == [
        (1, "applied", None, []),
        (2, "applied", None, []),
    ]
    revs = [r["rev"] for r in body["results"]]
    assert revs[0] < revs[1]
    found, purged = await amy.pull_all()
    assert purged == []
    rec = found[patient["record_id"]]
    assert rec["type"] == "patient"
    assert rec["fields"] == {**PATIENT, "team_id": org.team_a}
    assert set(rec["clock"]) == {"name", "status", "team_id"}
    assert rec["clock"]["name"] == patient["clock"]["name"]
    assert rec["rev"] == revs[0] and rec["deleted"] is False
    assert found[site["record_id"]]["fields"] == SITE
    again = await amy.pull()
    assert again["records"] == [] and again["cursor"] == amy.cursor


async def test_pull_reports_last_mutation_id(client, clock, org):
    alice = await enrol(client, clock, "alice")
    await alice.push(alice.upsert("site", SITE))
    assert (await alice.pull())["last_mutation_id"] == 1


async def test_retry_is_a_no_op_and_replays_results(client, clock, org):
    alice = await enrol(client, clock, "alice")
    batch = [alice.upsert("patient", PATIENT), alice.upsert("patient", {"status": "active"})]
    first = await alice.push(*batch)
    assert first["results"][1]["status"] == "rejected"  # no name: invalid
    cursor = (await alice.pull())["cursor"]
    second = await alice.push(*batch)
    assert second == first
    assert (await alice.pull(cursor=cursor))["records"] == []


async def test_gap_stops_the_batch(client, clock, org):
    alice = await enrol(client, clock, "alice")
    one = alice.upsert("site", SITE)
    alice.next_id += 1  # mutation 2 is lost
    three = alice.upsert("site", SITE)
    body = await alice.push(one, three)
    assert body["last_mutation_id"] == 1
    assert [r["id"] for r in body["results"]] == [1]
    found, _ = await alice.pull_all()
    assert three["record_id"] not in found


async def test_rejected_advances_last_mutation_id(client, clock, org):
    alice = await enrol(client, clock, "alice")
    bad = alice.upsert("site", {"kind": "castle"})
    good = alice.upsert("site", SITE)
    body = await alice.push(bad, good)
    assert body["last_mutation_id"] == 2
    rejected, applied = body["results"]
    assert rejected["status"] == "rejected" and rejected["rev"] is None
    assert rejected["error"]["code"] == "invalid"
    assert rejected["error"]["field"] == "kind"
    assert applied["status"] == "applied"


async def test_full_record_required_fields(client, clock, org):
    alice = await enrol(client, clock, "alice")
    body = await alice.push(alice.upsert("task", {"title": "call"}))
    assert body["results"][0]["error"]["field"] == "patient_id"


async def test_the_merged_record_keeps_its_required_fields(client, clock, org):
    """The changed fields are checked alone, then the merged record for what it requires."""
    alice = await enrol(client, clock, "alice")
    patient = alice.upsert("patient", PATIENT)
    pid = patient["record_id"]
    nameless = alice.upsert("patient", {"status": "active"})
    titleless = alice.upsert("task", {"patient_id": pid, "done": False})
    body = await alice.push(patient, nameless, titleless)
    assert [(r["status"], (r["error"] or {}).get("field")) for r in body["results"]] == [
        ("applied", None),
        ("rejected", "name"),
        ("rejected", "title"),
    ]
    assert body["results"][1]["error"]["code"] == "invalid"
    rev = body["results"][0]["rev"]
    clock.advance(1)
    blanked = alice.upsert("patient", {"name": "", "phone": "555"}, pid, base_rev=rev)
    nulled = alice.upsert("patient", {"name": None}, pid, base_rev=rev)
    body = await alice.push(blanked, nulled)
    assert [(r["status"], r["error"]["field"]) for r in body["results"]] == [
        ("rejected", "name"),
        ("rejected", "name"),
    ]
    # A blank name that loses the merge leaves the record whole: kept as a conflict.
    amy = await enrol(client, clock, "amy")
    older = f"{int((clock.now - 10) * 1000):015d}-00000-{amy.id}"
    stale = amy.upsert("patient", {"name": ""}, pid, base_rev=rev, stamp=older)
    result = (await amy.push(stale))["results"][0]
    assert result["status"] == "merged"
    assert result["conflicts"][0]["lost_value"] == ""
    found, _ = await amy.pull_all()
    assert found[pid]["fields"] == {**PATIENT, "team_id": org.team_a}


async def test_stored_values_are_not_checked_again(client, clock, org, database):
    """Stored values passed the schema when they were stored; a later edit of other
    fields goes through even when the schema has since become stricter."""
    alice = await enrol(client, clock, "alice")
    patient = alice.upsert("patient", PATIENT)
    pid = patient["record_id"]
    await alice.push(patient)
    long_phone = "5" * 100  # longer than the schema's 40 characters
    with database.write() as conn:
        rec = records.load(conn, pid)
        assert rec is not None
        rec.fields["phone"] = long_phone
        rec.clock["phone"] = patient["clock"]["name"]
        records.save(conn, rec, new=False, author="test", now=clock())
    clock.advance(1)
    body = await alice.push(alice.upsert("patient", {"language": "fr"}, pid))
    assert body["results"][0]["status"] == "applied"
    found, _ = await alice.pull_all()
    assert found[pid]["fields"]["phone"] == long_phone
    assert found[pid]["fields"]["language"] == "fr"
    # The changed fields themselves are still checked.
    body = await alice.push(alice.upsert("patient", {"phone": long_phone}, pid))
    assert body["results"][0]["error"]["field"] == "phone"


async def test_conflict_kept_and_reported(client, clock, org, database):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    patient = alice.upsert("patient", PATIENT)
    rev = (await alice.push(patient))["results"][0]["rev"]
    pid = patient["record_id"]
    # Both edit the phone from rev; amy's edit is later and reaches the server first.
    early = alice.upsert("patient", {"phone": "555-1111"}, pid, base_rev=rev)
    clock.advance(1)
    late = amy.upsert("patient", {"phone": "555-2222"}, pid, base_rev=rev)
    assert (await amy.push(late))["results"][0]["status"] == "applied"
    lost = (await alice.push(early))["results"][0]
    assert lost["status"] == "merged"
    assert lost["conflicts"] == [
        {
            "field": "phone",
            "value": "555-2222",
            "clock": late["clock"]["phone"],
            "lost_value": "555-1111",
            "lost_clock": early["clock"]["phone"],
            "incoming_won": False,
        }
    ]
    # The other way round: a newer write over an unseen change wins and reports the loser.
    clock.advance(1)
    newer = alice.upsert("patient", {"phone": "555-3333"}, pid, base_rev=rev)
    won = (await alice.push(newer))["results"][0]
    assert won["status"] == "merged" and won["conflicts"][0]["incoming_won"] is True
    assert won["conflicts"][0]["lost_value"] == "555-2222"
    with database.read() as conn:
        kept = conn.execute(select(db.conflicts.c.loser_value).order_by(db.conflicts.c.id))
        assert list(kept.scalars()) == ['"555-1111"', '"555-2222"']
    found, _ = await amy.pull_all()
    assert found[pid]["fields"]["phone"] == "555-3333"


async def test_seen_change_is_not_a_conflict(client, clock, org):
    alice = await enrol(client, clock, "alice")
    patient = alice.upsert("patient", PATIENT)
    pid = patient["record_id"]
    await alice.push(patient)
    rev = (await alice.push(alice.upsert("patient", {"phone": "1"}, pid, base_rev=None)))[
        "results"
    ][0]["rev"]
    result = await alice.push(alice.upsert("patient", {"phone": "2"}, pid, base_rev=rev))
    assert result["results"][0]["status"] == "applied"
    assert result["results"][0]["conflicts"] == []


async def test_final_visit_refuses_changes_but_takes_addenda(client, clock, org):
    alice = await enrol(client, clock, "alice")
    patient = alice.upsert("patient", PATIENT)
    pid = patient["record_id"]
    visit = alice.upsert("visit", {"patient_id": pid, "setting": "home", "status": "final"})
    body = await alice.push(patient, visit)
    refused = body["results"][1]
    assert refused["status"] == "rejected"
    assert refused["error"]["field"] in ("started_at", "triage")
    vid = visit["record_id"]
    draft = alice.upsert("visit", {"patient_id": pid, "setting": "home"}, vid)
    final = alice.upsert(
        "visit",
        {"started_at": "2026-05-01T10:00:00", "triage": "short_term_contact", "status": "final"},
        vid,
    )
    body = await alice.push(draft, final)
    assert [r["status"] for r in body["results"]] == ["applied", "applied"]
    final_rev = body["results"][1]["rev"]
    change = alice.upsert("visit", {"summary": "edited later"}, vid, base_rev=final_rev)
    delete = alice.delete("visit", vid, None)
    addendum = alice.upsert("addendum", {"visit_id": vid, "patient_id": pid, "text": "fix"})
    stray = alice.upsert("addendum", {"visit_id": new_id(), "patient_id": pid, "text": "x"})
    body = await alice.push(change, delete, addendum, stray)
    codes = [(r["status"], (r["error"] or {}).get("code")) for r in body["results"]]
    assert codes == [
        ("rejected", "record_finalized"),
        ("rejected", "record_finalized"),
        ("applied", None),
        ("rejected", "invalid"),
    ]


async def test_tombstones_are_pulled(client, clock, org):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    patient = alice.upsert("patient", PATIENT)
    await alice.push(patient)
    await amy.pull_all()
    body = await alice.push(alice.delete("patient", patient["record_id"], None))
    assert body["results"][0]["status"] == "applied"
    found, _ = await amy.pull_all()
    assert found[patient["record_id"]]["deleted"] is True
    # A tombstone carries no content to the phones (the server keeps it).
    assert found[patient["record_id"]]["fields"] == {}
    task = alice.upsert("task", {"patient_id": patient["record_id"], "title": "Call"})
    await alice.push(task)  # (a record of a deleted patient is still accepted)
    await alice.push(alice.delete("task", task["record_id"], None))
    found, _ = await amy.pull_all()
    gone = found[task["record_id"]]
    assert gone["deleted"] and gone["fields"] == {"patient_id": patient["record_id"]}
    assert set(gone["clock"]) == {"patient_id"}
    later = alice.upsert("patient", {"phone": "1"}, patient["record_id"])
    assert (await alice.push(later))["results"][0]["error"]["code"] == "record_deleted"
    missing = alice.delete("site", new_id(), None)
    assert (await alice.push(missing))["results"][0]["error"]["code"] == "not_found"


async def test_clock_far_ahead_is_refused(client, clock, org):
    alice = await enrol(client, clock, "alice")
    ahead = f"{int((clock.now + 301) * 1000):015d}-00000-{alice.id}"
    body = await alice.push(alice.upsert("site", SITE, stamp=ahead))
    result = body["results"][0]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "clock_ahead"
    assert body["last_mutation_id"] == 1
    near = f"{int((clock.now + 290) * 1000):015d}-00000-{alice.id}"
    assert (await alice.push(alice.upsert("site", SITE, stamp=near)))["results"][0]["status"] == (
        "applied"
    )


async def test_pagination_with_cursor_and_more(client, clock, org):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    sent = [alice.upsert("site", {"name": f"site {i}"}) for i in range(25)]
    await alice.push(*sent)
    page = await amy.pull(limit=10)
    assert len(page["records"]) == 10 and page["more"] is True
    assert page["cursor"] == page["records"][-1]["rev"]
    amy.cursor = page["cursor"]
    found, _ = await amy.pull_all(limit=10)
    assert len(found) == 15
    amy.cursor = 0
    found, _ = await amy.pull_all(limit=7)
    assert set(found) == {m["record_id"] for m in sent}
    revs = [r["rev"] for r in found.values()]
    assert revs == sorted(revs)


async def test_pull_limit_is_capped(client, clock, org, settings):
    alice = await enrol(client, clock, "alice")
    for start in range(0, settings.pull_limit + 5, 50):
        batch = [alice.upsert("site", {"name": f"s{i}"}) for i in range(start, start + 50)]
        await alice.push(*batch)
    page = await alice.pull(limit=10**6)
    assert len(page["records"]) == settings.pull_limit and page["more"] is True


async def test_pull_sends_stored_json_as_the_records_would_render(client, clock, org, database):
    """Records are spliced in from their stored text: the bytes must be what encoding the
    parsed records (``Record.as_json`` in a JSONResponse) gives."""
    alice = await enrol(client, clock, "alice")
    patient = alice.upsert(
        "patient", {"name": 'Zoë Ødegaard \u2028 "quoted" \\ back', "status": "active"}
    )
    visit = alice.upsert(
        "visit",
        {
            "patient_id": patient["record_id"],
            "setting": "home",
            "needs": ["food", "housing"],
            "summary": "naïve café 🚲",
        },
    )
    site = alice.upsert("site", SITE)
    await alice.push(patient, visit, site)
    await alice.push(alice.delete("visit", visit["record_id"], None))
    for limit in (1, 100):
        response = await client.get(
            f"/api/v1/sync/pull?cursor=0&limit={limit}", headers=alice.headers
        )
        assert response.headers["content-type"] == "application/json"
        with database.read() as conn:
            stored = [
                records.from_row(row)
                for row in conn.execute(select(db.records).order_by(db.records.c.rev))
            ]
            top = records.high_water(conn)
        page = stored[:limit]
        more = len(stored) > limit
        assert len(stored) == 3 and stored[-1].deleted
        expected = JSONResponse(
            {
                "records": [rec.as_record().as_json() for rec in page],
                "purge": [],
                "cursor": page[-1].rev if more else top,
                "more": more,
                "last_mutation_id": 4,
                "conflicts": [],
            }
        )
        assert response.content == expected.body


async def test_reads_write_only_what_they_owe(client, clock, org, database):
    """A pull is read-only unless it showed patient data (an audit row) or the device's
    last use is older than TOUCH_EVERY (idle expiry); then one short write does both."""
    alice = await enrol(client, clock, "alice")
    await alice.push(alice.upsert("site", SITE))

    def state():
        with database.read() as conn:
            rows = conn.execute(select(db.audit_log.c.seq)).scalars().all()
            used = conn.execute(
                select(db.devices.c.last_used_at).where(db.devices.c.id == alice.id)
            ).scalar_one()
        return len(rows), used

    before = state()
    await alice.pull(cursor=0)  # org data only, device used just now
    await client.get("/api/v1/me", headers=alice.headers)
    assert state() == before
    clock.advance(auth.TOUCH_EVERY + 1)
    await alice.pull(cursor=0)
    assert state() == (before[0], clock.now)  # touched, no audit row
    patient = alice.upsert("patient", PATIENT)
    await alice.push(patient)
    pushed = state()
    found = await alice.pull(cursor=0)
    assert patient["record_id"] in [r["id"] for r in found["records"]]
    assert state() == (pushed[0] + 1, pushed[1])  # audited, not touched again


async def test_the_device_whose_value_lost_hears_of_it_in_its_pull(client, clock, org):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    multi = await enrol(client, clock, "multi")  # in teams A and B
    patient = alice.upsert("patient", PATIENT)
    rev = (await alice.push(patient))["results"][0]["rev"]
    for device in (alice, amy, multi):
        await device.pull_all()
    await alice.push(alice.upsert("patient", {"phone": "111"}, patient["record_id"], base_rev=rev))
    clock.advance(5)
    beat = await amy.push(
        amy.upsert("patient", {"phone": "222"}, patient["record_id"], base_rev=rev)
    )
    assert beat["results"][0]["status"] == "merged"  # Amy hears at her push...
    page = await alice.pull()  # ...and Alice, whose value lost, at her next pull
    assert [
        (c["record_id"], c["field"], c["value"], c["lost_value"], c["incoming_won"])
        for c in page["conflicts"]
    ] == [(patient["record_id"], "phone", "222", "111", True)]
    assert page["conflicts"][0]["type"] == "patient"
    assert page["conflicts"][0]["lost_clock"].endswith(alice.id)
    assert (await amy.pull())["conflicts"] == []  # not the winner
    assert (await multi.pull())["conflicts"] == []  # not a teammate who wrote nothing
    assert (await alice.pull(cursor=0))["conflicts"] == []  # a fresh device holds nothing
