"""Records that are their author's (a draft visit, an addendum), and what a push tells a
user about a record of another team: nothing."""

from __future__ import annotations

import pytest

from tests.server.helpers import PATIENT, enrol

pytestmark = pytest.mark.anyio


async def _draft(client, clock):
    alice, amy, sue = [await enrol(client, clock, name) for name in ("alice", "amy", "sue")]
    patient = alice.upsert("patient", PATIENT)
    visit = alice.upsert(
        "visit",
        {
            "patient_id": patient["record_id"],
            "setting": "home",
            "summary": "Alice's notes",
            "status": "draft",
        },
    )
    await alice.push(patient, visit)
    return alice, amy, sue, patient, visit


def _outcome(body):
    result = body["results"][0]
    return result["status"], (result["error"] or {}).get("code")


async def test_a_draft_visit_is_its_authors(client, clock, org):
    alice, amy, sue, patient, visit = await _draft(client, clock)
    vid = visit["record_id"]
    edit = amy.upsert("visit", {"summary": "Amy's words"}, vid, base_rev=None)
    assert _outcome(await amy.push(edit)) == ("rejected", "not_author")
    final = amy.upsert(
        "visit",
        {"status": "final", "triage": "information_referral", "started_at": "2026-12-01T10:00:00Z"},
        vid,
    )
    assert _outcome(await amy.push(final)) == ("rejected", "not_author")
    assert _outcome(await amy.push(amy.delete("visit", vid, None))) == ("rejected", "not_author")
    # The author edits and a supervisor may discard it.
    own = alice.upsert("visit", {"summary": "more notes"}, vid)
    assert _outcome(await alice.push(own)) == ("applied", None)
    assert _outcome(await sue.push(sue.delete("visit", vid, None))) == ("applied", None)


async def test_a_final_visit_says_it_is_final_to_everyone(client, clock, org):
    alice, amy, _, patient, visit = await _draft(client, clock)
    vid = visit["record_id"]
    done = alice.upsert(
        "visit",
        {"status": "final", "triage": "information_referral", "started_at": "2026-12-01T10:00:00Z"},
        vid,
    )
    assert _outcome(await alice.push(done)) == ("applied", None)
    late = amy.upsert("visit", {"summary": "late"}, vid)
    assert _outcome(await amy.push(late)) == ("rejected", "record_finalized")


async def test_an_addendum_is_its_authors(client, clock, org):
    alice, amy, _, patient, visit = await _draft(client, clock)
    note = alice.upsert(
        "addendum",
        {"visit_id": visit["record_id"], "patient_id": patient["record_id"], "text": "mine"},
    )
    await alice.push(note)
    rewrite = amy.upsert("addendum", {"text": "not hers to change"}, note["record_id"])
    assert _outcome(await amy.push(rewrite)) == ("rejected", "not_author")


async def test_another_teams_record_reveals_nothing(client, clock, org):
    alice, *_, patient, visit = await _draft(client, clock)
    bob = await enrol(client, clock, "bob")
    answers = set()
    for type_name in ("visit", "task", "site"):  # right type, wrong types, an org type
        guess = bob.upsert(
            type_name, {"name": "x"} if type_name == "site" else {"title": "x"}, visit["record_id"]
        )
        result = (await bob.push(guess))["results"][0]
        answers.add((result["status"], result["error"]["code"], result["error"]["message"]))
    assert answers == {("rejected", "out_of_scope", "the record is not in your scope")}
