"""Starting a real server as a process: the one launcher of tests, benchmarks and ``make run``.

``ServerProcess`` runs ``python -m server serve`` as a subprocess on a loopback port (a
free one unless told), waits until ``/readyz`` answers (the database too, not only the
process), and stops it with SIGTERM (SIGKILL when it does not stop in time). ``seed_demo``
and ``cli`` run the other server commands against the same database first.

A test that needs to move the server's clock (a sign-in that expires, say) gives the
process a ``ClockFile``: its ``env()`` turns on ``server.clock``'s test clock, which only a
server started with ``LIAISON_TESTING=1`` accepts.

``AppProcess`` serves the app in web mode as ``make run`` does (``app.main.run_web``, through
``python -m app.main``) on a loopback port, against a given sync server, with its device data
in a given directory: the browser tests and ``benchmarks.web`` start it.

Not packaged for the phone (nothing under ``server/`` is); ``tools.run`` (``make run``) uses it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from server.clock import CLOCK_FILE_ENV, TESTING_ENV

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with the project importable, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def cli(
    database_url: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 120,
) -> str:
    """Run ``python -m server ARGS --database-url URL``; its output, or ``RuntimeError``
    with its error output when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "server", *args, "--database-url", database_url],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"server {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def seed_demo(
    database_url: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    if_empty: bool = False,
) -> str:
    """Migrate the database and add the demo team, liaison and patients; returns what the
    command printed (the demo sign-ins)."""
    flags = ["--if-empty"] if if_empty else []
    return cli(database_url, "seed-demo", *flags, env=env, cwd=cwd)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Wait until ``url`` answers 200; RuntimeError with the end of ``log`` when ``proc``
    exits first or ``timeout`` seconds pass (a child that serves HTTP: the app, say)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout} s\n{log.read_text()[-3000:]}")


class ClockFile:
    """The offset (seconds) a test server adds to its clock, kept in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds = 0.0
        self._write()

    def advance(self, seconds: float) -> None:
        """Move the server's clock forward by ``seconds`` (it reads the file every time)."""
        self.seconds += seconds
        self._write()

    def _write(self) -> None:
        # Replaced whole, never rewritten in place: the server never reads a half-written file.
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(str(self.seconds))
        os.replace(partial, self.path)

    def env(self) -> dict[str, str]:
        """The settings that make a server use this clock."""
        return {TESTING_ENV: "1", CLOCK_FILE_ENV: str(self.path)}


class ChildProcess:
    """A child process of ours: ``alive``, ``stop()``, ``kill()``, and a context manager
    that starts it (``start()``, the subclass's) and stops it."""

    proc: subprocess.Popen[bytes] | None = None
    clean_exits: tuple[int, ...] = (0,)  # the exit codes of an orderly shutdown

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, *, timeout: float = 60) -> None:
        """Start the process and wait until it is ready."""
        raise NotImplementedError

    def stop(self, *, timeout: float = 20) -> bool:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; True when it shut down in an
        orderly way (an exit code in ``clean_exits``)."""
        if self.proc is None:
            return True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return False
        return self.proc.returncode in self.clean_exits

    def kill(self) -> None:
        """End it at once, if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ServerProcess(ChildProcess):
    """``python -m server serve`` on ``database_url``: ``start()``, ``stop()``, ``kill()``,
    and ``start()`` again at will (on the same port). Output goes to ``log`` (appended to
    across restarts), or to this process's own when there is none. ``workers`` above 1
    runs ``serve --workers N`` (PostgreSQL)."""

    def __init__(
        self,
        database_url: str,
        log: Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        port: int = 0,
        cwd: Path = ROOT,
        workers: int = 1,
    ) -> None:
        self.database_url = database_url
        self.workers = workers
        self.log = log
        self.env = environment(env)
        self.port = port or free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, timeout: float = 60) -> None:
        """Start the process and wait until it is ready; ``RuntimeError`` (with the end of
        its log) when it exits or is not ready within ``timeout`` seconds."""
        command = [sys.executable, "-m", "server", "serve", "--host", HOST]
        command += ["--port", str(self.port), "--database-url", self.database_url]
        if self.workers != 1:
            command += ["--workers", str(self.workers)]
        if self.log is None:
            self.proc = subprocess.Popen(command, cwd=self.cwd, env=self.env)
        else:
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(
                    command, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
                )
        self.starts += 1
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while True:
                try:
                    if client.get(f"{self.base}/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if not self.alive:
                    raise RuntimeError(f"the server exited at start{self._log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server was not ready in {timeout} s{self._log_tail()}")
                time.sleep(0.05)

    def _log_tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return ":\n" + self.log.read_text(errors="replace")[-3000:]

    # uvicorn re-raises the signal once it has shut down in order: -SIGTERM is clean too.
    clean_exits = (0, -signal.SIGTERM)


class AppProcess(ChildProcess):
    """The app in web mode on ``port`` (a free one unless told), its device data in
    ``device_dir``, syncing with the server at ``server_url`` (none when empty):
    ``start()``, ``url``, ``stop()``. Its output goes to ``log``.

    Started as ``make run`` starts it: ``app.main.run_web`` with the host and port as its
    arguments, ``LIAISON_DATA_DIR`` and ``LIAISON_SERVER_URL`` in its environment.
    ``program`` replaces ``-m app.main`` (the Python arguments before ``--host`` and
    ``--port``): ``benchmarks.web`` serves the app through flet_web alone with it.
    """

    def __init__(
        self,
        device_dir: Path,
        log: Path,
        *,
        server_url: str = "",
        port: int = 0,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
        program: Sequence[str] = ("-m", "app.main"),
    ) -> None:
        self.log = log
        self.env = environment(
            {"LIAISON_DATA_DIR": str(device_dir), "LIAISON_SERVER_URL": server_url, **(env or {})}
        )
        for name in ("FLET_SERVER_IP", "FLET_SERVER_PORT"):
            self.env.pop(name, None)  # flet_web alone would prefer them to its arguments
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.cwd = cwd
        self.command = [sys.executable, *program, "--host", HOST, "--port", str(self.port)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 90) -> None:
        """Start the process and wait until its page answers; ``RuntimeError`` (with the end
        of its log) when it exits or does not answer within ``timeout`` seconds."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_http(self.url, self.proc, self.log, timeout=timeout)
        except BaseException:
            self.kill()
            raise
