"""Sign-in under attack: small bodies, the throttle before the work, reserved attempts,
and a stranger's guesses that cannot lock a user's own phone out."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest

from server import audit
from server.api import SIGN_IN_BODY
from tests.server.conftest import PASSWORD, SETTINGS
from tests.server.helpers import enrol

pytestmark = pytest.mark.anyio


def _body(username: str, password: str, **extra: str) -> dict[str, str]:
    return {"username": username, "password": password, "device_name": "p", **extra}


def _actions(database) -> list[str]:
    with database.read() as conn:
        return [row["action"] for row in audit.rows(conn)]


async def test_a_sign_in_body_is_small(client, org, database):
    padded = _body("alice", PASSWORD, note="x" * SIGN_IN_BODY)
    response = await client.post("/api/v1/devices", json=padded)
    assert response.status_code == 413
    # A gzip bomb: 4 KB on the wire, far more inflated; refused at the sign-in limit.
    bomb = gzip.compress(json.dumps(_body("alice", " " * 2_000_000)).encode())
    assert len(bomb) < SIGN_IN_BODY
    response = await client.post(
        "/api/v1/devices",
        content=bomb,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "login.failed" not in _actions(database)  # no password was checked


async def test_a_throttled_address_is_refused_before_its_body_is_read(client, clock, org):
    for index in range(SETTINGS.throttle_address_failures):
        response = await client.post("/api/v1/devices", json=_body(f"ghost{index}", "wrong-pw"))
        assert response.status_code == 401
    # Not even parsed: a malformed body gets the 429 too.
    response = await client.post("/api/v1/devices", content=b"{not json")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


async def test_concurrent_guesses_are_checked_no_more_than_the_limit(client, org, database):
    guesses = [
        client.post("/api/v1/devices", json=_body("alice", f"guess-{n:04d}")) for n in range(40)
    ]
    statuses = sorted(r.status_code for r in await asyncio.gather(*guesses))
    limit = SETTINGS.throttle_user_failures
    assert statuses == [401] * limit + [429] * (40 - limit)
    assert _actions(database).count("login.failed") == limit


async def test_a_strangers_guesses_do_not_lock_out_the_users_own_phone(client, clock, org):
    phone = await enrol(client, clock, "alice")
    clock.advance(SETTINGS.token_absolute_seconds + 1)  # the phone's sign-in expired
    for _ in range(SETTINGS.throttle_user_failures):
        response = await client.post("/api/v1/devices", json=_body("alice", "wrong-guess"))
        assert response.status_code == 401
    # A new phone (no earlier token) waits out the window, as the limit says ...
    assert (await client.post("/api/v1/devices", json=_body("alice", PASSWORD))).status_code == 429
    # ... but Alice's phone shows its earlier token and signs in again.
    again = await client.post(
        "/api/v1/devices", json=_body("alice", PASSWORD, device_token=phone.token)
    )
    assert again.status_code == 201, again.text


async def test_a_device_cookie_has_its_own_limit_and_must_be_the_users(client, clock, org):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    for _ in range(SETTINGS.throttle_user_failures):
        response = await client.post(
            "/api/v1/devices", json=_body("alice", "wrong-guess", device_token=alice.token)
        )
        assert response.status_code == 401
    response = await client.post(
        "/api/v1/devices", json=_body("alice", PASSWORD, device_token=alice.token)
    )
    assert response.status_code == 429
    # Another user's token is no cookie for Alice: it counts against her name as usual.
    response = await client.post(
        "/api/v1/devices", json=_body("alice", PASSWORD, device_token=amy.token)
    )
    assert response.status_code == 201


async def test_device_token_must_be_a_string(client, org):
    response = await client.post(
        "/api/v1/devices", json={**_body("alice", PASSWORD), "device_token": 5}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "device_token"
