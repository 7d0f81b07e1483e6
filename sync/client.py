"""The device's httpx transport for the sync engine (DESIGN §4).

``SyncClient`` speaks wire contract v1 over HTTPS: it gzips large JSON request bodies
(falling back to plain bodies for good when a server answers 400 or 415 to one),
retries transport errors, 5xx and 429 with exponential backoff and jitter (honouring
``Retry-After``), never retries other 4xx, and translates every httpx error and error
answer into ``sync.errors`` in one place, ``SyncClient._attempts``.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import random as _random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sync.errors import (
    AuthExpired,
    DeviceRevoked,
    InsecureServerURL,
    ProtocolError,
    ServerRefused,
    ServerUnavailable,
)

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=5.0)
GZIP_MIN_BYTES = 2048

TokenSource = Callable[[], "str | None"]
JSON = dict[str, Any]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: full-jitter exponential backoff."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, rand: float, retry_after: float | None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0)."""
        backoff = rand * min(self.max_delay, self.base_delay * 2.0**attempt)
        return max(backoff, retry_after or 0.0)


DEFAULT_RETRY = RetryPolicy()


def check_server_url(url: str) -> httpx.URL:
    """Parse a server URL; refuse plain http except to loopback."""
    parsed = httpx.URL(url)
    if parsed.scheme == "https" or (parsed.scheme == "http" and parsed.host in LOOPBACK):
        return parsed
    raise InsecureServerURL(f"the server address must start with https:// (got {url[:80]!r})")


class SyncClient:
    """Async client for one Liaison server; pass ``transport`` to run in-process."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | TokenSource | None = None,
        ca_bundle: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        gzip_requests: bool = True,
        gzip_min_bytes: int = GZIP_MIN_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        url = check_server_url(base_url)
        self.token = token
        self.retry = retry
        self.gzip_requests = gzip_requests
        self.gzip_min_bytes = gzip_min_bytes
        self._sleep = sleep
        self._random = random
        # A custom CA bundle adds trust for a self-hosted server; verification stays on.
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        )
        self._http = httpx.AsyncClient(
            base_url=url,
            timeout=timeout,
            verify=verify,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "liaison-device/1", "Accept": "application/json"},
        )

    async def __aenter__(self) -> SyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- the API of DESIGN §4 ---------------------------------------------------------

    async def healthz(self) -> bool:
        """True when the server answers ``/healthz`` with status ok (one try, no retry)."""
        try:
            body = await self._send("GET", "/healthz", auth=False, attempts=1)
        except (ServerUnavailable, ServerRefused, ProtocolError):
            return False
        return body.get("status") == "ok"

    async def enrol(
        self, username: str, password: str, device_name: str, device_token: str | None = None
    ) -> JSON:
        """Sign in and register this device: ``{device_id, token, user}``.

        ``device_token`` is this phone's earlier token when it signs in again (even an
        expired one): the server then throttles its attempts apart from strangers', who
        cannot lock the user's own phone out by guessing.
        """
        payload = {"username": username, "password": password, "device_name": device_name}
        if device_token:
            payload["device_token"] = device_token
        # Not idempotent (a lost answer would leave a stray device): retry only when the
        # request surely never reached the server.
        return await self._send(
            "POST", "/api/v1/devices", json_body=payload, auth=False, idempotent=False
        )

    async def me(self) -> JSON:
        """The signed-in user, role, teams and device."""
        return await self._send("GET", "/api/v1/me")

    async def push(self, mutations: Sequence[Mapping[str, Any]]) -> JSON:
        """Send a batch of mutations; a retry is harmless as the server skips seen ids."""
        return await self._send("POST", "/api/v1/sync/push", json_body={"mutations": mutations})

    async def pull(self, cursor: int, limit: int) -> JSON:
        """One page of records with rev > ``cursor``."""
        params = {"cursor": str(cursor), "limit": str(limit)}
        return await self._send("GET", "/api/v1/sync/pull", params=params)

    async def put_attachment(self, sha256: str, data: bytes, content_type: str) -> bool:
        """Upload bytes by their hash; True when the server did not have them yet."""
        response = await self._request(
            "PUT",
            f"/api/v1/attachments/{sha256}",
            content=data,
            headers={"Content-Type": content_type},
        )
        return response.status_code == 201

    async def get_attachment(self, sha256: str) -> bytes:
        """Download the bytes of an attachment."""
        response = await self._request("GET", f"/api/v1/attachments/{sha256}")
        return response.content

    async def merge_patient(self, duplicate_id: str, survivor_id: str) -> JSON:
        """Merge a duplicate patient into the survivor (``server.merge``); a retry is
        harmless: the server answers a repeated merge as it did the first time."""
        return await self._send(
            "POST", f"/api/v1/patients/{duplicate_id}/merge", json_body={"into": survivor_id}
        )

    async def revoke(self, device_id: str) -> None:
        """Revoke a device (this one when signing out)."""
        await self._request("DELETE", f"/api/v1/devices/{device_id}")

    # -- the one boundary between httpx and sync.errors --------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
        idempotent: bool = True,
        attempts: int | None = None,
    ) -> JSON:
        content = None
        headers: dict[str, str] = {}
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        response = await self._request(
            method,
            path,
            content=content,
            headers=headers,
            params=params,
            auth=auth,
            idempotent=idempotent,
            attempts=attempts,
        )
        if response.status_code == 204:
            return {}
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise ProtocolError(f"{method} {path}: the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise ProtocolError(f"{method} {path}: the answer is not a JSON object")
        return body

    async def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
        idempotent: bool = True,
        attempts: int | None = None,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise a ``sync.errors`` error."""
        request = self._build(method, path, content, headers, params, auth, self.gzip_requests)
        try:
            return await self._attempts(request, idempotent, attempts)
        except ServerRefused as exc:
            if exc.status not in (400, 415) or "Content-Encoding" not in request.headers:
                raise
        # The server does not take compressed bodies: send plain from now on.
        self.gzip_requests = False
        request = self._build(method, path, content, headers, params, auth, False)
        return await self._attempts(request, idempotent, attempts)

    async def _attempts(
        self, request: httpx.Request, idempotent: bool, attempts: int | None
    ) -> httpx.Response:
        tries = max(1, attempts or self.retry.attempts)
        problem = "no answer"
        for attempt in range(tries):
            retry_after: float | None = None
            try:
                response = await self._http.send(request)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                problem = f"cannot reach the server ({type(exc).__name__})"
            except httpx.TransportError as exc:
                if not idempotent:  # the server may have acted on it
                    raise ServerUnavailable(f"connection lost ({type(exc).__name__})") from exc
                problem = f"connection lost ({type(exc).__name__})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                problem = f"the server answered {status}"
                if status < 500 and status != 429:
                    raise refusal(response)
                if status not in (429, 503) and not idempotent:  # it may have acted
                    raise ServerUnavailable(problem, retry_after)
                if retry_after is not None and retry_after > self.retry.max_retry_after:
                    raise ServerUnavailable(problem, retry_after)
            if attempt + 1 < tries:
                await self._sleep(self.retry.delay(attempt, self._random(), retry_after))
        raise ServerUnavailable(f"{problem} after {tries} tries", retry_after)

    def _build(
        self,
        method: str,
        path: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        auth: bool,
        compress: bool,
    ) -> httpx.Request:
        all_headers = dict(headers or {})
        if auth:
            token = self.token() if callable(self.token) else self.token
            if not token:
                raise AuthExpired(401, "not_signed_in", "sign in to sync")
            all_headers["Authorization"] = f"Bearer {token}"
        if (
            content is not None
            and compress
            and len(content) >= self.gzip_min_bytes
            and all_headers.get("Content-Type") == "application/json"
        ):
            content = gzip.compress(content, compresslevel=1, mtime=0)
            all_headers["Content-Encoding"] = "gzip"
        return self._http.build_request(
            method, path, content=content, headers=all_headers, params=params
        )


def refusal(response: httpx.Response) -> ServerRefused:
    """The error for a 4xx (or other non-retryable) answer, from its JSON error body."""
    code, message, field, wipe = "http_error", response.reason_phrase or "refused", None, False
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        wipe = body.get("wipe") is True
        error = body.get("error")
        if isinstance(error, dict):
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
            field = error.get("field") if isinstance(error.get("field"), str) else None
    status = response.status_code
    if status == 401 and code == "device_revoked" and wipe:
        return DeviceRevoked(status, code, message, field)
    if status == 401:
        return AuthExpired(status, code, message, field)
    return ServerRefused(status, code, message, field)


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if valid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())
