"""SyncClient against scripted answers (httpx.MockTransport): retries, errors, gzip, TLS rules."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable, Coroutine
from typing import Any

import certifi
import httpx
import pytest

from sync.client import RetryPolicy, SyncClient, check_server_url, parse_retry_after
from sync.errors import (
    AuthExpired,
    DeviceRevoked,
    InsecureServerURL,
    ProtocolError,
    ServerRefused,
    ServerUnavailable,
)

Handler = Callable[[httpx.Request], httpx.Response]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Script:
    """Answers requests from a list of steps: a Response, an exception, or a callable."""

    def __init__(self, *steps: Any) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(request)  # type: ignore[no-any-return]
        return step  # type: ignore[no-any-return]

    def client(self, token: Any = "tok", **kwargs: Any) -> SyncClient:
        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        kwargs.setdefault("random", lambda: 0.5)
        return SyncClient(
            "https://liaison.example",
            token=token,
            transport=httpx.MockTransport(self),
            sleep=sleep,
            **kwargs,
        )


def ok(body: Any = None, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def error(status: int, code: str, **extra: Any) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", **extra.pop("err", {})}}
    return httpx.Response(status, json={**body, **extra})


PULLED = {"records": [], "purge": [], "cursor": 0, "more": False, "last_mutation_id": 0}


@pytest.mark.parametrize(
    "url",
    [
        "https://liaison.example",
        "http://localhost:8000",
        "http://127.0.0.1:8000",
        "http://[::1]:80",
    ],
)
def test_accepts_https_and_loopback(url: str) -> None:
    assert check_server_url(url)


@pytest.mark.parametrize(
    "url", ["http://liaison.example", "http://10.0.0.2", "ftp://x", "http://localhost.evil.com"]
)
def test_refuses_plain_http_elsewhere(url: str) -> None:
    with pytest.raises(InsecureServerURL):
        SyncClient(url)


def test_custom_ca_bundle_keeps_verification() -> None:
    client = SyncClient("https://liaison.example", ca_bundle=certifi.where())
    run(client.aclose())
    with pytest.raises(FileNotFoundError):
        SyncClient("https://liaison.example", ca_bundle="/nonexistent/ca.pem")


def test_sends_bearer_token_from_a_callable() -> None:
    script = Script(ok(PULLED))
    client = script.client(token=lambda: "abc")
    run(client.pull(7, 100))
    request = script.requests[0]
    assert request.headers["Authorization"] == "Bearer abc"
    assert request.url.params["cursor"] == "7" and request.url.params["limit"] == "100"


def test_no_token_is_auth_expired_without_a_request() -> None:
    script = Script(ok(PULLED))
    with pytest.raises(AuthExpired) as info:
        run(script.client(token=lambda: None).pull(0, 10))
    assert info.value.code == "not_signed_in" and not script.requests


def test_retries_transport_errors_with_growing_jittered_backoff() -> None:
    boom = httpx.ConnectError("refused")
    script = Script(boom, httpx.ReadTimeout("slow"), boom, ok(PULLED))
    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=3.0)
    assert run(script.client(retry=policy).pull(0, 10)) == PULLED
    assert script.sleeps == [0.5, 1.0, 1.5]  # random()=0.5 times min(cap, 1, 2, 4)


def test_gives_up_after_the_attempts() -> None:
    script = Script(httpx.ConnectError("down"))
    with pytest.raises(ServerUnavailable, match="after 3 tries"):
        run(script.client(retry=RetryPolicy(attempts=3)).pull(0, 10))
    assert len(script.requests) == 3 and len(script.sleeps) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retries_5xx_and_429(status: int) -> None:
    script = Script(error(status, "busy"), ok(PULLED))
    assert run(script.client().pull(0, 10)) == PULLED
    assert len(script.requests) == 2


def test_honours_retry_after() -> None:
    script = Script(ok({}, 429, **{"Retry-After": "7"}), ok(PULLED))
    run(script.client().pull(0, 10))
    assert script.sleeps == [7.0]


def test_a_very_long_retry_after_is_handed_to_the_caller() -> None:
    script = Script(ok({}, 503, **{"Retry-After": "3600"}))
    with pytest.raises(ServerUnavailable) as info:
        run(script.client().pull(0, 10))
    assert info.value.retry_after == 3600 and not script.sleeps


def test_parse_retry_after_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=lambda: 1445412480.0) == 30.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("status", [400, 403, 404, 409, 413, 422])
def test_no_retry_for_4xx(status: int) -> None:
    script = Script(error(status, "nope", err={"field": "mutations[0].fields.name"}))
    with pytest.raises(ServerRefused) as info:
        run(script.client().push([]))
    assert len(script.requests) == 1
    exc = info.value
    assert (exc.status, exc.code, exc.field) == (status, "nope", "mutations[0].fields.name")


def test_401_is_auth_expired_and_device_revoked_asks_for_a_wipe() -> None:
    with pytest.raises(AuthExpired) as expired:
        run(Script(error(401, "token_expired")).client().me())
    assert not isinstance(expired.value, DeviceRevoked)
    with pytest.raises(DeviceRevoked):
        run(Script(error(401, "device_revoked", wipe=True)).client().me())


def test_non_json_answer_is_a_protocol_error() -> None:
    script = Script(httpx.Response(200, text="<html>captive portal</html>"))
    with pytest.raises(ProtocolError):
        run(script.client().me())


def test_enrol_is_not_retried_once_the_request_may_have_arrived() -> None:
    script = Script(httpx.ReadError("cut"), ok({"token": "t"}, 201))
    with pytest.raises(ServerUnavailable):
        run(script.client().enrol("ana", "pw", "phone"))
    assert len(script.requests) == 1
    script = Script(error(500, "oops"), ok({"token": "t"}, 201))
    with pytest.raises(ServerUnavailable):
        run(script.client().enrol("ana", "pw", "phone"))
    assert len(script.requests) == 1


def test_enrol_is_retried_when_the_connection_never_opened() -> None:
    script = Script(httpx.ConnectError("no route"), ok({"token": "t"}, 201))
    assert run(script.client(token=None).enrol("ana", "pw", "phone")) == {"token": "t"}
    sent = json.loads(script.requests[1].content)
    assert sent == {"username": "ana", "password": "pw", "device_name": "phone"}
    assert "Authorization" not in script.requests[1].headers


def test_large_bodies_are_gzipped() -> None:
    script = Script(ok({"last_mutation_id": 0, "results": []}))
    mutations = [{"id": i, "fields": {"summary": "x" * 100}} for i in range(1, 50)]
    run(script.client().push(mutations))
    request = script.requests[0]
    assert request.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(request.content)) == {"mutations": mutations}


def test_small_bodies_and_disabled_gzip_are_plain() -> None:
    script = Script(ok({"last_mutation_id": 0, "results": []}))
    run(script.client().push([{"id": 1}]))
    big = [{"id": i, "fields": {"summary": "x" * 100}} for i in range(1, 50)]
    run(script.client(gzip_requests=False).push(big))
    for request in script.requests:
        assert "Content-Encoding" not in request.headers
        json.loads(request.content)


def test_attachments_and_revoke() -> None:
    sha = "a" * 64
    script = Script(
        httpx.Response(201),
        httpx.Response(200),
        httpx.Response(200, content=b"\x89PNG"),
        httpx.Response(204),
    )
    client = script.client()
    assert run(client.put_attachment(sha, b"\x89PNG", "image/png")) is True
    assert run(client.put_attachment(sha, b"\x89PNG", "image/png")) is False
    assert run(client.get_attachment(sha)) == b"\x89PNG"
    run(client.revoke("dev-1"))
    assert [r.method for r in script.requests] == ["PUT", "PUT", "GET", "DELETE"]
    assert script.requests[0].headers["Content-Type"] == "image/png"
    assert script.requests[3].url.path == "/api/v1/devices/dev-1"


def test_healthz_is_one_quick_try() -> None:
    assert run(Script(ok({"status": "ok"})).client().healthz()) is True
    down = Script(httpx.ConnectError("down"))
    assert run(down.client().healthz()) is False
    assert len(down.requests) == 1 and not down.sleeps
    assert run(Script(error(503, "starting")).client().healthz()) is False


def test_a_server_refusing_gzip_gets_plain_bodies_from_then_on() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Content-Encoding") == "gzip":
            return error(400, "malformed_json")
        json.loads(request.content)
        return ok({"last_mutation_id": 0, "results": []})

    script = Script(handler)
    client = script.client()
    big = [{"id": i, "fields": {"summary": "x" * 100}} for i in range(1, 50)]
    run(client.push(big))
    run(client.push(big))
    encodings = [r.headers.get("Content-Encoding") for r in script.requests]
    assert encodings == ["gzip", None, None] and client.gzip_requests is False


def test_a_real_400_is_still_raised_after_the_plain_retry() -> None:
    script = Script(error(400, "malformed"))
    big = [{"id": i, "fields": {"summary": "x" * 100}} for i in range(1, 50)]
    with pytest.raises(ServerRefused):
        run(script.client().push(big))
    assert len(script.requests) == 2
