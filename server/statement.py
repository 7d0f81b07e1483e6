"""Hot statements: SQLAlchemy Core compiled once per dialect, run on the driver's cursor.

Every push and pull runs the same dozen small statements. Through ``Connection.execute``
each costs about 60 µs of Python (parameter processing, events, result objects) against
about 5 µs for the driver itself (SQLite, measured): a fifth of a push, at ~15 of them. A
``Statement`` is still written in Core, so the SQL stays dialect-correct, but it is
compiled once per dialect and handed to the driver with plain parameters; rows come back
as the driver's tuples in the statement's column order. Driver errors raised here are
translated with the others in ``Database`` (see ``server.db``).

Use it only for statements whose values need no type conversion on the way in or out
(text, numbers; booleans come back as 0/1 from SQLite).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam
from sqlalchemy.sql.expression import Executable

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")  # psycopg's named placeholder, text or binary


class Statement:
    """A Core statement run straight on the transaction's driver connection.

    ``binary`` sends its parameters in PostgreSQL's binary format (psycopg's ``%b``):
    for arrays, whose text form the driver escapes element by element in Python.
    """

    def __init__(self, statement: Executable, *, binary: bool = False) -> None:
        self.statement = statement
        self.binary = binary
        # dialect name -> (SQL text, positional parameter names or None, fixed values)
        self._compiled: dict[str, tuple[str, list[str] | None, dict[str, Any]]] = {}

    def _prepare(self, conn: Connection) -> tuple[str, list[str] | None, dict[str, Any]]:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            names = list(compiled.positiontup) if compiled.positional else None
            fixed = {k: v for k, v in compiled.params.items() if v is not None}
            sql = compiled.string
            if self.binary and dialect.name == "postgresql":
                sql = _PLACEHOLDER.sub(r"%(\1)b", sql)
            found = self._compiled[dialect.name] = (sql, names, fixed)
        return found

    def _args(
        self, names: list[str] | None, fixed: dict[str, Any], params: Mapping[str, Any]
    ) -> Any:
        values = {**fixed, **params} if fixed else params
        return [values[name] for name in names] if names is not None else values

    def rows(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Run it; every row it returns (none for a write without RETURNING)."""
        sql, names, fixed = self._prepare(conn)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, self._args(names, fixed, params or {}))
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row, or None."""
        found = self.rows(conn, params)
        return found[0] if found else None

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> None:
        """Run it for its effect."""
        self.rows(conn, params)

    def run_many(self, conn: Connection, params: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per parameter set (the driver's executemany)."""
        if not params:
            return
        sql, names, fixed = self._prepare(conn)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, [self._args(names, fixed, p) for p in params])
        finally:
            cursor.close()


class InStatements:
    """Statements that differ only in the length of one IN list, each built once.

    ``build(ids)`` receives the list of bind parameters to put in the IN clause (it must
    handle an empty list itself: SQLAlchemy renders ``IN ()`` only at execution time, which
    these statements skip); run one with ``params(values)`` merged into its others.
    """

    def __init__(self, build: Callable[[list[Any]], Executable], prefix: str = "in") -> None:
        self._build = build
        self._prefix = prefix
        self._by_length: dict[int, Statement] = {}

    def __call__(self, count: int) -> Statement:
        """The statement for an IN list of ``count`` values."""
        found = self._by_length.get(count)
        if found is None:
            names: list[Any] = [bindparam(f"{self._prefix}{i}") for i in range(count)]
            found = self._by_length[count] = Statement(self._build(names))
        return found

    def params(self, values: Sequence[Any]) -> dict[str, Any]:
        """The parameters that fill the IN list with ``values``."""
        return {f"{self._prefix}{i}": value for i, value in enumerate(values)}


class Pipeline:
    """Statements sent together and answered together: one round trip on PostgreSQL
    (psycopg's pipeline mode), one statement after another elsewhere.

    Each statement still runs on its own, in order, so under READ COMMITTED each one sees
    what committed before it started: a read queued after a lock sees every change of the
    transaction that held the lock before. An error stops the rest and is raised by
    ``run``, translated like any other (``server.db``).
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queued: list[tuple[Statement, Any, bool]] = []

    def add(self, statement: Statement, params: Mapping[str, Any] | None = None) -> int:
        """Queue a statement; returns its place in ``run``'s answer."""
        self._queued.append((statement, params or {}, False))
        return len(self._queued) - 1

    def add_many(self, statement: Statement, params: Sequence[Mapping[str, Any]]) -> None:
        """Queue a statement once per parameter set (nothing when there are none)."""
        if params:
            self._queued.append((statement, params, True))

    def run(self, *, commit: bool = False) -> list[list[Any]]:
        """Send everything queued; the rows of each statement, in the order queued.

        ``commit`` ends the transaction in the same round trip on PostgreSQL (the
        ``Database`` transaction then finds nothing left to commit, so nothing may run
        after it); elsewhere the transaction commits when its block ends, as usual.
        """
        queued, self._queued = self._queued, []
        raw = self._conn.connection.dbapi_connection
        pipeline = getattr(raw, "pipeline", None)
        if pipeline is None:  # not psycopg: one statement at a time
            answers: list[list[Any]] = []
            for statement, params, many in queued:
                if many:
                    statement.run_many(self._conn, params)
                answers.append([] if many else statement.rows(self._conn, params))
            return answers
        assert raw is not None
        cursors = []
        with pipeline():
            for statement, params, many in queued:
                sql, names, fixed = statement._prepare(self._conn)
                cursor = raw.cursor()
                if many:
                    cursor.executemany(sql, [statement._args(names, fixed, p) for p in params])
                else:
                    cursor.execute(sql, statement._args(names, fixed, params))
                cursors.append(cursor)
            if commit:
                # A statement like the others, answered with them at the one sync of the
                # pipeline's end (``raw.commit()`` would sync once more); the driver
                # then sees the transaction ended, and commits nothing more.
                raw.execute("COMMIT")
        try:
            return [list(c.fetchall()) if c.description else [] for c in cursors]
        finally:
            for cursor in cursors:
                cursor.close()
