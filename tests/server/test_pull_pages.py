"""A pull page's work is bounded by the page, not by the records left after it: a new
device's pull of a big team stays linear. Measured in SQLite virtual-machine steps (the
same count on every run), never in time.

The first page of a pull audits the whole range it will walk (``server.pull``), once per
pull; the pages after it are what must not grow with the records left.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from sqlalchemy import insert

from server import db as tables
from server import pull
from server.db import Database
from server.scope import Caller

TEAMS = ("team-a", "team-b", "team-c")
CALLER = Caller("u1", "nia", "liaison", ("team-a", "team-b"), "device-1")
LIMIT = 50
CURSOR = 1_000  # a page in the middle of the pull


def _database(template: Path, path: Path, count: int) -> Database:
    """``count`` records spread over three teams (every 25th of no team), revs 1..count."""
    shutil.copy(template, path)
    database = Database(f"sqlite:///{path}")
    rows = [
        {
            "id": str(uuid.uuid4()),
            "type": "task",
            "team_id": None if i % 25 == 0 else TEAMS[i % 3],
            "patient_id": None,
            "fields": '{"title":"Call back"}',
            "clock": "{}",
            "field_revs": "{}",
            "rev": i,
            "deleted": False,
            "created_by": "u1",
            "updated_at": 1.0,
        }
        for i in range(1, count + 1)
    ]
    with database.write() as conn:
        conn.execute(insert(tables.records), rows)
        conn.exec_driver_sql(f"UPDATE counters SET value = {count} WHERE name = 'rev'")
        conn.execute(
            insert(tables.users).values(
                id="u1", username="nia", password_hash="x", role="liaison", created_at=1.0
            )
        )
        # The first page of this pull audited its whole range (0, count].
        conn.execute(
            insert(tables.devices).values(
                id="device-1",
                user_id="u1",
                name="phone",
                token_hash="0" * 64,
                created_at=1.0,
                last_used_at=1.0,
                audited_from=0,
                audited_to=count,
            )
        )
    return database


def _page_steps(database: Database) -> tuple[int, list[int]]:
    """SQLite VM steps (in hundreds) to read the page after CURSOR, and its revs."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0  # go on

    with database.read() as conn:
        driver = conn.connection.dbapi_connection
        driver.set_progress_handler(count, 100)
        try:
            page = pull.read_page(conn, CALLER, CURSOR, LIMIT)
        finally:
            driver.set_progress_handler(None, 0)
    return steps[0], [int(r.split('"rev":')[1].split(",")[0]) for r in page.records]


def test_a_page_costs_the_same_with_four_times_the_records_left(
    tmp_path: Path, sqlite_template: Path
) -> None:
    small = _database(sqlite_template, tmp_path / "small.db", 2_000)
    large = _database(sqlite_template, tmp_path / "large.db", 8_000)
    try:
        small_steps, small_revs = _page_steps(small)
        large_steps, large_revs = _page_steps(large)
    finally:
        small.dispose()
        large.dispose()
    # The same page either way: the caller's teams' and the team-less records, oldest first.
    seen = [i for i in range(CURSOR + 1, CURSOR + 200) if i % 25 == 0 or i % 3 != 2]
    assert small_revs == large_revs == seen[:LIMIT]
    assert small_steps > 0
    # Sorting every record left after the cursor made this about 6x (1,000 left against 7,000).
    assert large_steps <= small_steps * 1.5, (small_steps, large_steps)
