"""Signing in again after the sign-in expired: the app against the real server in-process.

The server's clock moves past the idle expiry, the next sync reports "sign in again", and
the liaison types the password on the Sync screen: every change made meanwhile reaches the
server, nothing is erased, and the phone keeps its store and its clock node.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import make_services
from app.state import AppState
from app.views import sync as sync_view
from server.app import create_app
from server.db import Database
from server.settings import Settings
from sync.engine import SyncStatus as EngineStatus
from sync.errors import ServerRefused, SyncError
from tests.app.views_support import TINY_SCRYPT, FakeNav, enrolled, find
from tests.server import conftest as server_fixtures
from tests.server.conftest import PASSWORD, FakeClock, Org

sqlite_template = server_fixtures.sqlite_template
pg_shared = server_fixtures.pg_shared
database_url = server_fixtures.database_url
database = server_fixtures.database
clock = server_fixtures.clock
settings = server_fixtures.settings
org = server_fixtures.org

SERVER_URL = "http://localhost"


async def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def phone(
    tmp_path: Path, database: Database, settings: Settings, clock: FakeClock, org: Org
) -> AppState:
    """Alice's app, talking to the real server app over ASGI (auto-sync off: syncs are
    awaited by the test)."""
    server = create_app(settings, database, clock=clock)
    services = make_services(
        tmp_path / "device",
        server_url=SERVER_URL,
        scrypt_params=TINY_SCRYPT,
        transport=httpx.ASGITransport(app=server),
        sleep=_no_sleep,
    )
    return AppState(services)


def server_names(database: Database) -> set[str]:
    from sqlalchemy import select

    from server import db, records

    with database.read() as conn:
        rows = conn.execute(select(db.records)).all()
    return {r.fields["name"] for r in map(records.from_row, rows) if r.type == "patient"}


def test_an_expired_sign_in_keeps_every_edit_and_signing_in_again_sends_them(
    phone: AppState, database: Database, settings: Settings, clock: FakeClock
) -> None:
    app = phone

    async def flow() -> None:
        await enrolled(app, SERVER_URL, "alice", PASSWORD)
        assert app.sync.last_success is not None and app.sync.error is None
        first_device = app.account()["device_id"]

        # Two weeks and a day without a sync: the server no longer takes the token.
        app.add_patient("Ada Example")
        app.add_patient("Bo Example")
        clock.advance(settings.token_idle_seconds + 86_400)
        result = await app.syncing.sync_now()
        assert result.status == EngineStatus.SIGN_IN_REQUIRED
        assert app.sync.sign_in_required and app.sync.pending == 2
        assert app.sync.label(app.now()) == "Sign in again · 2 to sync"
        assert app.sync.short_label() == "Sign in"
        assert "Sign in again" in (app.sync.error or "")
        assert server_names(database) == set()

        # The Sync screen offers to sign in again, as the same account.
        nav = FakeNav("/sync")
        view = sync_view.build(app, nav)
        find(view, "sign-in-again").on_click(None)
        dialog = nav.dialogs[-1]
        assert "alice" in str(dialog.content.controls[0].value)
        find(dialog, "sign-in-password").value = "not-the-password"
        await find(dialog, "sign-in-submit").on_click(None)
        assert find(dialog, "sign-in-password").error == "Wrong password."
        assert nav.dialogs == [dialog] and app.sync.sign_in_required
        assert app.sync.pending == 2 and app.account()["device_id"] == first_device

        find(dialog, "sign-in-password").value = PASSWORD
        await find(dialog, "sign-in-submit").on_click(None)
        # The dialog closes at once; the sync runs in the background.
        assert nav.dialogs == [] and nav.toasts == ["Signed in again."]
        assert not app.sync.sign_in_required and app.sync.error is None
        await app.syncing.task
        assert app.sync.pending == 0 and app.sync.error is None
        assert server_names(database) == {"Ada Example", "Bo Example"}
        # A new device to the server; the same store and clock node on the phone.
        assert app.account()["device_id"] != first_device
        # And the screen is back to its usual button.
        view = sync_view.build(app, nav)
        assert find(view, "sync-now") is not None

        # Later edits sync with the new token as usual.
        pid, _ = app.add_patient("Cy Example")
        stamps = app.store.get(pid)["clock"].values()
        assert {stamp.split("-", 2)[2] for stamp in stamps} == {first_device}
        assert (await app.syncing.sync_now()).status == EngineStatus.OK
        assert "Cy Example" in server_names(database)

    asyncio.run(flow())


def test_signing_in_again_needs_a_password_and_a_reachable_server(
    tmp_path: Path, phone: AppState, clock: FakeClock, settings: Settings
) -> None:
    app = phone

    async def flow() -> Any:
        await enrolled(app, SERVER_URL, "alice", PASSWORD)
        token = app.store.get_meta("token")
        assert await app.session.sign_in_again("") == "Type your password."
        assert app.store.get_meta("token") == token  # nothing changed
        app.session.lock()
        assert await app.session.sign_in_again(PASSWORD) == "Unlock Liaison first."

    asyncio.run(flow())


def test_a_strangers_guesses_do_not_lock_the_phone_out(
    phone: AppState, database: Database, settings: Settings, clock: FakeClock
) -> None:
    app = phone

    async def flow() -> None:
        await enrolled(app, SERVER_URL, "alice", PASSWORD)
        app.add_patient("Dot Example")
        clock.advance(settings.token_idle_seconds + 86_400)
        assert (await app.syncing.sync_now()).status == EngineStatus.SIGN_IN_REQUIRED
        # Meanwhile someone guesses Alice's password until her name is locked.
        client = app.services.client(SERVER_URL, None)  # another phone, same server
        for _ in range(settings.throttle_user_failures):
            with pytest.raises(ServerRefused) as refused:
                await client.enrol("alice", "a-wrong-guess", "thief")
            assert refused.value.status == 401
        with pytest.raises(SyncError):  # 429: even the right password waits now
            await client.enrol("alice", PASSWORD, "thief")
        await client.aclose()
        # Her own phone shows its earlier token and is let in.
        assert await app.session.sign_in_again(PASSWORD) is None
        await app.syncing.task
        assert "Dot Example" in server_names(database)

    asyncio.run(flow())


def test_a_second_tap_during_a_sign_in_does_nothing(
    phone: AppState, database: Database, settings: Settings, clock: FakeClock
) -> None:
    app = phone

    async def flow() -> None:
        await enrolled(app, SERVER_URL, "alice", PASSWORD)
        clock.advance(settings.token_idle_seconds + 86_400)
        assert (await app.syncing.sync_now()).status == EngineStatus.SIGN_IN_REQUIRED
        nav = FakeNav("/sync")
        find(sync_view.build(app, nav), "sign-in-again").on_click(None)
        dialog = nav.dialogs[-1]
        find(dialog, "sign-in-password").value = PASSWORD
        submit = find(dialog, "sign-in-submit")
        # A tap and an Enter (or a double tap) arrive together: one sign-in, one device.
        await asyncio.gather(submit.on_click(None), submit.on_click(None))
        assert nav.dialogs == [] and nav.toasts == ["Signed in again."]
        await app.syncing.task
        assert len(_devices_of_alice(database)) == 2  # the first enrolment and one more

    asyncio.run(flow())


def _devices_of_alice(database: Database) -> list[str]:
    from sqlalchemy import select

    from server import db

    with database.read() as conn:
        return list(
            conn.execute(
                select(db.devices.c.id)
                .join(db.users, db.users.c.id == db.devices.c.user_id)
                .where(db.users.c.username == "alice")
            ).scalars()
        )
