"""The task list, headless: grouped by due date, done with one tap, added per patient."""

import datetime as dt

import pytest

from app.casework import Casework
from app.views import tasks
from tests.app.views_support import FakeNav, find, keys, patient, saves_heard, set_value, texts


@pytest.mark.parametrize(
    "due,group",
    [
        (None, "No due date"),
        ("2026-11-22", "Overdue"),
        ("2026-11-23", "Today"),
        ("2026-11-24", "Upcoming"),
    ],
)
def test_group_of(due, group):
    assert tasks.group_of(due, dt.date(2026, 11, 23)) == group


def test_empty(app):
    view = tasks.build(app, FakeNav("/tasks"))
    assert view.route == "/tasks" and "tasks-empty" in keys(view)


def test_grouped_and_done_with_one_tap(app):
    ada, bo = patient(app, "Ada Demo"), patient(app, "Bo Demo")
    work = Casework(app)
    late = work.add_task(ada, "Call son", "2026-11-20")
    now = work.add_task(bo, "Fax form", "2026-11-23")
    later = work.add_task(ada, "Check meals", "2026-12-01")
    undated = work.add_task(bo, "Find leaflet", None)
    nav = FakeNav()
    view = tasks.build(app, nav)
    for key, value in (
        ("group-overdue", "Overdue (1)"),
        ("group-today", "Today (1)"),
        ("group-upcoming", "Upcoming (1)"),
        ("group-no-due-date", "No due date (1)"),
    ):
        assert find(view, key).value == value
    assert find(view, f"task-{late['id']}").label == "Call son"
    assert find(view, f"task-{late['id']}-detail").value == "Ada Demo · due 2026-11-20"
    assert {f"task-{t['id']}" for t in (now, later, undated)} <= keys(view)
    box = find(view, f"task-{late['id']}")
    box.value = True
    saves = saves_heard(app)
    box.on_change(None)
    assert app.store.get(late["id"])["fields"]["done"] is True
    assert nav.toasts == ["Done: Call son"] and nav.refreshed == 0 and saves == ["saved"]
    view = tasks.build(app, nav)
    assert f"task-{late['id']}" not in keys(view) and "group-overdue" not in keys(view)
    switch = find(view, "show-done")
    switch.value = True
    switch.on_change(None)
    view = tasks.build(app, nav)
    assert find(view, "group-done").value == "Done (1)"
    box = find(view, f"task-{late['id']}")
    assert box.value is True
    box.value = False
    box.on_change(None)
    assert app.store.get(late["id"])["fields"]["done"] is False


def test_one_patient_and_a_new_task(app):
    ada, bo = patient(app, "Ada Demo"), patient(app, "Bo Demo")
    Casework(app).add_task(bo, "Not Ada's", "2026-11-20")
    nav = FakeNav()
    view = tasks.build(app, nav, patient_id=ada)
    assert view.route == f"/tasks?patient_id={ada}" and "tasks-empty" in keys(view)
    assert "Not Ada's" not in texts(view)
    assert find(view, "task-due").value == "2026-11-30"
    find(view, "add-task").on_click(None)
    view = tasks.build(app, nav, patient_id=ada)
    assert find(view, "task-title").error == "Type what needs doing"
    title, due = find(view, "task-title"), find(view, "task-due")
    title.value, due.value = "Call GP", "soon"
    title.on_change(None)
    find(view, "add-task").on_click(None)
    view = tasks.build(app, nav, patient_id=ada)
    assert find(view, "task-due").error == "Must be a date YYYY-MM-DD"
    due = find(view, "task-due")
    due.value = "2026-11-25"
    due.on_change(None)
    find(view, "add-task").on_click(None)
    (task,) = app.store.list("task", patient_id=ada)
    assert task["fields"] == {
        "patient_id": ada,
        "title": "Call GP",
        "due_date": "2026-11-25",
        "done": False,
    }
    view = tasks.build(app, nav, patient_id=ada)
    assert find(view, "task-title").value == "" and "Call GP" in texts(view)


def test_unknown_patient(app):
    view = tasks.build(app, FakeNav(), patient_id="00000000-0000-4000-8000-000000000000")
    assert "tasks-missing" in keys(view)


def test_done_stays_in_place_with_an_undo(app):
    pid = patient(app, "Ada Demo")
    task = Casework(app).add_task(pid, "Call son", "2026-11-20")
    nav = FakeNav()
    view = tasks.build(app, nav)
    undo = find(view, f"task-{task['id']}-undo")
    assert not undo.visible
    box = find(view, f"task-{task['id']}")
    box.value = True
    box.on_change(None)
    assert nav.refreshed == 0 and undo.visible  # the row stays where the thumb is
    undo.on_click(None)
    assert app.store.get(task["id"])["fields"]["done"] is False
    assert box.value is False and not undo.visible
    assert nav.toasts == ["Done: Call son", "Task reopened"]


def test_the_new_task_due_date_has_a_calendar(app):
    pid = patient(app)
    nav = FakeNav()
    view = tasks.build(app, nav, patient_id=pid)
    find(view, "task-due-calendar").on_click(None)
    (picker,) = nav.dialogs
    assert picker.value == dt.datetime(2026, 11, 30)
    picker.value = dt.datetime(2026, 12, 2)
    picker.on_change(None)
    assert find(view, "task-due").value == "2026-12-02"
    set_value(view, "task-title", "Call GP")
    find(view, "add-task").on_click(None)
    (task,) = app.store.list("task")
    assert task["fields"]["due_date"] == "2026-12-02"
