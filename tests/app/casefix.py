"""Fixtures of the casework screens' tests: a real AppState on a real Store, a stand-in Nav."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from app.state import UNLOCKED, AppState, Services
from app.store import Store
from app.views import widgets as w

NOW = dt.datetime(2026, 11, 23, 10, 0).timestamp()


class _Vault:
    is_set_up = False

    def lock(self) -> None:
        pass


def make_app(path: Any) -> AppState:
    """An unlocked AppState on a fresh encrypted store in ``path``; the clock stands still."""
    services = Services(vault=_Vault(), open_store=lambda key: None, client=lambda *a: None,
                        engine=lambda *a: None)
    app = AppState(services, now=lambda: NOW)
    app.store = Store.open(path, os.urandom(32), node_id="device-1")
    app.phase = UNLOCKED
    return app


class Nav:
    """A stand-in for the page: records where the view went and what it said."""

    def __init__(self, route: str = "/") -> None:
        self.route = route
        self.went: list[str] = []
        self.toasts: list[str] = []
        self.refreshed = 0
        self.updates = 0
        self.dialogs: list[Any] = []
        self.saves = 0

    def go(self, route: str) -> None:
        self.went.append(route)

    def back(self) -> None:
        self.went.append("<back>")

    def refresh(self) -> None:
        self.refreshed += 1

    def update(self) -> None:
        self.updates += 1

    def toast(self, message: str) -> None:
        self.toasts.append(message)

    def show_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog)

    def close_dialog(self) -> None:
        self.dialogs.pop()

    def saved(self) -> None:
        self.saves += 1


def find(view: Any, key: str) -> Any:
    """The control with ``key`` in the view; fails loudly when missing."""
    control = w.find(view, key)
    assert control is not None, f"no control with key {key!r}"
    return control


def keys(view: Any) -> set[str]:
    """Every key in the view."""
    return {c.key for c in w.walk(view) if getattr(c, "key", None)}


def texts(view: Any) -> str:
    """All visible text of the view, one string (for "it says X" assertions)."""
    out = []
    for c in w.walk(view):
        for attr in ("value", "text", "label", "title"):
            v = getattr(c, attr, None)
            if isinstance(v, str):
                out.append(v)
        content = getattr(c, "content", None)
        if isinstance(content, str):
            out.append(content)
    return "\n".join(out)


def patient(app: AppState, name: str = "Ada Demo") -> str:
    """A new patient's id."""
    return str(app.store.put("patient", {"name": name, "status": "active"})["id"])


def resource(app: AppState, name: str, *categories: str) -> str:
    """A new directory resource's id."""
    return str(app.store.put("resource", {"name": name, "categories": list(categories)})["id"])


def site(app: AppState, name: str, kind: str) -> str:
    """A new site's id."""
    return str(app.store.put("site", {"name": name, "kind": kind})["id"])
