"""Enrolment, identity, revocation, token expiry and sign-in throttling."""

from __future__ import annotations

import pytest

from tests.server.conftest import PASSWORD, SETTINGS
from tests.server.helpers import enrol

pytestmark = pytest.mark.anyio


async def test_enrol_and_me(client, clock, org):
    device = await enrol(client, clock, "alice", "Alice's phone")
    assert device.user["username"] == "alice"
    assert device.user["role"] == "liaison"
    assert [t["name"] for t in device.user["teams"]] == ["A"]
    assert len(device.token) >= 43  # 256 bits, URL-safe base64
    me = await client.get("/api/v1/me", headers=device.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == "alice"
    assert body["device"] == {
        "id": device.id,
        "name": "Alice's phone",
        "created_at": clock.now,
        "last_mutation_id": 0,
    }


async def test_username_is_case_insensitive(client, clock, org):
    response = await client.post(
        "/api/v1/devices", json={"username": "Alice", "password": PASSWORD, "device_name": "p"}
    )
    assert response.status_code == 201


@pytest.mark.parametrize("username,password", [("alice", "wrong-password"), ("nobody", PASSWORD)])
async def test_wrong_credentials(client, org, username, password):
    response = await client.post(
        "/api/v1/devices", json={"username": username, "password": password, "device_name": "p"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "x"}])
async def test_bad_tokens(client, headers):
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_revoke_own_device_wipes(client, clock, org):
    device = await enrol(client, clock, "alice")
    other = await enrol(client, clock, "alice", "tablet")
    response = await client.delete(f"/api/v1/devices/{device.id}", headers=other.headers)
    assert response.status_code == 204
    for path in ("/api/v1/me", "/api/v1/sync/pull"):
        response = await client.get(path, headers=device.headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "device_revoked"
        assert response.json()["wipe"] is True
    assert (await client.get("/api/v1/me", headers=other.headers)).status_code == 200


async def test_only_admin_revokes_other_users_devices(client, clock, org):
    alice = await enrol(client, clock, "alice")
    bob = await enrol(client, clock, "bob")
    root = await enrol(client, clock, "root")
    missing = "00000000-0000-4000-8000-000000000000"
    # Another user's device and no device at all get the same answer: no existence oracle.
    mine = await client.delete(f"/api/v1/devices/{alice.id}", headers=bob.headers)
    none = await client.delete(f"/api/v1/devices/{missing}", headers=bob.headers)
    assert (mine.status_code, mine.json()) == (none.status_code, none.json())
    assert mine.status_code == 404
    assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 200
    response = await client.delete(f"/api/v1/devices/{alice.id}", headers=root.headers)
    assert response.status_code == 204
    assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 401
    response = await client.delete(f"/api/v1/devices/{missing}", headers=root.headers)
    assert response.status_code == 404


async def test_idle_expiry(client, clock, org):
    device = await enrol(client, clock, "alice")
    clock.advance(SETTINGS.token_idle_seconds - 10)
    assert (await client.get("/api/v1/me", headers=device.headers)).status_code == 200
    clock.advance(SETTINGS.token_idle_seconds - 10)  # used recently: still fine
    assert (await client.get("/api/v1/me", headers=device.headers)).status_code == 200
    clock.advance(SETTINGS.token_idle_seconds + 1)
    response = await client.get("/api/v1/me", headers=device.headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


async def test_absolute_expiry(client, clock, org):
    device = await enrol(client, clock, "alice")
    step = SETTINGS.token_idle_seconds // 2
    while clock.now + step < 1_800_000_000 + SETTINGS.token_absolute_seconds:
        clock.advance(step)
        assert (await client.get("/api/v1/me", headers=device.headers)).status_code == 200
    clock.advance(step)
    response = await client.get("/api/v1/me", headers=device.headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


async def _login(client, username, password, address="10.0.0.1"):
    return await client.post(
        "/api/v1/devices",
        json={"username": username, "password": password, "device_name": "p"},
        headers={"X-Test": address},
    )


async def test_throttle_per_username(client, clock, org):
    for _ in range(SETTINGS.throttle_user_failures):
        assert (await _login(client, "alice", "wrong-password")).status_code == 401
    response = await _login(client, "alice", PASSWORD)  # even the right password waits
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert int(response.headers["Retry-After"]) == SETTINGS.throttle_window_seconds
    assert (await _login(client, "amy", PASSWORD)).status_code == 201  # others unaffected
    clock.advance(SETTINGS.throttle_window_seconds + 1)
    assert (await _login(client, "alice", PASSWORD)).status_code == 201


async def test_throttle_per_address(client, clock, org):
    for index in range(SETTINGS.throttle_address_failures):
        assert (await _login(client, f"ghost{index}", "wrong-password")).status_code == 401
    response = await _login(client, "amy", PASSWORD)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


async def test_success_clears_username_failures(client, clock, org):
    for _ in range(SETTINGS.throttle_user_failures - 1):
        await _login(client, "alice", "wrong-password")
    assert (await _login(client, "alice", PASSWORD)).status_code == 201
    for _ in range(SETTINGS.throttle_user_failures - 1):
        assert (await _login(client, "alice", "wrong-password")).status_code == 401
