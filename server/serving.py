"""Running the API under uvicorn: which forwarding headers to trust, and slow clients.

A client address is the socket's peer unless the peer is one of the configured trusted
proxies (``--trusted-proxy`` / ``LIAISON_TRUSTED_PROXIES``): only then does
``X-Forwarded-For`` name the client. Uvicorn trusts it from loopback by default, which let
anyone on the server's host (or behind a local proxy that passes the header through)
choose the address the sign-in throttle counts against.

uvicorn has a keep-alive timeout but none for a request's head: a client that sends its
headers one byte at a time holds a connection for ever. ``HeadDeadline`` closes a
connection whose request head is not complete within ``header_timeout_seconds`` of the
connection opening or of the previous response; bodies have their own idle timeout
(``server.bodies``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from uvicorn.protocols.http.auto import AutoHTTPProtocol

TRUSTED_PROXIES_ENV = "LIAISON_TRUSTED_PROXIES"


def trusted_proxies(cli: Sequence[str], environ: dict[str, str] | None = None) -> list[str]:
    """The proxies whose forwarding headers are believed: the command line's, else the
    comma-separated ``LIAISON_TRUSTED_PROXIES``; none by default."""
    if cli:
        return list(cli)
    env = os.environ if environ is None else environ
    return [item.strip() for item in env.get(TRUSTED_PROXIES_ENV, "").split(",") if item.strip()]


class _HeadDeadline:
    """Mixed into uvicorn's HTTP protocol: closes a connection whose request head is late."""

    header_timeout: float = 15.0
    _deadline: asyncio.TimerHandle | None = None
    _armed_for: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._check()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()
        self._check()  # a pipelined request may have started already

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        self._disarm()
        self._armed_for = self.cycle  # type: ignore[attr-defined]
        loop: asyncio.AbstractEventLoop = self.loop  # type: ignore[attr-defined]
        self._deadline = loop.call_later(self.header_timeout, self._too_slow)

    def _check(self) -> None:
        # uvicorn starts a new request/response cycle once a request's head is complete.
        if self._deadline is not None and self.cycle is not self._armed_for:  # type: ignore[attr-defined]
            self._disarm()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        transport: asyncio.Transport = self.transport  # type: ignore[attr-defined]
        if not transport.is_closing():
            transport.close()


def http_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's own HTTP protocol with a deadline on each request's head."""
    return type(
        "HeadDeadline", (_HeadDeadline, AutoHTTPProtocol), {"header_timeout": float(header_timeout)}
    )


def uvicorn_options(
    app: Starlette,
    *,
    host: str,
    port: int,
    proxies: Sequence[str],
    header_timeout: float,
    access_log: bool,
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``."""
    return {
        "app": app,
        "host": host,
        "port": port,
        "access_log": access_log,
        "http": http_protocol(header_timeout),
        # Forwarding headers only from the proxies named; uvicorn's default trusts loopback.
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": list(proxies) or None,
        "server_header": False,
    }
