"""``serve --workers N``: N server processes answering on one listening socket.

The parent binds the socket, forks the workers and waits; each worker runs its own uvicorn
server (its own event loop, threads and database connections) on the shared socket, and
the kernel hands each new connection to one of them. Only on PostgreSQL: SQLite has one
writer at a time, which one process already keeps busy (``Database``'s write lock).

Stopping: SIGTERM or SIGINT to the parent stops every worker gracefully (workers are in
their own process group, so a Ctrl-C reaches the parent alone and nobody is stopped twice,
which uvicorn would take as "force"). A worker that exits on its own stops the others and
the parent exits with 1, for the process manager to restart the whole; a worker whose
parent died stops itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

PARENT_CHECK_SECONDS = 1.0


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every worker accepts on (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(count: int, sock: socket.socket, serve: Callable[[socket.socket], Any]) -> int:
    """Fork ``count`` workers that each call ``serve(sock)``; wait for them all.

    Returns 0 when they stopped because the parent was told to stop, else 1.
    """
    workers = [_fork(sock, serve) for _ in range(count)]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(workers, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    while workers:
        pid, status = os.wait()
        if pid not in workers:
            continue
        workers.remove(pid)
        if not stopping:  # a worker ended by itself: stop the rest, let the manager restart
            failed, stopping = True, True
            _signal_all(workers, signal.SIGTERM)
        elif os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM):
            failed = True  # uvicorn re-raises SIGTERM once it has shut down: that is clean
    sock.close()
    return 1 if failed else 0


def _fork(sock: socket.socket, serve: Callable[[socket.socket], Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setpgid(0, 0)  # a terminal's Ctrl-C goes to the parent only
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _stop_with_parent(os.getppid())
        serve(sock)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)  # never back into the parent's code


def _stop_with_parent(parent: int) -> None:
    """Stop this worker (gracefully) if its parent goes away."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
