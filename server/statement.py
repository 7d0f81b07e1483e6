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

from sqlalchemy import JSON, Connection, Table, Text, bindparam, cast, func, literal_column, select
from sqlalchemy.sql.expression import Executable


class Statement:
    """A Core statement run straight on the transaction's driver connection.

    ``replan`` plans it afresh at each run on PostgreSQL (psycopg otherwise prepares a
    statement run five times on a connection, and the server then keeps one generic
    plan): for a statement that looks up many rows by key, whose generic plan, made
    while the table is small (a new database), is a scan of the whole table, kept as
    the table grows (a push's cost grew with the records stored, to 6 ms at 5,000).
    """

    def __init__(self, statement: Executable, *, replan: bool = False) -> None:
        self.statement = statement
        self.replan = replan
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
            self._execute(cursor, sql, self._args(names, fixed, params or {}))
            return _rows_of(cursor)
        finally:
            cursor.close()

    def _execute(self, cursor: Any, sql: str, args: Any) -> None:
        if self.replan and hasattr(cursor, "pgresult"):  # psycopg: an unnamed statement
            cursor.execute(sql, args, prepare=False)
        else:
            cursor.execute(sql, args)

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

    def __init__(
        self, build: Callable[[list[Any]], Executable], prefix: str = "in", *, replan: bool = False
    ) -> None:
        self._build = build
        self._prefix = prefix
        self._replan = replan
        self._by_length: dict[int, Statement] = {}

    def __call__(self, count: int) -> Statement:
        """The statement for an IN list of ``count`` values."""
        found = self._by_length.get(count)
        if found is None:
            names: list[Any] = [bindparam(f"{self._prefix}{i}") for i in range(count)]
            found = self._by_length[count] = Statement(self._build(names), replan=self._replan)
        return found

    def params(self, values: Sequence[Any]) -> dict[str, Any]:
        """The parameters that fill the IN list with ``values``."""
        return {f"{self._prefix}{i}": value for i, value in enumerate(values)}


def json_rows(table: Table, names: Sequence[str], param: str = "rows") -> Any:
    """The rows of the JSON array of objects in parameter ``param``, typed as ``table``'s
    columns (PostgreSQL's ``json_populate_recordset``), as a FROM item with ``names``.

    Many rows in one statement with one text parameter: its text (and its prepared plan)
    is the same for any number of rows, it runs once, not once a row, and the parameter
    is encoded by the C JSON encoder (an array parameter would be encoded element by
    element in Python).
    """
    as_json = cast(bindparam(param, type_=Text), JSON)
    rows = func.json_populate_recordset(literal_column(f"NULL::{table.name}"), as_json)
    return rows.table_valued(*names).alias("v")


def json_texts(name: str) -> Any:
    """The strings of the JSON array in parameter ``name``, as an array (PostgreSQL), for
    ``column == any_(...)``: one text parameter, encoded by the C JSON encoder, where an
    array parameter is encoded element by element in Python."""
    elements = func.json_array_elements_text(cast(bindparam(name, type_=Text), JSON))
    return func.array(select(elements.table_valued("value").c.value).scalar_subquery())


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
                    statement._execute(cursor, sql, statement._args(names, fixed, params))
                cursors.append(cursor)
            if commit:
                # A statement like the others, answered with them at the one sync of the
                # pipeline's end (``raw.commit()`` would sync once more); the driver
                # then sees the transaction ended, and commits nothing more.
                raw.execute("COMMIT")
        try:
            return [_rows_of(c) for c in cursors]
        finally:
            for cursor in cursors:
                cursor.close()


def _rows_of(cursor: Any) -> list[Any]:
    """The rows a cursor's last statement returned (none for a write without RETURNING).

    psycopg builds the column objects of ``description`` on every access, a tenth of a
    hot statement's cost; its result status says as much.
    """
    if not hasattr(cursor, "pgresult"):  # sqlite3, whose description is a plain attribute
        return list(cursor.fetchall()) if cursor.description else []
    result = cursor.pgresult
    if result is None or result.status != _TUPLES_OK:
        return []
    return list(cursor.fetchall())


_TUPLES_OK = 2  # libpq's PGRES_TUPLES_OK (psycopg.pq.ExecStatus.TUPLES_OK)
