"""The route table: every screen of the app is one row here.

A row is (pattern, builder, parent, tab). ``pattern`` uses ``{name}`` for path parameters;
``build(app, nav, **params)`` makes the view (path parameters and the query string are its
keyword arguments); ``parent(params)`` is where Back leads (None: a root, a tab);
``tab`` is the bottom tab highlighted on that screen. Builders are imported here, by name:
a screen that fails to import fails the app's start and the tests, never hides behind a
"not available" screen.

Adding a screen: its module under ``app/views``, a helper in ``app.urls``, one row here,
and its test (``tests/app/test_routes.py`` walks this table).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from app import urls
from app.views import (
    assessment,
    caseload,
    first_run,
    patient,
    patient_edit,
    patient_merge,
    referrals,
    round,
    rounds,
    settings,
    sync,
    tasks,
    today,
    transition,
    unlock,
)

Params = Mapping[str, str]


@dataclass(frozen=True)
class Route:
    """One screen: its URL pattern, its builder, where Back leads and its tab."""

    pattern: str
    build: Callable[..., Any]
    parent: Callable[[Params], str | None]
    tab: str | None
    public: bool = False  # shows no patient data: reachable while locked

    @property
    def parts(self) -> list[str]:
        """The pattern's path segments."""
        return [p for p in self.pattern.split("/") if p]


def _root(_: Params) -> None:
    return None


def _to(url: str) -> Callable[[Params], str]:
    return lambda _: url


def _patient_page(params: Params) -> str:
    return urls.patient(params["patient_id"])


# The bottom tabs, in order: (route, label).
TABS: tuple[tuple[str, str], ...] = (
    (urls.TODAY, "Today"),
    (urls.CASELOAD, "Patients"),
    (urls.SYNC, "Sync"),
    (urls.SETTINGS, "Settings"),
)

ROUTES: tuple[Route, ...] = (
    Route(urls.FIRST_RUN, first_run.build, _root, None, public=True),
    Route(urls.UNLOCK, unlock.build, _root, None, public=True),
    Route(urls.TODAY, today.build, _root, urls.TODAY),
    Route(urls.CASELOAD, caseload.build, _root, urls.CASELOAD),
    Route(urls.SYNC, sync.build, _root, urls.SYNC),
    Route(urls.SETTINGS, settings.build, _root, urls.SETTINGS),
    Route(urls.PICK_PATIENT, caseload.build, _to(urls.TODAY), urls.TODAY),
    Route("/patient/{patient_id}", patient.build, _to(urls.CASELOAD), urls.CASELOAD),
    Route("/patient/{patient_id}/edit", patient_edit.build, _patient_page, urls.CASELOAD),
    Route("/patient/{patient_id}/merge", patient_merge.build, _patient_page, urls.CASELOAD),
    Route("/assess/{patient_id}", assessment.build, _patient_page, urls.CASELOAD),
    Route("/visit/{visit_id}", assessment.build, _to(urls.TODAY), urls.TODAY),
    Route("/refer/{patient_id}", referrals.build, _patient_page, urls.CASELOAD),
    Route(urls.REFERRALS, referrals.build, _to(urls.TODAY), urls.TODAY),
    Route("/transition/{patient_id}", transition.build, _patient_page, urls.CASELOAD),
    Route(urls.TASKS, tasks.build, _to(urls.TODAY), urls.TODAY),
    Route(urls.ROUNDS, rounds.build, _to(urls.TODAY), urls.TODAY),
    Route(urls.NEW_ROUND, round.build, _to(urls.ROUNDS), urls.TODAY),
    Route("/round/{round_id}", round.build, _to(urls.ROUNDS), urls.TODAY),
)


def match(route: str) -> tuple[Route, dict[str, str]] | None:
    """The row and parameters for ``route`` ("/patient/ab?x=1"), or None if unknown."""
    path, _, query = (route or "/").partition("?")
    parts = [p for p in path.split("/") if p]
    for row in ROUTES:
        want = row.parts
        if len(want) != len(parts):
            continue
        params: dict[str, str] = {}
        for w, p in zip(want, parts, strict=True):
            if w.startswith("{"):
                params[w[1:-1]] = p
            elif w != p:
                break
        else:
            for name, value in parse_qsl(query):
                params.setdefault(name, value)
            return row, params
    return None


def parent(route: str) -> str | None:
    """Where Back leads from ``route`` (None for a tab or a public screen; an unknown
    route leads home)."""
    found = match(route)
    if found is None:
        return None if route.partition("?")[0] in ("", "/") else urls.HOME
    row, params = found
    return row.parent(params)


def tab(route: str) -> str:
    """The tab highlighted on ``route`` (detail screens: the list they belong to)."""
    found = match(route)
    return (found[0].tab if found else None) or urls.HOME


def chain(route: str) -> list[str]:
    """``route`` and its ancestors, the root first (the views stacked under it)."""
    out = [route]
    while (up := parent(out[0])) is not None:
        out.insert(0, up)
    return out
