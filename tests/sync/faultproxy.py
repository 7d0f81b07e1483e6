"""A small fault-injecting HTTP/1.1 proxy for tests: it sits between the client and a real
server on loopback and, for scripted requests, drops the connection before the request,
half-way through its body (an upload cut off), after the request (the server has it; the
answer is lost), or in the middle of the answer, delays it, or calls a hook (to kill the
server) after forwarding it.

It runs its own asyncio loop in a thread, so tests drive it from any code. Requests are
parsed just enough (head plus Content-Length body) to match a path and keep connections
alive; answers are relayed by Content-Length.

Given several upstream ports it is also a round-robin load balancer: each request goes to
the next upstream in turn (per request, not per connection, so one device's keep-alive
connection still spreads its requests over every server).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PASS = "pass"
DROP_BEFORE = "drop_before"  # close before forwarding: the server never sees it
DROP_AFTER = "drop_after"  # forward, wait for the answer to start, close: the answer is lost
DROP_MID = "drop_mid"  # forward, relay half the answer, close
DELAY = "delay"  # wait ``seconds`` before forwarding
HOOK_AFTER = "hook_after"  # forward, call ``hook`` (e.g. kill the server), close
DROP_MID_REQUEST = "drop_mid_request"  # forward the head and half the body, close both


@dataclass
class Fault:
    """What to do to the next request whose path ends with ``path``."""

    path: str
    action: str
    seconds: float = 0.0
    hook: Callable[[], None] | None = None


Upstream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class FaultProxy:
    """Proxy 127.0.0.1:<port> to ``upstream_port`` (several: round-robin per request);
    script faults with ``add``."""

    def __init__(self, upstream_port: int | Sequence[int], host: str = "127.0.0.1") -> None:
        ports = [upstream_port] if isinstance(upstream_port, int) else list(upstream_port)
        if not ports:
            raise ValueError("at least one upstream port")
        self.upstreams = [(host, port) for port in ports]
        self.host = host
        self.port = 0
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str]] = []  # (path, action) of every request
        self.routed: Counter[int] = Counter()  # requests forwarded, by upstream port
        self._turn = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._clients: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    def start(self) -> FaultProxy:
        """Listen on a free port (``self.port``) and serve in a thread."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(5)
        return self

    def stop(self) -> None:
        """Close every connection and the listener; end the thread."""
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def add(
        self, path: str, action: str, seconds: float = 0.0, hook: Callable[[], None] | None = None
    ) -> None:
        """Script a fault for the next request whose path ends with ``path``."""
        with self._lock:
            self.faults.append(Fault(path, action, seconds, hook))

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://{self.host}:{self.port}"

    # -- internals --------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Called as a connection is made: its writer is known even if its task never runs.
        # Held here: the loop keeps only weak references to tasks.
        self._clients[writer] = asyncio.get_running_loop().create_task(self._client(reader, writer))

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Every task of the loop: one cancelled before it ran never closes its connection,
        # and one destroyed pending leaks its sockets; so close the clients' writers too.
        current = asyncio.current_task()
        while pending := [t for t in asyncio.all_tasks() if t is not current]:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for writer in list(self._clients):
            writer.close()
        await asyncio.sleep(0)
        if self._server is not None:
            await self._server.wait_closed()

    def _next_upstream(self) -> tuple[str, int]:
        """The upstream for the next request (round-robin; the loop thread only)."""
        upstream = self.upstreams[self._turn % len(self.upstreams)]
        self._turn += 1
        return upstream

    async def _connection(self, open_: dict[tuple[str, int], Upstream]) -> Upstream:
        """A connection to the next upstream, reusing this client's if it is still open."""
        address = self._next_upstream()
        known = open_.get(address)
        # The server closed it (idle timeout) or it broke (a killed server): a new one.
        if known is not None and (known[0].at_eof() or known[0].exception() is not None):
            with contextlib.suppress(Exception):
                known[1].close()
            known = None
        if known is None:
            known = open_[address] = await asyncio.open_connection(*address)
        self.routed[address[1]] += 1
        return known

    def _take(self, path: str) -> Fault:
        with self._lock:
            for fault in self.faults:
                if path.endswith(fault.path):
                    self.faults.remove(fault)
                    return fault
        return Fault(path, PASS)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstreams: dict[tuple[str, int], Upstream] = {}
        try:
            while (request := await _read_message(reader)) is not None:
                if not await self._relay(request, writer, upstreams):
                    return
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # ``stop`` with the connection open. End normally: asyncio's callback for a
            # client task (3.11) calls task.exception(), which raises on a cancelled task.
            return
        finally:
            self._clients.pop(writer, None)
            writers = [writer, *(up[1] for up in upstreams.values())]
            for w in writers:  # first every close, which no cancellation can interrupt
                with contextlib.suppress(Exception):
                    w.close()
            for w in writers:  # ``stop`` may cancel this task here: the sockets are closed
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await w.wait_closed()

    async def _relay(
        self,
        request: bytes,
        writer: asyncio.StreamWriter,
        upstreams: dict[tuple[str, int], Upstream],
    ) -> bool:
        """Forward one request and relay its answer as its fault says; False when the
        fault ends the connection."""
        path = request.split(b" ", 2)[1].split(b"?")[0].decode()
        fault = self._take(path)
        self.seen.append((path, fault.action))
        if fault.action == DROP_BEFORE:
            return False
        if fault.action == DELAY:
            await asyncio.sleep(fault.seconds)
        up_reader, up_writer = await self._connection(upstreams)
        if not await self._send(fault, request, up_writer):
            return False
        if fault.action == DROP_AFTER:
            await up_reader.read(1)  # the server has acted on it
            return False
        answer = await _read_message(up_reader)
        if answer is None:
            return False
        cut = fault.action == DROP_MID
        writer.write(answer[: len(answer) // 2] if cut else answer)
        await writer.drain()
        return not cut

    async def _send(self, fault: Fault, request: bytes, up_writer: asyncio.StreamWriter) -> bool:
        """Forward the request upstream (only half of it for DROP_MID_REQUEST; then run the
        hook for HOOK_AFTER); False when the fault ends the connection here."""
        if fault.action == DROP_MID_REQUEST:  # an upload cut off half-way
            head = request.index(b"\r\n\r\n") + 4
            up_writer.write(request[: head + (len(request) - head) // 2])
            await up_writer.drain()
            return False
        up_writer.write(request)
        await up_writer.drain()
        if fault.action == HOOK_AFTER:
            assert fault.hook is not None
            await asyncio.get_running_loop().run_in_executor(None, fault.hook)
            return False
        return True


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message (head and Content-Length body), or None at end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"transfer-encoding":
            raise ConnectionError("chunked bodies are not supported by this test proxy")
    body = await reader.readexactly(length) if length else b""
    return head + body
