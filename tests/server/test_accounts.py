"""A user's whole life, by an administrator over the API and from the command line:
disabled users are locked out for good, leavers' phones purge the team, all audited."""

from __future__ import annotations

import io
import json

import pytest

from server import audit
from server.__main__ import main
from tests.server.conftest import PASSWORD
from tests.server.helpers import PATIENT, enrol

pytestmark = pytest.mark.anyio
NEW_PASSWORD = "brand-new-pass-1"


def _actions(database) -> list[str]:
    with database.read() as conn:
        return [row["action"] for row in reversed(audit.rows(conn))]


async def _sign_in(client, username, password=PASSWORD):
    return await client.post(
        "/api/v1/devices", json={"username": username, "password": password, "device_name": "p"}
    )


ADMIN_CALLS = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"username": "x", "password": NEW_PASSWORD, "role": "liaison"}),
    ("GET", "/api/v1/users/{alice}", None),
    ("POST", "/api/v1/users/{alice}/disable", None),
    ("POST", "/api/v1/users/{alice}/enable", None),
    ("PUT", "/api/v1/users/{alice}/password", {"password": NEW_PASSWORD}),
    ("PUT", "/api/v1/users/{alice}/role", {"role": "admin"}),
    ("PUT", "/api/v1/users/{alice}/teams/{team_b}", None),
    ("DELETE", "/api/v1/users/{alice}/teams/{team_a}", None),
    ("GET", "/api/v1/teams", None),
    ("POST", "/api/v1/teams", {"name": "C"}),
]


@pytest.mark.parametrize("method,path,body", ADMIN_CALLS)
async def test_only_an_admin_manages_accounts(client, clock, org, database, method, path, body):
    url = path.format(alice=org.users["alice"], team_a=org.team_a, team_b=org.team_b)
    for username in ("alice", "sue"):  # a liaison, a supervisor
        device = await enrol(client, clock, username)
        response = await client.request(method, url, json=body, headers=device.headers)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
    assert not [a for a in _actions(database) if a.startswith(("user.", "team."))]


async def test_create_list_and_show(client, clock, org, database):
    root = await enrol(client, clock, "root")
    created = await client.post(
        "/api/v1/users",
        headers=root.headers,
        json={
            "username": "Nora",
            "password": NEW_PASSWORD,
            "role": "liaison",
            "team_ids": [org.team_a],
        },
    )
    assert created.status_code == 201, created.text
    nora = created.json()
    assert (nora["username"], nora["disabled"], nora["devices"]) == ("nora", False, [])
    assert [t["id"] for t in nora["teams"]] == [org.team_a]
    assert (await _sign_in(client, "nora", NEW_PASSWORD)).status_code == 201
    listed = (await client.get("/api/v1/users", headers=root.headers)).json()["users"]
    assert {u["username"]: u["active_devices"] for u in listed}["nora"] == 1
    shown = (await client.get(f"/api/v1/users/{nora['id']}", headers=root.headers)).json()
    assert [d["revoked_at"] for d in shown["devices"]] == [None]
    teams = (await client.get("/api/v1/teams", headers=root.headers)).json()["teams"]
    assert [t["name"] for t in teams] == ["A", "B"]
    assert "user.create" in _actions(database)
    duplicate = await client.post(
        "/api/v1/users",
        headers=root.headers,
        json={"username": "nora", "password": NEW_PASSWORD, "role": "liaison"},
    )
    assert duplicate.status_code == 409
    weak = await client.post(
        "/api/v1/users",
        headers=root.headers,
        json={"username": "weak", "password": "short", "role": "liaison"},
    )
    assert (weak.status_code, weak.json()["error"]["field"]) == (422, "password")


async def test_a_disabled_user_is_locked_out_and_their_phones_wipe(client, clock, org, database):
    root = await enrol(client, clock, "root")
    phone = await enrol(client, clock, "alice")
    response = await client.post(
        f"/api/v1/users/{org.users['alice']}/disable", headers=root.headers
    )
    assert response.status_code == 200 and response.json()["disabled"] is True
    for path in ("/api/v1/me", "/api/v1/sync/pull"):
        answer = await client.get(path, headers=phone.headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "device_revoked"
        assert answer.json()["wipe"] is True
    # Signing in again does not work: the right password hears why, a wrong one does not.
    right = await _sign_in(client, "alice")
    assert (right.status_code, right.json()["error"]["code"]) == (401, "account_disabled")
    wrong = await _sign_in(client, "alice", "not-her-password")
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    # Enabled again: a new sign-in works; the revoked phone stays revoked.
    await client.post(f"/api/v1/users/{org.users['alice']}/enable", headers=root.headers)
    assert (await _sign_in(client, "alice")).status_code == 201
    assert (await client.get("/api/v1/me", headers=phone.headers)).status_code == 401
    actions = _actions(database)
    assert actions.count("user.disable") == 1 and actions.count("user.enable") == 1
    assert "login.disabled" in actions


async def test_password_reset(client, clock, org):
    root = await enrol(client, clock, "root")
    phone = await enrol(client, clock, "alice")
    url = f"/api/v1/users/{org.users['alice']}/password"
    assert (
        await client.put(url, headers=root.headers, json={"password": NEW_PASSWORD})
    ).status_code == 204
    assert (await _sign_in(client, "alice")).status_code == 401
    assert (await _sign_in(client, "alice", NEW_PASSWORD)).status_code == 201
    assert (await client.get("/api/v1/me", headers=phone.headers)).status_code == 200
    assert (
        await client.put(
            url, headers=root.headers, json={"password": PASSWORD, "revoke_devices": True}
        )
    ).status_code == 204
    gone = await client.get("/api/v1/me", headers=phone.headers)
    assert gone.json()["error"]["code"] == "device_revoked"


async def test_leaving_a_team_purges_it_from_the_users_phones(client, clock, org, database):
    root = await enrol(client, clock, "root")
    amy, alice = await enrol(client, clock, "amy"), await enrol(client, clock, "alice")
    patient = amy.upsert("patient", PATIENT)
    round_ = amy.upsert("round", {"date": "2026-12-01", "notes": "discussed Test Patient"})
    await amy.push(patient, round_)
    found, _ = await alice.pull_all()
    assert {patient["record_id"], round_["record_id"]} <= set(found)
    response = await client.delete(
        f"/api/v1/users/{org.users['alice']}/teams/{org.team_a}", headers=root.headers
    )
    assert response.status_code == 204
    found, purged = await alice.pull_all()
    assert sorted(purged) == sorted([patient["record_id"], round_["record_id"]])
    # No longer hers to write either.
    result = await alice.push(
        alice.upsert("task", {"patient_id": patient["record_id"], "title": "x"})
    )
    assert result["results"][0]["error"]["code"] == "out_of_scope"
    assert "team.remove_member" in _actions(database)
    again = await client.delete(
        f"/api/v1/users/{org.users['alice']}/teams/{org.team_a}", headers=root.headers
    )
    assert again.status_code == 404


async def test_joining_a_team_brings_its_older_records(client, clock, org):
    root = await enrol(client, clock, "root")
    bob, alice = await enrol(client, clock, "bob"), await enrol(client, clock, "alice")
    patient = bob.upsert("patient", PATIENT)
    await bob.push(patient)
    await alice.push(alice.upsert("site", {"name": "later"}))  # Alice's cursor passes it
    found, _ = await alice.pull_all()
    assert patient["record_id"] not in found
    response = await client.put(
        f"/api/v1/users/{org.users['alice']}/teams/{org.team_b}", headers=root.headers
    )
    assert response.status_code == 204
    found, _ = await alice.pull_all()
    assert found[patient["record_id"]]["fields"]["name"] == PATIENT["name"]
    # Bob's phone sees the same record again with its new rev, unchanged.
    mine, _ = await bob.pull_all()
    assert mine[patient["record_id"]]["fields"] == found[patient["record_id"]]["fields"]
    conflict = await client.put(
        f"/api/v1/users/{org.users['alice']}/teams/{org.team_b}", headers=root.headers
    )
    assert conflict.status_code == 409


async def test_role_change(client, clock, org, database):
    root = await enrol(client, clock, "root")
    response = await client.put(
        f"/api/v1/users/{org.users['alice']}/role",
        headers=root.headers,
        json={"role": "supervisor"},
    )
    assert response.json()["role"] == "supervisor"
    bad = await client.put(
        f"/api/v1/users/{org.users['alice']}/role", headers=root.headers, json={"role": "god"}
    )
    assert bad.status_code == 422
    assert "user.role.supervisor" in _actions(database)


async def test_unknown_user_or_team(client, clock, org):
    root = await enrol(client, clock, "root")
    ghost = "00000000-0000-4000-8000-000000000000"
    assert (await client.get(f"/api/v1/users/{ghost}", headers=root.headers)).status_code == 404
    response = await client.put(
        f"/api/v1/users/{org.users['alice']}/teams/{ghost}", headers=root.headers
    )
    assert response.status_code == 404
    assert (await client.get("/api/v1/users/nope", headers=root.headers)).status_code == 400


def _cli(database_url, *args, stdin: str = "", monkeypatch=None, capsys=None):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main([*args, "--database-url", database_url])
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_the_account_commands(database_url, org, monkeypatch, capsys, client, clock):
    def cli(*args, stdin=""):
        return _cli(database_url, *args, stdin=stdin, monkeypatch=monkeypatch, capsys=capsys)

    code, out, err = cli(
        "create-user",
        "nia",
        "--password-stdin",
        "--role",
        "liaison",
        "--team",
        "A",
        stdin=NEW_PASSWORD + "\n",
    )
    assert code == 0 and not err
    assert (await _sign_in(client, "nia", NEW_PASSWORD)).status_code == 201
    code, out, err = cli("create-user", "noel", "--password", NEW_PASSWORD, "--role", "liaison")
    assert code == 0 and "visible to other users" in err
    code, out, _ = cli("list-devices", "nia")
    assert code == 0 and json.loads(out.splitlines()[0])["revoked_at"] is None
    code, out, _ = cli("disable-user", "nia")
    assert code == 0 and "revoked 1 devices" in out
    code, out, _ = cli("list-users")
    assert any(line.startswith("nia\tliaison\tA\tDISABLED") for line in out.splitlines())
    code, out, _ = cli("enable-user", "nia")
    code, out, _ = cli("reset-password", "nia", "--password-stdin", stdin="other-pass-22\n")
    assert code == 0
    assert (await _sign_in(client, "nia", "other-pass-22")).status_code == 201
    code, out, _ = cli("remove-from-team", "nia", "--team", "A")
    assert code == 0
    code, out, _ = cli("add-to-team", "nia", "--team", "B")
    code, out, _ = cli("set-role", "nia", "--role", "supervisor")
    code, out, _ = cli("list-users")
    assert any(line.startswith("nia\tsupervisor\tB\tactive") for line in out.splitlines())
    code, _, err = cli("reset-password", "nia", "--password-stdin", stdin="short\n")
    assert code == 1 and "password must be" in err
    code, _, err = cli("disable-user", "nobody")
    assert code == 1 and "no user named" in err
