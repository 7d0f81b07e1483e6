"""The HTTP surface: error envelope everywhere, limits, bad input, the OpenAPI description."""

from __future__ import annotations

import pytest

from server.app import ROUTES, create_app, worker_threads
from server.db import Database
from server.settings import Settings
from tests.server.conftest import SETTINGS
from tests.server.helpers import enrol

pytestmark = pytest.mark.anyio


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}


async def test_unknown_route_and_method(client):
    assert_error(await client.get("/nope"), 404, "not_found")
    assert_error(await client.get("/api/v1/sync/push"), 405, "method_not_allowed")
    assert_error(await client.patch("/api/v1/me"), 405, "method_not_allowed")
    # A trailing slash is another path: the envelope, never a redirect with an empty body.
    assert_error(await client.get("/api/v1/me/"), 404, "not_found")


async def test_openapi_covers_every_route(client):
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    for route in ROUTES:
        for method in route.methods - {"HEAD"}:
            assert method.lower() in document["paths"][route.path], (route.path, method)


@pytest.mark.parametrize(
    "body,status,code",
    [
        (b"{not json", 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b"[]", 400, "malformed"),
        (b'{"username": 1, "password": "x", "device_name": "p"}', 400, "malformed"),
        (b'{"username": "a\\u0000", "password": "x", "device_name": "p"}', 400, "malformed"),
        (b'{"username": "alice", "password": "password-123", "device_name": ""}', 422, "invalid"),
    ],
)
async def test_bad_enrolment_bodies(client, body, status, code):
    response = await client.post("/api/v1/devices", content=body)
    assert_error(response, status, code)


async def test_body_limit_by_content_length_and_by_stream(client, clock, org):
    alice = await enrol(client, clock, "alice")
    big = b'{"mutations": [], "pad": "' + b"x" * SETTINGS.body_limit + b'"}'
    response = await client.post("/api/v1/sync/push", content=big, headers=alice.headers)
    assert_error(response, 413, "too_large")

    async def stream():
        for _ in range(SETTINGS.body_limit // 1000 + 2):
            yield b" " * 1000

    response = await client.post("/api/v1/sync/push", content=stream(), headers=alice.headers)
    assert_error(response, 413, "too_large")


@pytest.mark.parametrize(
    "body,status,code",
    [
        ({}, 400, "malformed"),
        ({"mutations": {}}, 400, "malformed"),
        ({"mutations": [1]}, 400, "malformed"),
        ({"mutations": [{"id": 0}]}, 400, "malformed"),
        ({"mutations": [{"id": "1"}]}, 400, "malformed"),
        ({"mutations": [{"id": True}]}, 400, "malformed"),
        ({"mutations": [{"id": 2**70}]}, 400, "malformed"),
        ({"mutations": [{"id": i + 1} for i in range(SETTINGS.push_limit + 1)]}, 413, "too_large"),
    ],
)
async def test_bad_push_requests(client, clock, org, body, status, code):
    alice = await enrol(client, clock, "alice")
    response = await client.post("/api/v1/sync/push", json=body, headers=alice.headers)
    assert_error(response, status, code)


BAD_MUTATIONS = [
    ({"record_id": "nope"}, "record_id"),
    ({"type": "spaceship"}, "type"),
    ({"op": "merge"}, "op"),
    ({"fields": []}, "fields"),
    ({"clock": {"name": "yesterday"}}, "clock.name"),
    ({"clock": {}}, "clock"),
    ({"base_rev": -1}, "base_rev"),
    ({"base_rev": "3"}, "base_rev"),
    ({"fields": {"name": 5}}, "name"),
    ({"fields": {"name": "x", "bogus": 1}, "clock": None}, "bogus"),
    ({"fields": {}, "clock": {}}, "fields"),
]


@pytest.mark.parametrize("change,field", BAD_MUTATIONS)
async def test_bad_mutations_are_rejected_one_by_one(client, clock, org, change, field):
    alice = await enrol(client, clock, "alice")
    mutation = alice.upsert("site", {"name": "ok"})
    if change.get("clock", 0) is None:
        change = {**change, "clock": {k: mutation["clock"]["name"] for k in change["fields"]}}
    body = await alice.push({**mutation, **change}, alice.upsert("site", {"name": "fine"}))
    bad, good = body["results"]
    assert bad["status"] == "rejected"
    assert bad["error"]["field"] == field, bad
    assert good["status"] == "applied"
    assert body["last_mutation_id"] == 2


@pytest.mark.parametrize(
    "query",
    [
        "cursor=-1",
        "cursor=abc",
        "limit=0",
        "cursor=1e3",
        "limit=99999999999999999999999",
        "cursor=%C2%B2",
    ],
)
async def test_bad_pull_parameters(client, clock, org, query):
    alice = await enrol(client, clock, "alice")
    response = await client.get(f"/api/v1/sync/pull?{query}", headers=alice.headers)
    assert_error(response, 400, "malformed")


async def test_revoke_needs_a_uuid(client, clock, org):
    alice = await enrol(client, clock, "alice")
    response = await client.delete("/api/v1/devices/not-a-uuid", headers=alice.headers)
    assert_error(response, 400, "malformed")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"mutations": [{"id": 1, "record_id": "RID", "type": "site", "op": "upsert",'
        b' "fields": {"name": "\\ud800"}, "clock": {"name": "CLK"}, "base_rev": null}]}',
        b'{"mutations": [{"id": 1, "record_id": "RID", "type": "site", "op": "upsert",'
        b' "fields": {"name": "a\\u0000b"}, "clock": {"name": "CLK"}, "base_rev": null}]}',
    ],
)
async def test_odd_strings_never_500(client, clock, org, raw):
    alice = await enrol(client, clock, "alice")
    raw = raw.replace(b"RID", b"9b3f1a52-1111-4a2b-8c3d-4e5f6a7b8c9d")
    raw = raw.replace(b"CLK", alice.hlc.now().encode())
    response = await client.post("/api/v1/sync/push", content=raw, headers=alice.headers)
    assert response.status_code < 500, response.text
    response = await client.post(
        "/api/v1/devices",
        content=b'{"username": "\\udc00", "password": "\\ud800", "device_name": "\\ud800"}',
    )
    assert response.status_code < 500, response.text


async def test_gzip_bodies(client, clock, org):
    import gzip
    import json

    alice = await enrol(client, clock, "alice")
    body = json.dumps({"mutations": [alice.upsert("site", {"name": "zipped"})]}).encode()
    headers = {**alice.headers, "Content-Encoding": "gzip"}
    response = await client.post("/api/v1/sync/push", content=gzip.compress(body), headers=headers)
    assert response.json()["results"][0]["status"] == "applied"
    bomb = gzip.compress(b" " * (SETTINGS.body_limit + 1))
    response = await client.post("/api/v1/sync/push", content=bomb, headers=headers)
    assert_error(response, 413, "too_large")
    response = await client.post("/api/v1/sync/push", content=b"\x1f\x8bjunk", headers=headers)
    assert_error(response, 400, "malformed_json")
    response = await client.post(
        "/api/v1/sync/push", content=gzip.compress(body)[:-8], headers=headers
    )
    assert_error(response, 400, "malformed_json")
    response = await client.post(
        "/api/v1/sync/push", content=body, headers={**alice.headers, "Content-Encoding": "br"}
    )
    assert_error(response, 415, "unsupported_encoding")


@pytest.mark.parametrize(
    "content,headers",
    [
        (b"{not json", {}),
        (b'{"mutations": {}}', {}),
        (b'{"mutations": []}', {"Content-Encoding": "br"}),
        (b" " * (SETTINGS.body_limit + 1), {}),  # announced too large: not even read
    ],
)
async def test_a_bad_token_is_told_before_a_bad_body(client, clock, org, content, headers):
    # Small bodies are read before the token is checked, but never looked at before.
    headers = {"Authorization": "Bearer not-a-token", **headers}
    response = await client.post("/api/v1/sync/push", content=content, headers=headers)
    assert_error(response, 401, "unauthorized")

    async def stream():  # no Content-Length: the token is checked before reading
        yield content

    response = await client.post("/api/v1/sync/push", content=stream(), headers=headers)
    assert_error(response, 401, "unauthorized")


def test_worker_threads_setting(database):
    assert Settings.from_environ({}).worker_threads == 0  # chosen for the database
    assert worker_threads(Settings.from_environ({}), database) == (2 if database.is_sqlite else 8)
    chosen = Settings.from_environ({"LIAISON_WORKER_THREADS": "5"})
    assert worker_threads(chosen, database) == 5
    assert create_app(chosen, database).state.limiter.total_tokens == 5
    with pytest.raises(ValueError, match="LIAISON_WORKER_THREADS"):
        Settings.from_environ({"LIAISON_WORKER_THREADS": "-1"})
    with pytest.raises(ValueError, match="LIAISON_PUSH_LIMIT"):
        Settings.from_environ({"LIAISON_PUSH_LIMIT": "0"})


@pytest.mark.parametrize("value,pragma", [(None, 2), ("1", 1)])
def test_sqlite_synchronous_setting(tmp_path, value, pragma):
    environ = {} if value is None else {"LIAISON_SQLITE_SYNCHRONOUS": value}
    settings = Settings.from_environ(environ)
    database = Database(f"sqlite:///{tmp_path}/s.db", synchronous=settings.sqlite_synchronous)
    with database.read() as conn:
        driver = conn.connection.dbapi_connection
        assert driver.execute("PRAGMA synchronous").fetchone() == (pragma,)
        assert driver.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    database.dispose()
    for bad in ("0", "4"):  # OFF could corrupt on a power cut
        with pytest.raises(ValueError, match="LIAISON_SQLITE_SYNCHRONOUS"):
            Settings.from_environ({"LIAISON_SQLITE_SYNCHRONOUS": bad})


async def test_large_pull_pages_go_gzipped_to_clients_that_accept_it(client, clock, org):
    import gzip

    from tests.server.helpers import enrol

    alice = await enrol(client, clock, "alice")
    await alice.push(
        *[alice.upsert("site", {"name": f"Clinic {i}", "address": "1 Main St"}) for i in range(30)]
    )
    url = "/api/v1/sync/pull?cursor=0"
    plain = await client.get(url, headers={**alice.headers, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    raw = b""
    async with client.stream(
        "GET", url, headers={**alice.headers, "Accept-Encoding": "gzip"}
    ) as zipped:
        assert zipped.headers["content-encoding"] == "gzip"
        async for chunk in zipped.aiter_raw():
            raw += chunk
    assert gzip.decompress(raw) == plain.content
    assert len(raw) * 4 < len(plain.content)  # what the weak link is spared
    refused = await client.get(url, headers={**alice.headers, "Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    small = await client.get(
        "/api/v1/sync/pull?cursor=10000", headers={**alice.headers, "Accept-Encoding": "gzip"}
    )
    assert "content-encoding" not in small.headers  # not worth it under 2 KB


@pytest.mark.parametrize("number", ["9" * 4000, "1e999", "-1e999", "NaN", "Infinity"])
async def test_numbers_no_field_can_hold_are_refused(client, clock, org, number):
    alice = await enrol(client, clock, "alice")
    raw = (
        '{"mutations": [{"id": 1, "record_id": "00000000-0000-4000-8000-000000000001", '
        '"type": "site", "op": "upsert", "fields": {"name": "x", "phone": NUMBER}, '
        '"clock": {}, "base_rev": null}]}'
    ).replace("NUMBER", number)
    response = await client.post(
        "/api/v1/sync/push",
        content=raw,
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("malformed", "malformed_json")
    sign_in = await client.post("/api/v1/devices", content=f'{{"username": {number}}}')
    assert sign_in.status_code == 400


async def test_a_bug_is_a_500_envelope_and_its_log_holds_no_patient_data(
    database, settings, clock, org, caplog, monkeypatch
):
    import httpx

    from server.service import Service

    secret = {"message": "patient Ada Example, born 1950-01-01"}  # as a driver's might

    def broken(*args):
        raise RuntimeError(secret["message"])

    app = create_app(settings, database, clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        alice = await enrol(client, clock, "alice")
        monkeypatch.setattr(Service, "pull_body", broken)
        with caplog.at_level("ERROR", logger="server"):
            response = await client.get("/api/v1/sync/pull", headers=alice.headers)
    assert_error(response, 500, "internal_error")
    assert "Ada Example" not in response.text
    assert "RuntimeError" in caplog.text and "/api/v1/sync/pull" in caplog.text
    assert "Ada Example" not in caplog.text and "1950" not in caplog.text
