"""Database: SQLAlchemy Core tables and transactions on SQLite (default) or PostgreSQL.

``Database.write()`` is a transaction that may write: on SQLite it starts with
``BEGIN IMMEDIATE`` so writers queue on the busy timeout instead of failing on a lock
upgrade; on PostgreSQL writers serialize where it matters on single-row locks (the rev
counter, the audit head). Driver errors are translated to server errors here and only here.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from server.errors import ServerError, from_database_error

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

counters = Table(
    "counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

teams = Table(
    "teams",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("disabled_at", Float),  # a disabled user cannot sign in; their devices are revoked
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id"), primary_key=True),
    Column("team_id", String(36), ForeignKey("teams.id"), primary_key=True),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_mutation_id", BigInteger, nullable=False, default=0),
    # The rev range (from, to] whose pull this device was last audited for (server.pull).
    Column("audited_from", BigInteger),
    Column("audited_to", BigInteger),
)

throttle = Table(
    "throttle",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("targets", Text, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(64)),  # which audit key the chain is written with (server.audit)
)

records = Table(
    "records",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(20), nullable=False),
    Column("team_id", String(36)),  # NULL for org records; the patient's team otherwise
    Column("patient_id", String(36), index=True),
    Column("fields", Text, nullable=False),
    Column("clock", Text, nullable=False),
    Column("field_revs", Text, nullable=False),
    Column("rev", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_by", String(36), nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_records_rev", "rev", unique=True),
    Index("ix_records_team_rev", "team_id", "rev"),
)

conflicts = Table(
    "conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", String(36), nullable=False, index=True),
    Column("field", String(64), nullable=False),
    Column("rev", BigInteger, nullable=False),
    Column("winner_value", Text, nullable=False),
    Column("winner_clock", String(100), nullable=False),
    Column("loser_value", Text, nullable=False),
    Column("loser_clock", String(100), nullable=False),
    Column("incoming_won", Boolean, nullable=False),
    Column("device_id", String(36), nullable=False),
    Column("created_at", Float, nullable=False),
)

scope_changes = Table(
    "scope_changes",
    metadata,
    Column("rev", BigInteger, primary_key=True, autoincrement=False),
    Column("patient_id", String(36), nullable=False),
    Column("from_team_id", String(36)),
    Column("to_team_id", String(36)),
    Column("created_at", Float, nullable=False),
)

push_results = Table(
    "push_results",
    metadata,
    Column("device_id", String(36), primary_key=True),
    Column("last_id", BigInteger, primary_key=True, autoincrement=False),
    Column("first_id", BigInteger, nullable=False),
    Column("results", Text, nullable=False),
)

attachments = Table(
    "attachments",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("content_type", String(40), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_by", String(36), nullable=False),
    Column("created_at", Float, nullable=False),
)

membership_changes = Table(
    "membership_changes",
    metadata,
    # A rev from the records' counter: pulls see a user leaving a team in rev order.
    Column("rev", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", String(36), nullable=False, index=True),
    Column("team_id", String(36), nullable=False),
    Column("created_at", Float, nullable=False),
)

attachment_uploads = Table(
    "attachment_uploads",
    metadata,
    # Who proved they hold the bytes by uploading them: only they may refer to them first.
    Column("sha256", String(64), primary_key=True),
    Column("user_id", String(36), primary_key=True),
    Column("created_at", Float, nullable=False),
)

attachment_refs = Table(
    "attachment_refs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("record_id", String(36), primary_key=True, index=True),
)


def _canonical_dumps() -> Callable[[Any], str]:
    """``json.dumps`` with sorted keys, no spaces, no NaN, kept as one C encoder.

    ``JSONEncoder.encode`` builds a new C encoder (and a dict for cycle checks) per call,
    about half the cost of encoding a record's small dicts, and every push stores three
    per record. Values here come from parsed JSON, so they hold no cycles to check for.
    Falls back to the plain encoder where CPython's C accelerator is not there.
    """
    base = json.JSONEncoder(
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    plain = base.encode
    make = getattr(json.encoder, "c_make_encoder", None)
    try:
        # The arguments JSONEncoder.iterencode passes, without the cycle-check dict.
        encoder = make(  # type: ignore[misc]
            None,
            base.default,
            json.encoder.encode_basestring,
            None,
            ":",
            ",",
            True,
            False,
            False,
        )
    except TypeError:  # not there, or another signature
        return plain

    def dumps(value: Any) -> str:
        return "".join(encoder(value, 0))

    sample = {"b": [1, "é\u2028", None, True, {"d": 2, "c": "x"}], "a": -1.5}
    return dumps if dumps(sample) == plain(sample) else plain


dumps = _canonical_dumps()
"""Canonical JSON text (sorted keys, no spaces) as stored in text columns; strict JSON
(no NaN or Infinity), so a pull can send stored text as it is."""


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs; make SQLite's file private before SQLite makes it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _private_file(Path(parsed.database))
    return url


def _private_file(path: Path) -> None:
    """Create the database file (and its directory) readable by its owner only.

    SQLite creates a missing file with the process umask (usually 0644: every local user
    could read the patient data) and gives its -wal and -shm files the mode of the main
    file; an existing file is left as it is.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


PING_AFTER_IDLE_SECONDS = 2.0
"""A pooled PostgreSQL connection idle longer than this is pinged before use."""


class Database:
    """An engine plus short read and write transactions; the one place DB errors map."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        synchronous: int = 2,
        audit_key: bytes | None = None,
        timeout: float = 10.0,
        ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    ) -> None:
        """``synchronous`` is SQLite's (1 NORMAL, 2 FULL); see ``_sqlite_events``.
        ``audit_key`` keys the audit chain (``server.audit``); without it nothing that
        writes an audit row can run. ``timeout`` (seconds) bounds waiting for a connection,
        for a lock and, on PostgreSQL, for a statement: a database that stops answering
        gives errors (503) instead of requests that hang. ``pool_size`` PostgreSQL
        connections are kept open (a few more are opened when busy): as many as the
        server's worker threads (``server.app.worker_threads``) and a writer, so that
        none is closed and opened again, losing its prepared statements, at each
        burst. A PostgreSQL connection idle in the pool for ``ping_after_idle`` seconds is
        pinged before use (``_ping_when_idle``)."""
        self.url = normalize_url(url)
        self.audit_key = audit_key
        self.is_sqlite = make_url(self.url).get_backend_name() == "sqlite"
        # SQLite has one writer at a time: queue this process's writers on a lock rather
        # than have them poll the file lock (the busy timeout still covers other processes).
        self._write_lock = threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        self.engine: Engine
        if self.is_sqlite:
            self.engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": timeout}
            )
            _sqlite_events(self.engine, synchronous, timeout)
        else:
            self.engine = create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=5,
                pool_timeout=timeout,
                connect_args=_postgres_timeouts(timeout),
            )
            _ping_when_idle(self.engine, ping_after_idle)
        # server.statement runs hot statements on the driver: its errors arrive unwrapped.
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        self._disposed = False
        event.listen(self.engine, "checkin", self._close_if_disposed)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write; commits on success, rolls back on any error."""
        with self._write_lock, self._transaction(write=True) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self._transaction(write=False) as conn:
            yield conn

    @contextmanager
    def lookup(self) -> Iterator[Connection]:
        """Reads that need no transaction around them: on PostgreSQL each statement runs on
        its own (autocommit), saving the BEGIN and COMMIT round trips; elsewhere ``read``.

        Under READ COMMITTED each statement reads its own snapshot in a transaction too,
        so the reads see the same; but nothing that needs a transaction (a server-side
        cursor, ``yield_per``) may run here.
        """
        with self._transaction(write=False, autocommit=not self.is_sqlite) as conn:
            yield conn

    @contextmanager
    def _transaction(self, *, write: bool, autocommit: bool = False) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(liaison_write=write, liaison_audit_key=self.audit_key)
                if autocommit:
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                with conn.begin():
                    yield conn
        except ServerError:
            raise
        except (sa_exc.DBAPIError, sa_exc.TimeoutError) as exc:  # TimeoutError: pool exhausted
            raise from_database_error(exc) from exc
        except self._driver_error as exc:
            wrapped = sa_exc.DBAPIError.instance(
                None, None, exc, self._driver_error, dialect=self.engine.dialect
            )
            if not isinstance(wrapped, sa_exc.DBAPIError):
                raise ServerError("database error") from exc
            raise from_database_error(wrapped) from exc

    def dispose(self) -> None:
        """Close every pooled connection, and each one still in use as soon as it is returned.

        A request that answered 503 at its deadline leaves its worker thread running
        (``server.api.in_thread``); SQLAlchemy's dispose closes only the idle connections,
        and the one that thread returns later would stay open until garbage collection.
        """
        self._disposed = True
        self.engine.dispose()

    def _close_if_disposed(self, _dbapi_conn: Any, entry: ConnectionPoolEntry) -> None:
        if self._disposed:
            entry.close()


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a connection on checkout only when it sat idle in the pool for a while.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip per transaction,
    two per push. A connection used a moment ago is as good as a ping says; one that
    dies in between fails its request (503, retried by the phone) and, being
    disconnected, is dropped from the pool with the others of its age.
    """

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # just connected, or just used
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool replaces the connection and tries again.
            raise sa_exc.DisconnectionError(str(exc)) from exc


def _postgres_timeouts(timeout: float) -> dict[str, Any]:
    """libpq settings so that no call waits for ever on a server that stopped answering.

    The server-side timeouts end slow statements and lock waits; a server that does not
    answer at all (paused, or the network gone) is caught by the connect timeout, TCP
    keepalives and ``tcp_user_timeout``, and otherwise by the request deadline of the
    HTTP layer (``server.api.in_thread``).
    """
    ms = int(timeout * 1000)
    return {
        "connect_timeout": max(2, int(timeout)),
        "options": f"-c statement_timeout={ms} -c lock_timeout={ms} "
        f"-c idle_in_transaction_session_timeout={ms * 6}",
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": ms,
    }


def _sqlite_events(engine: Engine, synchronous: int, timeout: float = 10.0) -> None:
    # WAL with synchronous=FULL (2, the default) syncs the WAL at every commit, so an
    # acknowledged push survives a power cut: the phone drops it from its outbox on that
    # acknowledgement. FULL costs one fsync per write transaction (0.4 to 1.4 ms here,
    # about 7% of push throughput in benchmarks.server). NORMAL (1) survives a crash of
    # the server process but may lose the last commits in a power cut or OS crash.
    if synchronous not in (1, 2, 3):
        raise ValueError(f"synchronous must be 1, 2 or 3, not {synchronous!r}")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("liaison_write", True)
        # On the driver: a statement through SQLAlchemy costs ten times as much.
        conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if write else "BEGIN"
        )
