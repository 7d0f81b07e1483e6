"""The office round, headless: header autosave, fast patient rows, action items into tasks."""

import asyncio

from app import rounds, routes, urls
from app.casework import Casework
from app.session import LOCKED
from app.views import round as round_view
from app.views import rounds as rounds_view
from app.views import shell, today
from app.views.widgets import walk
from tests.app.views_support import (
    PIN,
    FakeNav,
    FakeServer,
    enrolled,
    find,
    keys,
    make_app,
    patient,
    run,
    set_value,
    site,
    texts,
)


def add_patient(app, nav, name, note="", actions="", pick=None):
    view = round_view.build(app, nav)
    set_value(view, "next-name", name)
    if pick:
        find(view, f"match-{pick}").on_click(None)
    set_value(view, "next-note", note)
    set_value(view, "next-actions", actions)
    find(view, "add-entry").on_click(None)
    return view


def test_empty_round_renders(app):
    view = round_view.build(app, FakeNav("/round"))
    assert view.route == "/round"
    for key in (
        "round-site",
        "round-date",
        "attendees",
        "topics",
        "entries-none",
        "next-name",
        "next-note",
        "next-actions",
        "add-entry",
        "finish-round",
    ):
        assert key in keys(view), key
    assert find(view, "round-date").value == "2026-11-23"
    assert find(view, "round-save-status").value == "Not saved yet"
    assert app.store.list("round") == []


def test_header_autosave_is_debounced(app):
    office = site(app, "Riverside Clinic", "physician_office")
    nav = FakeNav()

    async def typing():
        view = round_view.build(app, nav)
        set_value(view, "round-site", office)
        set_value(view, "attendees", "Dr. Lee, RN Ortiz")
        set_value(view, "topics", "Falls prevention")
        assert app.store.list("round") == []
        find(view, "topics").on_blur(None)
        (rnd,) = app.store.list("round")
        assert rnd["fields"] == {
            "date": "2026-11-23",
            "site_id": office,
            "attendees": ["Dr. Lee", "RN Ortiz"],
            "education_topics": ["Falls prevention"],
        }

    asyncio.run(typing())
    view = round_view.build(app, nav)
    assert find(view, "round-title").value == "Round 2026-11-23 · Riverside Clinic"


def test_eight_patients_fast_with_tasks(app):
    known = patient(app, "Ada Demo")
    nav = FakeNav()
    add_patient(
        app, nav, "Ada", "Stable after fall", "Call son; order walker in 3 days", pick=known
    )
    assert find(round_view.build(app, nav), "last-added").value == "Added Ada Demo · 2 tasks"
    for i in range(7):
        add_patient(app, nav, f"New Person {i}", f"note {i}", "Check meals" if i % 2 else "")
    (rnd,) = app.store.list("round")
    work = Casework(app)
    entries = work.round_entries(rnd["id"])
    assert len(entries) == 8
    assert entries[0]["fields"]["patient_id"] == known
    assert entries[0]["fields"]["action_items"] == ["Call son", "order walker in 3 days"]
    assert len(app.store.list("patient")) == 8
    tasks = app.store.list("task")
    assert len(tasks) == 2 + 3
    walker = next(t for t in tasks if t["fields"]["title"] == "order walker")
    assert walker["fields"]["due_date"] == "2026-11-26"
    assert walker["fields"]["source_id"] == entries[0]["id"]
    assert walker["fields"]["patient_id"] == known
    view = round_view.build(app, nav)
    assert find(view, "entries-header").value == "Patients discussed (8)"
    assert "Stable after fall" in texts(find(view, f"entry-{entries[0]['id']}"))
    assert find(view, "next-name").value == "" and find(view, "next-name").autofocus
    # Only that once: a later redraw must not pull the focus from the field being typed in.
    assert not find(round_view.build(app, nav), "next-name").autofocus
    # finishing forgets the in-progress round: /round starts a new one
    find(view, "finish-round").on_click(None)
    assert nav.went[-1] == "/today" and nav.toasts[-1] == "Round saved: 8 patients"
    assert "entries-none" in keys(round_view.build(app, nav))
    view = round_view.build(app, nav, round_id=rnd["id"])
    assert view.route == f"/round/{rnd['id']}"
    assert not find(view, "next-name").autofocus  # reopened to read: no keyboard
    assert find(view, "entries-header").value == "Patients discussed (8)"


def test_search_hints_and_validation(app):
    patient(app, "Ada Demo")
    nav = FakeNav()
    view = round_view.build(app, nav)
    assert "Type a name" in find(view, "next-hint").value
    set_value(view, "next-name", "ada demo")
    assert "exists: tap the name above" in find(view, "next-hint").value
    set_value(view, "next-name", "Zed")
    assert find(view, "next-hint").value == "New patient “Zed” will be added."
    assert find(view, "matches").controls == []
    set_value(view, "next-name", "  ")
    find(view, "add-entry").on_click(None)
    view = round_view.build(app, nav)
    assert find(view, "next-name").error == "Type the patient's name"
    assert app.store.list("round_entry") == []
    set_value(view, "round-date", "someday")  # the round cannot be saved with this date
    assert find(view, "round-save-status").value.startswith("Not saved")
    add_patient(app, nav, "Zed")
    assert app.store.list("round_entry") == [] and nav.toasts[-1] == "Fix the round's date first"


def test_unknown_round(app):
    view = round_view.build(app, FakeNav(), round_id="00000000-0000-4000-8000-000000000000")
    assert "round-missing" in keys(view)


TEAMS = [{"id": "team-a", "name": "North team"}, {"id": "team-b", "name": "South team"}]


def signed_in(app, *teams):
    app.store.set_meta("user", {"username": "demo", "role": "liaison", "teams": list(teams)})


def test_a_new_round_belongs_to_the_users_only_team(app):
    signed_in(app, TEAMS[0])
    nav = FakeNav()
    view = round_view.build(app, nav)
    assert not find(view, "round-team").visible  # nothing to choose
    set_value(view, "attendees", "Dr. Lee")
    find(view, "attendees").on_blur(None)
    (rnd,) = app.store.list("round")
    assert rnd["fields"]["team_id"] == "team-a"
    add_patient(app, nav, "New Person")
    (new,) = app.store.list("patient")
    assert new["fields"]["team_id"] == "team-a"


def test_a_user_in_several_teams_chooses_the_rounds_team_before_it_is_saved(app):
    signed_in(app, *TEAMS)
    nav = FakeNav()
    view = round_view.build(app, nav)
    team = find(view, "round-team")
    assert team.visible and [o.key for o in team.options] == ["team-a", "team-b"]
    set_value(view, "attendees", "Dr. Lee")
    find(view, "attendees").on_blur(None)
    assert app.store.list("round") == []
    assert find(view, "round-save-status").value.startswith("Not saved")
    assert find(view, "round-team").error_text == "Choose the team this round belongs to."
    add_patient(app, nav, "Too Early")
    assert (
        app.store.list("patient") == []
        and nav.toasts[-1] == "Choose the team this round belongs to."
    )
    view = round_view.build(app, nav)
    set_value(view, "round-team", "team-b")
    find(view, "attendees").on_blur(None)
    (rnd,) = app.store.list("round")
    assert rnd["fields"]["team_id"] == "team-b"
    assert find(view, "round-team").error_text is None
    # The patients it adds by name are placed in the round's team too.
    add_patient(app, nav, "New Person")
    (new,) = app.store.list("patient")
    assert new["fields"]["team_id"] == "team-b"
    # Once saved, the round's team is shown, not changed from here.
    view = round_view.build(app, nav, round_id=rnd["id"])
    assert find(view, "round-team").disabled and find(view, "round-team").value == "team-b"


def test_adding_a_patient_puts_it_in_the_chosen_team(app):
    signed_in(app, *TEAMS)
    pid, problems = app.add_patient("Ada Example")
    assert pid is None and problems == {"team_id": "Choose the team this patient belongs to."}
    pid, problems = app.add_patient("Ada Example", team_id="team-a")
    assert problems == {} and app.store.get(pid)["fields"]["team_id"] == "team-a"


# -- past rounds, editing and removing entries, the row as a draft, finishing ------------


def finished_round(app, *names):
    """A round with one new patient per name, finished; returns its id."""
    nav = FakeNav()
    for name in names:
        add_patient(app, nav, name, f"note on {name}", "Call GP")
    find(round_view.build(app, nav), "finish-round").on_click(None)
    return max(app.store.list("round"), key=lambda r: min(r["clock"].values()))["id"]


def test_past_rounds_newest_first_with_date_site_and_count(app):
    office = site(app, "Riverside Clinic", "physician_office")
    old = app.store.put("round", {"date": "2026-11-02", "site_id": office})["id"]
    nav = FakeNav(urls.ROUNDS)
    view = rounds_view.build(app, nav)
    assert "past-rounds-none" not in keys(view)
    recent = finished_round(app, "Ann One", "Bo Two")
    view = rounds_view.build(app, nav)
    assert view.route == "/rounds" and "past-rounds-none" not in keys(view)
    tiles = [c for c in walk(view) if str(getattr(c, "key", "")).startswith("past-round-")]
    assert [t.key for t in tiles] == [f"past-round-{recent}", f"past-round-{old}"]
    assert set(texts(tiles[0]).split("\n")) == {"Mon 23 Nov 2026 · No site", "2 patients"}
    assert set(texts(tiles[1]).split("\n")) == {"Mon 02 Nov 2026 · Riverside Clinic", "0 patients"}
    tiles[0].on_click(None)
    assert nav.went[-1] == f"/round/{recent}"
    find(view, "new-round").on_click(None)
    assert nav.went[-1] == "/round"


def test_no_rounds_yet_says_so(app):
    view = rounds_view.build(app, FakeNav(urls.ROUNDS))
    assert "No rounds yet" in texts(find(view, "past-rounds-none"))


def test_past_rounds_is_linked_from_today_and_is_where_a_round_goes_back_to(app):
    nav = FakeNav(urls.TODAY)
    find(today.build(app, nav), "past-rounds").on_click(None)
    assert nav.went == ["/rounds"]
    assert routes.parent(urls.office_round()) == urls.ROUNDS
    assert routes.parent(urls.office_round("r1")) == urls.ROUNDS
    assert routes.parent(urls.ROUNDS) == urls.TODAY and routes.tab(urls.ROUNDS) == urls.TODAY


def test_an_entry_is_edited_and_new_action_items_become_tasks(app):
    rid = finished_round(app, "Ann One")
    (entry,) = Casework(app).round_entries(rid)
    nav = FakeNav()
    view = round_view.build(app, nav, round_id=rid)
    find(view, f"edit-{entry['id']}").on_click(None)
    view = round_view.build(app, nav, round_id=rid)
    assert find(view, "edit-actions").value == "Call GP"
    assert find(view, "edit-note").label == "Note about Ann One"
    set_value(view, "edit-note", "Seen by GP; better")
    set_value(view, "edit-actions", "Call GP\nBook physio in 2 weeks")
    leave = shell.leave_of(view)
    assert leave is not None and leave.unsaved()  # an open edit is typed input
    find(view, "edit-save").on_click(None)
    (saved,) = Casework(app).round_entries(rid)
    assert saved["id"] == entry["id"]
    assert saved["fields"]["note"] == "Seen by GP; better"
    assert saved["fields"]["action_items"] == ["Call GP", "Book physio in 2 weeks"]
    titles = sorted(t["fields"]["title"] for t in app.store.list("task"))
    assert titles == ["Book physio", "Call GP"]  # only the new item made a task
    view = round_view.build(app, nav, round_id=rid)
    assert "edit-note" not in keys(view)
    assert find(view, "last-added").value == "Saved changes for Ann One · 1 task"
    assert "Seen by GP; better" in texts(find(view, f"entry-{entry['id']}"))


def test_editing_can_be_cancelled(app):
    rid = finished_round(app, "Ann One")
    (entry,) = Casework(app).round_entries(rid)
    nav = FakeNav()
    find(round_view.build(app, nav, round_id=rid), f"edit-{entry['id']}").on_click(None)
    view = round_view.build(app, nav, round_id=rid)
    set_value(view, "edit-note", "changed my mind")
    find(view, "edit-cancel").on_click(None)
    (same,) = Casework(app).round_entries(rid)
    assert same["fields"]["note"] == "note on Ann One"
    assert "edit-note" not in keys(round_view.build(app, nav, round_id=rid))


def test_removing_an_entry_asks_and_keeps_its_tasks(app):
    rid = finished_round(app, "Ann One", "Bo Two")
    first, second = Casework(app).round_entries(rid)
    nav = FakeNav()
    view = round_view.build(app, nav, round_id=rid)
    find(view, f"remove-{first['id']}").on_click(None)
    (dialog,) = nav.dialogs
    assert dialog.title.value == "Remove Ann One from this round?"
    assert "Tasks already made from it are not deleted" in texts(dialog)
    find(dialog, "remove-keep").on_click(None)
    assert nav.dialogs == [] and len(Casework(app).round_entries(rid)) == 2
    find(view, f"remove-{first['id']}").on_click(None)
    find(nav.dialogs[-1], "remove-confirm").on_click(None)
    assert [e["id"] for e in Casework(app).round_entries(rid)] == [second["id"]]
    assert len(app.store.list("task")) == 2  # the removed entry's task is still there
    view = round_view.build(app, nav, round_id=rid)
    assert find(view, "entries-header").value == "Patients discussed (1)"
    assert find(view, "last-added").value == "Removed Ann One from the round"


def test_finish_with_a_typed_row_asks_add(app):
    nav = FakeNav()
    add_patient(app, nav, "Ann One")
    view = round_view.build(app, nav)
    set_value(view, "next-name", "Bo Two")
    set_value(view, "next-note", "new today")
    find(view, "finish-round").on_click(None)
    (dialog,) = nav.dialogs
    assert dialog.title.value == "Add Bo Two before finishing?"
    assert nav.went == [] and len(app.store.list("round_entry")) == 1
    find(dialog, "finish-add").on_click(None)
    assert len(app.store.list("round_entry")) == 2
    assert nav.went == ["/today"] and nav.toasts[-1] == "Round saved: 2 patients"


def test_finish_with_a_typed_row_can_discard_or_keep_editing(app):
    nav = FakeNav()
    add_patient(app, nav, "Ann One")
    view = round_view.build(app, nav)
    set_value(view, "next-name", "Bo Two")
    find(view, "finish-round").on_click(None)
    find(nav.dialogs[-1], "finish-keep").on_click(None)
    assert nav.went == [] and find(view, "next-name").value == "Bo Two"
    find(view, "finish-round").on_click(None)
    find(nav.dialogs[-1], "finish-discard").on_click(None)
    assert len(app.store.list("round_entry")) == 1
    assert nav.toasts[-1] == "Round saved: 1 patient"  # singular
    assert find(round_view.build(app, nav), "next-name").value == ""  # a fresh round


def test_finish_with_only_a_note_typed_offers_no_add(app):
    nav = FakeNav()
    add_patient(app, nav, "Ann One")
    view = round_view.build(app, nav)
    set_value(view, "next-note", "about whom?")
    find(view, "finish-round").on_click(None)
    dialog = nav.dialogs[-1]
    assert dialog.title.value == "Finish without the typed note?"
    assert "finish-add" not in keys(dialog) and "finish-discard" in keys(dialog)


def test_a_typed_name_of_an_existing_patient_asks_before_a_duplicate(app):
    known = app.store.put(
        "patient",
        {"name": "Zoë Ärnold", "birth_date": "1948-03-02", "phone": "555 0100", "status": "active"},
    )["id"]
    nav = FakeNav()
    add_patient(app, nav, "  zoe   arnold ", "seen")
    (dialog,) = nav.dialogs
    assert dialog.title.value == "zoe arnold is already a patient"
    assert find(dialog, f"use-{known}").content == "Use Zoë Ärnold (78 · 555 0100)"
    assert app.store.list("round_entry") == []
    find(dialog, f"use-{known}").on_click(None)
    (entry,) = app.store.list("round_entry")
    assert entry["fields"]["patient_id"] == known and entry["fields"]["note"] == "seen"
    assert len(app.store.list("patient")) == 1
    # "Add a new patient" makes the namesake on purpose
    add_patient(app, nav, "Zoe Arnold")
    find(nav.dialogs[-1], "namesake-new").on_click(None)
    assert len(app.store.list("patient")) == 2 and len(app.store.list("round_entry")) == 2
    # "Keep editing" adds nothing and keeps the row
    add_patient(app, nav, "zoe arnold")
    assert "use-" in " ".join(keys(nav.dialogs[-1]))  # both namesakes offered now
    find(nav.dialogs[-1], "namesake-keep").on_click(None)
    assert len(app.store.list("round_entry")) == 2
    assert find(round_view.build(app, nav), "next-name").value == "zoe arnold"


def test_finish_add_of_a_namesake_asks_which_then_finishes(app):
    known = patient(app, "Ann One")
    nav = FakeNav()
    view = round_view.build(app, nav)
    set_value(view, "next-name", "ann one")
    find(view, "finish-round").on_click(None)
    find(nav.dialogs[-1], "finish-add").on_click(None)
    assert nav.dialogs[-1].key == "namesake-dialog" and nav.went == []
    find(nav.dialogs[-1], f"use-{known}").on_click(None)
    assert nav.went == ["/today"] and nav.toasts[-1] == "Round saved: 1 patient"


def test_the_next_patient_row_survives_a_lock(tmp_path):
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    known = patient(app, "Ann One")
    nav = FakeNav()
    view = round_view.build(app, nav)
    set_value(view, "attendees", "Dr Lee")
    find(view, "attendees").on_blur(None)  # the round is saved: it has an id
    (rnd,) = app.store.list("round")
    set_value(view, "next-name", "Ann")
    find(view, f"match-{known}").on_click(None)
    set_value(view, "next-note", "half a thought")
    app.session.lock()
    assert app.session.phase == LOCKED and app.ui == {}
    run(app.session.unlock(PIN))
    view = round_view.build(app, nav)  # /round goes on with the same round
    assert find(view, "round-save-status").value == "Saved"
    assert find(view, "attendees").value == "Dr Lee"
    assert find(view, "next-name").value == "Ann One"
    assert find(view, "next-note").value == "half a thought"
    assert find(view, "next-hint").value == "Patient: Ann One"
    find(view, "add-entry").on_click(None)
    (entry,) = app.store.list("round_entry")
    assert entry["fields"]["round_id"] == rnd["id"] and entry["fields"]["patient_id"] == known
    # a saved round's row is its own draft
    view = round_view.build(app, nav, round_id=rnd["id"])
    set_value(view, "next-name", "Bo Two")
    app.session.lock()
    run(app.session.unlock(PIN))
    assert find(round_view.build(app, nav, round_id=rnd["id"]), "next-name").value == "Bo Two"
    # finishing forgets the row and the round in progress
    find(round_view.build(app, nav, round_id=rnd["id"]), "finish-round").on_click(None)
    find(nav.dialogs[-1], "finish-discard").on_click(None)
    app.session.lock()
    run(app.session.unlock(PIN))
    assert list(app.drafts.keys()) == []
    assert find(round_view.build(app, nav), "round-save-status").value == "Not saved yet"
    app.session.lock()


def test_discarding_on_leave_clears_the_row_draft(app):
    nav = FakeNav()
    view = round_view.build(app, nav)
    set_value(view, "next-name", "Bo Two")
    leave = shell.leave_of(view)
    assert leave is not None and leave.unsaved()
    leave.discard()
    assert not leave.unsaved()
    assert app.drafts.get(rounds.row_key(None), rounds.RoundRow) is None
