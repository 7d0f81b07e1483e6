"""The route table: each URL helper lands on its screen, Back and the tabs follow the rows,
and every row builds its screen on an unlocked app (no "not available" hiding a broken one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flet as ft
import pytest

from app import routes, urls
from app.state import AppState
from app.views import shell
from tests.app.views_support import FakeNav, fill


@pytest.mark.parametrize(
    ("route", "pattern", "params"),
    [
        (urls.TODAY, "/today", {}),
        (urls.patient("abc"), "/patient/{patient_id}", {"patient_id": "abc"}),
        (urls.assess("p1"), "/assess/{patient_id}", {"patient_id": "p1"}),
        (urls.visit("v1"), "/visit/{visit_id}", {"visit_id": "v1"}),
        (
            urls.refer("p1", "r1"),
            "/refer/{patient_id}",
            {"patient_id": "p1", "referral_id": "r1"},
        ),
        (
            urls.refer("p1", need="food"),
            "/refer/{patient_id}",
            {"patient_id": "p1", "need": "food"},
        ),
        (urls.tasks("p1"), "/tasks", {"patient_id": "p1"}),
        (urls.tasks(), "/tasks", {}),
        (urls.transition("p1"), "/transition/{patient_id}", {"patient_id": "p1"}),
        (urls.office_round(), "/round", {}),
        (urls.office_round("r9"), "/round/{round_id}", {"round_id": "r9"}),
        (urls.PICK_PATIENT, "/new-assessment", {}),
    ],
)
def test_each_url_helper_lands_on_its_row(route: str, pattern: str, params: object) -> None:
    found = routes.match(route)
    assert found is not None
    assert (found[0].pattern, found[1]) == (pattern, params)


def test_unknown_routes_match_nothing() -> None:
    assert routes.match("/nowhere") is None
    assert routes.match("/patient") is None
    assert routes.parent("/nowhere") == urls.HOME


@pytest.mark.parametrize(
    ("route", "parent"),
    [
        (urls.TODAY, None),
        (urls.UNLOCK, None),
        (urls.patient("p"), urls.CASELOAD),
        (urls.assess("p"), urls.patient("p")),
        (urls.refer("p", "r"), urls.patient("p")),
        (urls.transition("p", "t"), urls.patient("p")),
        (urls.visit("v"), urls.TODAY),
    ],
)
def test_back_follows_the_rows(route: str, parent: str | None) -> None:
    assert routes.parent(route) == parent


def test_chain_stacks_the_ancestors_root_first() -> None:
    assert routes.chain(urls.assess("p")) == [urls.CASELOAD, urls.patient("p"), urls.assess("p")]


def test_the_tabs_highlight_the_list_a_screen_belongs_to() -> None:
    nav = FakeNav()
    labels = [label for _, label in routes.TABS]
    for route in (urls.visit("v"), urls.TASKS, urls.office_round()):
        assert shell.tabs(nav, route).selected_index == labels.index("Today")
    for route in (urls.patient("p"), urls.refer("p")):
        assert shell.tabs(nav, route).selected_index == labels.index("Patients")
    bar = shell.tabs(nav, urls.SETTINGS)
    assert bar.selected_index == labels.index("Settings")
    bar.on_change(type("E", (), {"control": type("C", (), {"selected_index": 2})()})())
    assert nav.went == [urls.SYNC]


def test_the_tab_of_the_screen_itself_redraws_nothing() -> None:
    """Tapping Patients on Patients keeps the screen (a redraw took the keyboard focus from
    the search field the thumb was reaching for); on a patient's page it opens the list."""
    tap = type("E", (), {"control": type("C", (), {"selected_index": 1})()})()
    on_list, on_patient = FakeNav(urls.CASELOAD), FakeNav(urls.patient("p"))
    shell.tabs(on_list, urls.CASELOAD).on_change(tap)
    shell.tabs(on_patient, urls.patient("p")).on_change(tap)
    assert on_list.went == [] and on_list.refreshed == 0
    assert on_patient.went == [urls.CASELOAD]


def _sample(app: AppState, ids: dict[str, str], row: routes.Route) -> str:
    """A route for ``row`` with real ids from ``fill``."""
    values = {
        "patient_id": ids["ada"],
        "visit_id": ids["visit"],
        "round_id": ids["round"],
        "transition_id": ids["transition"],
        "referral_id": ids["referral"],
    }
    return "/" + "/".join(values[p[1:-1]] if p.startswith("{") else p for p in row.parts)


def test_every_row_builds_its_screen(app: AppState) -> None:
    """Walks the table: each unlocked screen builds a view for its own route, with Back
    where the row says."""
    ids = fill(app)
    built: list[str] = []
    for row in routes.ROUTES:
        if row.public:
            continue
        route = _sample(app, ids, row)
        nav: Any = FakeNav(route)
        view = row.build(app, nav, **routes.match(route)[1])  # type: ignore[index]
        assert isinstance(view, ft.View), row.pattern
        assert view.route == route, row.pattern
        has_back = view.appbar.leading is not None
        assert has_back == (routes.parent(route) is not None), row.pattern
        built.append(row.pattern)
    assert len(built) == len([r for r in routes.ROUTES if not r.public])


def test_links_of_records_open_their_screens() -> None:
    assert urls.for_record("round_entry", "e", "p", link="r") == urls.office_round("r")
    assert urls.for_record("addendum", "a", "p", link="v") == urls.visit("v")
    assert urls.for_record("referral", "r", "p") == urls.refer("p", "r")
    assert urls.for_record("task", "t", "p") == urls.tasks("p")
    assert urls.for_record("patient", "p") == urls.patient("p")
    assert urls.for_record("resource", "x") is None


# The phone build ships the views byte-compiled (name.pyc beside no name.py): the device
# tests of `make phone-check` run this file there too.
VIEW_MODULES = sorted(
    {
        f"app.views.{p.stem}"
        for pattern in ("*.py", "*.pyc")
        for p in (Path(routes.__file__).parent / "views").glob(pattern)
        if p.stem != "__init__"
    }
)


@pytest.mark.parametrize("name", VIEW_MODULES)
def test_each_view_imports_first(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whichever screen is imported first (a test, a tool), the route table and the views
    it imports come up: no cycle leaves a half-initialised module."""
    import importlib
    import sys

    for loaded in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        monkeypatch.delitem(sys.modules, loaded)
    importlib.import_module(name)
    assert importlib.import_module("app.routes").match(urls.TODAY) is not None
