"""The office round, headless: header autosave, fast patient rows, action items into tasks."""

import asyncio

from app.casework import Casework
from app.views import round as round_view
from tests.app.views_support import FakeNav, find, keys, patient, set_value, site, texts


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
    # finishing forgets the in-progress round: /round starts a new one
    find(view, "finish-round").on_click(None)
    assert nav.went[-1] == "/today" and nav.toasts[-1] == "Round saved: 8 patients"
    assert "entries-none" in keys(round_view.build(app, nav))
    view = round_view.build(app, nav, round_id=rnd["id"])
    assert view.route == f"/round/{rnd['id']}"
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
