"""The merge screen: reached from the patient page, search and pick the other record, both
side by side with what will move, confirm, merge on the server (online only), sync, and
the kept patient's page opens with everything under it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest

from app import patients, rounds, urls
from app.views import patient as patient_view
from app.views import patient_merge
from app.views import sync as sync_view
from tests.app.views_support import (
    FakeNav,
    FakeServer,
    absent,
    enrolled,
    find,
    make_app,
    run,
    set_value,
    texts,
)

MERGE_PATH = re.compile(r"^/api/v1/patients/([0-9a-f-]{36})/merge$")


class MergingServer(FakeServer):
    """The scripted server, plus /healthz and a merge that moves records like the real one
    (new revs, a newer clock on patient_id, the duplicate a tombstone with merged_into)."""

    def __init__(self) -> None:
        super().__init__()
        self.merges: list[tuple[str, str]] = []
        self.refuse: int | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.offline:
            raise httpx.ConnectError("no network", request=request)
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        found = MERGE_PATH.match(request.url.path)
        if found is None or request.method != "POST":
            return super().handle(request)
        if self.refuse is not None:
            error = {"code": "record_deleted", "message": "merged already"}
            return httpx.Response(self.refuse, json={"error": error})
        duplicate, into = found.group(1), json.loads(request.content)["into"]
        self.merges.append((duplicate, into))
        stamp = f"{int(time.time() * 1000) + 1000:015d}-00000-server"
        rev = max(r["rev"] for r in self.records)
        for record in self.records:
            if record["fields"].get("patient_id") == duplicate:
                rev += 1
                record["fields"]["patient_id"], record["clock"]["patient_id"] = into, stamp
                record["rev"] = rev
            elif record["id"] == duplicate:
                rev += 1
                record.update(
                    fields={"merged_into": into},
                    clock={"merged_into": stamp},
                    rev=rev,
                    deleted=True,
                )
        body = {"patient_id": into, "merged": duplicate, "moved": 1, "already_merged": False}
        return httpx.Response(200, json=body)

    def _store(self, m: dict[str, Any]) -> int:
        """Like the real server: an edit of a merged-away patient goes to its survivor, and a
        value that lost its conflict is not stored (the server's stays)."""
        tomb = next((r for r in self.records if r["id"] == m["record_id"]), None)
        if m["type"] == "patient" and tomb is not None and tomb["deleted"]:
            m = {**m, "record_id": tomb["fields"].get("merged_into", m["record_id"])}
        if self.conflict is not None and not self.conflict["incoming_won"]:
            lost = self.conflict["field"]
            m = {
                **m,
                "fields": {**m["fields"], lost: self.conflict["value"]},
                "clock": {**m["clock"], lost: self.conflict["clock"]},
            }
        return super()._store(m)

    def merge_now(self, duplicate: str, into: str) -> None:
        """A merge made on another phone: this one hears of it at its next pull."""
        url = f"http://server/api/v1/patients/{duplicate}/merge"
        self.handle(httpx.Request("POST", url, json={"into": into}))


@pytest.fixture
def server() -> MergingServer:
    return MergingServer()


@pytest.fixture
def app(tmp_path, server):
    return run(enrolled(make_app(tmp_path, server)))


def _add(app: Any, name: str) -> str:
    patient_id, problems = app.add_patient(name)
    assert patient_id is not None, problems
    return str(patient_id)


def _two(app: Any) -> tuple[str, str, str]:
    """The kept patient, the duplicate (with a phone and a task), synced; and the task."""
    keep = _add(app, "Ana Silva")
    duplicate = app.store.put(
        "patient", {"name": "Anna Silva", "phone": "555 0101", "language": "Spanish"}
    )["id"]
    task = app.store.put("task", {"patient_id": duplicate, "title": "Call the son"})["id"]
    run(app.syncing.sync_now())
    return keep, duplicate, task


def _pick(app: Any, nav: FakeNav, duplicate: str, survivor: str) -> Any:
    view = patient_merge.build(app, nav, patient_id=duplicate)
    set_value(view, "merge-search", "silva")
    find(view, f"merge-pick-{survivor}").on_click(None)
    return patient_merge.build(app, nav, patient_id=duplicate)


def _confirm(app: Any, nav: FakeNav, view: Any) -> None:
    find(view, "merge-start").on_click(None)
    [dialog] = nav.dialogs
    run(find(dialog, "merge-confirm").on_click(None))


def test_the_patient_page_leads_to_the_merge(app) -> None:
    keep = _add(app, "Ana Silva")
    nav = FakeNav()
    find(patient_view.build(app, nav, patient_id=keep), "merge").on_click(None)
    assert nav.went == [urls.merge_patient(keep)]


def test_search_shows_the_team_s_other_patients_only(app) -> None:
    keep, duplicate, _ = _two(app)
    _add(app, "Bo Example")
    view = patient_merge.build(app, FakeNav(), patient_id=duplicate)
    assert find(view, "merge-intro").value.startswith("Is Anna Silva recorded twice?")
    set_value(view, "merge-search", "silva")
    results = find(view, "merge-results")
    assert [c.key for c in results.controls] == [f"merge-pick-{keep}"]
    set_value(view, "merge-search", "nobody")
    assert find(view, "merge-none") is not None


def test_both_side_by_side_with_what_will_move(app) -> None:
    keep, duplicate, _ = _two(app)
    app.store.put("patient", {"language": "Portuguese"}, keep)
    view = _pick(app, FakeNav(), duplicate, keep)
    assert find(view, "merge-duplicate-name").value == "Anna Silva"
    assert find(view, "merge-survivor-name").value == "Ana Silva"
    assert find(view, "merge-duplicate-records").value == "1 record on this phone"
    summary = find(view, "merge-summary").value
    assert "move to Ana Silva" in summary
    assert "also gets: Phone" in summary
    assert "differ (Name, Language), Ana Silva's details stay" in summary


def test_merge_moves_everything_and_opens_the_kept_patient(app, server) -> None:
    keep, duplicate, task = _two(app)
    nav = FakeNav()
    view = _pick(app, nav, duplicate, keep)
    _confirm(app, nav, view)
    assert server.merges == [(duplicate, keep)]
    assert nav.went[-1] == urls.patient(keep)
    assert nav.toasts == ["Merged. Everything is now under Ana Silva."]
    assert app.store.get(duplicate) is None
    assert app.store.get(task)["fields"]["patient_id"] == keep
    assert f"merge:{duplicate}" not in app.ui


def test_offline_it_says_it_needs_a_connection(app, server) -> None:
    keep, duplicate, task = _two(app)
    server.offline = True
    nav = FakeNav()
    _confirm(app, nav, _pick(app, nav, duplicate, keep))
    view = patient_merge.build(app, nav, patient_id=duplicate)
    assert find(view, "merge-error") is not None and "needs a connection" in texts(view)
    assert server.merges == [] and nav.went == []
    assert app.store.get(task)["fields"]["patient_id"] == duplicate


def test_a_patient_only_on_this_phone_is_sent_first(app, server) -> None:
    keep = _add(app, "Ana Silva")
    duplicate = _add(app, "Anna Silva")  # never synced
    nav = FakeNav()
    _confirm(app, nav, _pick(app, nav, duplicate, keep))
    assert {m["record_id"] for m in server.pushed} >= {keep, duplicate}
    assert server.merges == [(duplicate, keep)]


def test_a_refusal_is_shown_in_plain_words(app, server) -> None:
    keep, duplicate, _ = _two(app)
    server.refuse = 409
    nav = FakeNav()
    _confirm(app, nav, _pick(app, nav, duplicate, keep))
    view = patient_merge.build(app, nav, patient_id=duplicate)
    assert "merged or deleted already" in texts(view)
    assert not absent(view, "merge-start")


def test_a_merged_away_patient_s_screen_says_so(app) -> None:
    view = patient_merge.build(app, FakeNav(), patient_id="0" * 8 + "-0000-0000-0000-" + "0" * 12)
    assert find(view, "merge-missing") is not None


def test_a_merged_away_patient_s_page_leads_to_the_kept_one(app) -> None:
    keep, duplicate, _ = _two(app)
    nav = FakeNav()
    _confirm(app, nav, _pick(app, nav, duplicate, keep))
    for build in (patient_view.build, patient_merge.build):
        view = build(app, nav, patient_id=duplicate)
        assert "now under Ana Silva" in texts(view)
        find(view, "open-survivor").on_click(None)
        assert nav.went[-1] == urls.patient(keep)


def test_while_merging_the_buttons_wait(app) -> None:
    keep, duplicate, _ = _two(app)
    nav = FakeNav()
    _pick(app, nav, duplicate, keep)
    app.ui[f"merge:{duplicate}"].busy = True
    view = patient_merge.build(app, nav, patient_id=duplicate)
    assert find(view, "merge-busy").semantics_label == "Merging"
    assert find(view, "merge-start").disabled and find(view, "merge-change").disabled


def test_drafts_follow_a_merge_made_on_another_phone(app, server) -> None:
    keep, duplicate, _ = _two(app)
    row = rounds.RoundRow(None, "Anna Silva", duplicate, "Seen at home")
    app.drafts.put(rounds.row_key(None), row)
    app.drafts.put("referral:new:" + duplicate, rounds.RoundRow(note="for the duplicate"))
    server.merge_now(duplicate, keep)
    run(app.syncing.sync_now())
    assert app.drafts.get(rounds.row_key(None), rounds.RoundRow) == rounds.RoundRow(
        None, "Anna Silva", keep, "Seen at home"
    )
    assert sorted(app.drafts.keys()) == sorted([rounds.row_key(None), "referral:new:" + keep])


def test_drafts_follow_a_merge_made_here(app) -> None:
    keep, duplicate, _ = _two(app)
    app.drafts.put(patients.draft_key(duplicate), rounds.RoundRow(patient_id=duplicate))
    nav = FakeNav()
    _confirm(app, nav, _pick(app, nav, duplicate, keep))
    assert list(app.drafts.keys()) == [patients.draft_key(keep)]
    assert app.drafts.get(patients.draft_key(keep), rounds.RoundRow) == rounds.RoundRow(
        patient_id=keep
    )


def test_a_conflict_on_the_duplicate_is_listed_under_the_survivor(app, server) -> None:
    keep, duplicate, _ = _two(app)
    app.store.put("patient", {"phone": "555 0202"}, duplicate)
    lost_clock = app.store.get(duplicate)["clock"]["phone"]
    server.merge_now(duplicate, keep)  # on another phone, before this edit arrived
    server.conflict = {
        "field": "phone",
        "value": "555 0101",
        "clock": f"{int(time.time() * 1000) + 1000:015d}-00000-server",  # the merge's, newer
        "lost_value": "555 0202",
        "lost_clock": lost_clock,
        "incoming_won": False,
    }
    run(app.syncing.sync_now())
    [note] = app.syncing.conflicts()
    assert note["record_id"] == keep and note["lost_value"] == "555 0202"
    nav = FakeNav()
    view = sync_view.build(app, nav)
    assert "Ana Silva" in texts(find(view, "conflict-0"))
    find(view, "open-conflict-0").on_click(None)
    assert nav.went == [urls.patient(keep)]
