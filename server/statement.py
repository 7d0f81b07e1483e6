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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam
from sqlalchemy.sql.expression import Executable


class Statement:
    """A Core statement run straight on the transaction's driver connection."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        # dialect name -> (SQL text, positional parameter names or None, fixed values)
        self._compiled: dict[str, tuple[str, list[str] | None, dict[str, Any]]] = {}

    def _prepare(self, conn: Connection) -> tuple[str, list[str] | None, dict[str, Any]]:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            names = list(compiled.positiontup) if compiled.positional else None
            fixed = {k: v for k, v in compiled.params.items() if v is not None}
            found = self._compiled[dialect.name] = (compiled.string, names, fixed)
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
