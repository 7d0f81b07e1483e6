"""Helpers for headless view and state tests: a stand-in Nav, a scripted server, a clock,
and an unlocked app on a real store for the casework screens (``conftest.app``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx

from app.main import make_services
from app.session import UNLOCKED
from app.state import AppState, Services
from app.store import Store
from app.vault import ScryptParams
from app.views import widgets

TINY_SCRYPT = ScryptParams(n=2**4)
PIN = "246813"
TEAM = {"id": "team-1", "name": "Demo team"}
NOW = dt.datetime(2026, 11, 23, 10, 0).timestamp()  # the casework screens' still clock


class FakeClock:
    """A settable clock: ``clock()`` returns the time, ``advance(s)`` moves it."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeNav:
    """The Nav a view gets, recording what the view asked for."""

    def __init__(self, route: str = "/") -> None:
        self.route = route
        self.went: list[str] = []
        self.refreshed = 0
        self.updates = 0
        self.toasts: list[str] = []
        self.dialogs: list[Any] = []

    def go(self, route: str) -> None:
        self.went.append(route)
        self.route = route

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


def saves_heard(app: Any) -> list[str]:
    """A list that gets "saved" each time the app hears of a local save (from its store)."""
    heard: list[str] = []
    app.subscribe(lambda topic: heard.append(topic) if topic == "saved" else None)
    return heard


class FakeServer:
    """A scripted Liaison server behind ``httpx.MockTransport``."""

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self.records = list(records or [])
        self.pushed: list[dict[str, Any]] = []
        self.offline = False
        self.revoked: list[str] = []
        self.reject_types: set[str] = set()
        self.purges: list[str] = []  # patients every pull says left the device's scope
        self.conflict: dict[str, Any] | None = None
        self.device_id = str(uuid.uuid4())
        self.last_mutation_id = 0
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.offline:
            raise httpx.ConnectError("no network", request=request)
        path = request.url.path
        if path == "/api/v1/devices" and request.method == "POST":
            body = json.loads(request.content)
            if (body["username"], body["password"]) != ("demo", "pw"):
                return httpx.Response(
                    401, json={"error": {"code": "bad_credentials", "message": "wrong credentials"}}
                )
            return httpx.Response(
                201,
                json={
                    "device_id": self.device_id,
                    "token": "secret-token",
                    "user": {"id": "u1", "username": "demo", "role": "liaison", "teams": [TEAM]},
                },
            )
        if path.startswith("/api/v1/devices/") and request.method == "DELETE":
            self.revoked.append(path.rsplit("/", 1)[1])
            return httpx.Response(204)
        if request.headers.get("Authorization") != "Bearer secret-token":
            return httpx.Response(401, json={"error": {"code": "bad_token", "message": "no"}})
        if path == "/api/v1/sync/push":
            return self._push(json.loads(request.content)["mutations"])
        if path == "/api/v1/sync/pull":
            cursor = int(request.url.params["cursor"])
            page = [r for r in self.records if r["rev"] > cursor]
            return httpx.Response(
                200,
                json={
                    "records": page,
                    "purge": list(self.purges),
                    "more": False,
                    "cursor": max([cursor, *(r["rev"] for r in page)]),
                    "last_mutation_id": self.last_mutation_id,
                },
            )
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})

    def _push(self, mutations: list[dict[str, Any]]) -> httpx.Response:
        results = []
        for m in mutations:
            self.pushed.append(m)
            self.last_mutation_id = max(self.last_mutation_id, m["id"])
            if m["type"] in self.reject_types:
                results.append(
                    {
                        "id": m["id"],
                        "status": "rejected",
                        "rev": None,
                        "conflicts": [],
                        "error": {
                            "code": "invalid",
                            "message": "name is too rude",
                            "field": "name",
                        },
                    }
                )
            else:
                rev = self._store(m)
                conflicts, self.conflict = ([self.conflict] if self.conflict else []), None
                results.append(
                    {
                        "id": m["id"],
                        "status": "merged" if conflicts else "applied",
                        "rev": rev,
                        "conflicts": conflicts,
                        "error": None,
                    }
                )
        return httpx.Response(
            200, json={"last_mutation_id": self.last_mutation_id, "results": results}
        )

    def _store(self, m: dict[str, Any]) -> int:
        """Keep an accepted mutation as the server's record (last writer wins)."""
        rev = max([0, *(r["rev"] for r in self.records)]) + 1
        old = next((r for r in self.records if r["id"] == m["record_id"]), None)
        if old is None:
            old = {
                "id": m["record_id"],
                "type": m["type"],
                "fields": {},
                "clock": {},
                "deleted": False,
            }
            self.records.append(old)
        old["fields"].update(m["fields"])
        old["clock"].update(m["clock"])
        old["rev"], old["deleted"] = rev, m["op"] == "delete"
        return rev


def patient_record(name: str, rev: int, **fields: Any) -> dict[str, Any]:
    """A server-side patient record as a pull returns it."""
    stamp = f"{1_790_000_000_000:015d}-00000-server"
    all_fields = {"name": name, "status": "active", **fields}
    return {
        "id": str(uuid.uuid4()),
        "type": "patient",
        "fields": all_fields,
        "clock": dict.fromkeys(all_fields, stamp),
        "rev": rev,
        "deleted": False,
    }


async def _no_sleep(seconds: float) -> None:
    """Retries back off without waiting in tests."""


def make_app(
    tmp_path: Path,
    server: FakeServer,
    clock: FakeClock | None = None,
    max_attempts: int = 10,
    auto_sync: bool = False,
) -> AppState:
    """An AppState over a real Vault and Store in ``tmp_path`` talking to ``server``."""
    services = make_services(
        tmp_path / "device",
        server_url="http://127.0.0.1:9",
        scrypt_params=TINY_SCRYPT,
        transport=server.transport,
        sleep=_no_sleep,
        max_attempts=max_attempts,
        auto_sync=auto_sync,
    )
    if clock is not None:
        services.vault._now = clock
    return AppState(services, now=clock or FakeClock())


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to the end (handlers and actions are async)."""
    return asyncio.run(coro)


async def enrolled(
    app: AppState, url: str = "http://127.0.0.1:9", username: str = "demo", password: str = "pw"
) -> AppState:
    """Take ``app`` through sign-in, PIN and the first sync (the FakeServer's account by
    default)."""
    assert await app.session.enrol(url, username, password)
    assert await app.session.choose_pin(PIN, PIN)
    await app.syncing.sync_now()
    app.session.finish_first_run()
    return app


def find(root: Any, key: str) -> Any:
    """The control with ``key`` (fails the test when missing)."""
    control = widgets.find(root, key)
    assert control is not None, f"no control with key {key!r}"
    return control


def keys(root: Any) -> set[str]:
    """Every key under ``root``."""
    return {c.key for c in widgets.walk(root) if getattr(c, "key", None)}


def set_value(root: Any, key: str, value: Any) -> None:
    """Type or pick ``value`` into the control with ``key``, as its handler sees it."""
    control = find(root, key)
    control.value = value
    handler = getattr(control, "on_select", None) or control.on_change
    handler(None)


def absent(root: Any, key: str) -> bool:
    """True when no control under ``root`` has ``key``."""
    return widgets.find(root, key) is None


def texts(root: Any) -> str:
    """Every text value under ``root`` joined, for 'is this shown' assertions."""
    out = []
    for control in widgets.walk(root):
        for attr in ("value", "label", "text", "title", "tooltip", "hint_text"):
            value = getattr(control, attr, None)
            if isinstance(value, str):
                out.append(value)
        content = getattr(control, "content", None)
        if isinstance(content, str):
            out.append(content)
    return "\n".join(out)


class FakePage:
    """A stand-in ``ft.Page`` for ``app.main.App``: views, route, dialogs, navigation."""

    def __init__(self, route: str = "/") -> None:
        self.route = route
        self.views: list[Any] = []
        self.dialogs: list[Any] = []
        self.updates = 0
        self.navigated: list[str] = []

    def update(self, *controls: Any) -> None:
        self.updates += 1

    def navigate(self, route: str) -> None:
        # In a browser the client answers with a route change event; do the same here.
        self.navigated.append(route)
        self.route = route
        self.on_route_change(None)

    def on_route_change(self, e: Any) -> None:  # replaced by App wiring in tests
        pass

    # Like a browser, report a closed dialog gone at once (the client sends "dismiss"
    # after the closing animation); a test sets it False to hold the dialog closing.
    auto_dismiss = True

    def show_dialog(self, dialog: Any) -> None:
        dialog.open = True
        self.dialogs.append(dialog)

    def pop_dialog(self) -> Any:
        for dialog in reversed(self.dialogs):
            if dialog.open:
                dialog.open = False
                if self.auto_dismiss:
                    self.dismiss(dialog)
                return dialog
        return None

    def dismiss(self, dialog: Any) -> None:
        """The client reports the dialog off the screen."""
        if dialog.on_dismiss is not None:
            dialog.on_dismiss(None)


def fill(app: AppState) -> dict[str, str]:
    """Put a small, full caseload for "today" into the open store; returns the ids."""
    store, day = app.store, app.today
    iso = day.isoformat()
    yesterday = (day - dt.timedelta(days=1)).isoformat()
    ada = store.put(
        "patient",
        {
            "name": "Ada Example",
            "birth_date": "1948-03-02",
            "phone": "+1 555 0100",
            "language": "Spanish",
            "consent_status": "verbal",
            "risk_flags": ["Lives alone"],
            "caregivers": [{"name": "Bo Example", "relation": "son", "phone": "555 0101"}],
            "address": "1 Demo Street",
            "status": "active",
        },
    )["id"]
    cy = store.put("patient", {"name": "Cy Sample", "status": "active"})["id"]
    store.put("patient", {"name": "Old Closed", "status": "closed"})
    site = store.put("site", {"name": "Riverside Family Practice", "kind": "physician_office"})
    rnd = store.put("round", {"site_id": site["id"], "date": iso, "attendees": ["Dr Lee"]})
    visit = store.put(
        "visit",
        {
            "patient_id": ada,
            "setting": "home",
            "started_at": f"{iso}T09:30:00",
            "status": "draft",
            "triage": "short_term_contact",
        },
    )
    store.put("round_entry", {"round_id": rnd["id"], "patient_id": ada, "note": "Discussed"})
    task = store.put(
        "task",
        {
            "patient_id": ada,
            "title": "Call back about food bank",
            "due_date": yesterday,
            "done": False,
        },
    )
    store.put("task", {"patient_id": cy, "title": "Later", "due_date": "2999-01-01"})
    referral = store.put(
        "referral",
        {
            "patient_id": ada,
            "need": "food",
            "to_name": "Demo Food Bank",
            "status": "sent",
            "due_date": iso,
            "urgency": "soon",
        },
    )
    transition = store.put("transition", {"patient_id": ada, "status": "planned"})
    return {
        "ada": ada,
        "cy": cy,
        "round": rnd["id"],
        "visit": visit["id"],
        "task": task["id"],
        "referral": referral["id"],
        "transition": transition["id"],
    }


# -- the casework screens: an unlocked app on a real store, no server ----------------


class _Vault:
    is_set_up = False

    def lock(self) -> None:
        pass


def unlocked_app(path: Any) -> AppState:
    """An unlocked AppState on a fresh encrypted store in ``path``; the clock stands still."""
    services = Services(
        vault=_Vault(), open_store=lambda key: None, client=lambda *a: None, engine=lambda *a: None
    )
    app = AppState(services, now=lambda: NOW)
    # As an unlock does: the store reports each save to the app; drafts live in it.
    app.store = Store.open(path, os.urandom(32), node_id="device-1")
    app.store.watch(app.record_saved)
    app.drafts.open(app.store)
    app.session.phase = UNLOCKED
    return app


def patient(app: AppState, name: str = "Ada Demo") -> str:
    """A new patient's id."""
    return str(app.store.put("patient", {"name": name, "status": "active"})["id"])


def resource(app: AppState, name: str, *categories: str) -> str:
    """A new directory resource's id."""
    return str(app.store.put("resource", {"name": name, "categories": list(categories)})["id"])


def site(app: AppState, name: str, kind: str) -> str:
    """A new site's id."""
    return str(app.store.put("site", {"name": name, "kind": kind})["id"])
