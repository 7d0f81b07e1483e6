"""What the server's database holds after a drill, read directly (not through the API)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from server import db, records
from server.db import Database
from server.records import Stored
from tests.conftest import TEST_AUDIT_KEY

# What a server logs for a bug (``server.app.unexpected_error``) or an error outside the app.
UNEXPECTED = re.compile(r"unexpected \w+ on |Exception in ASGI application")


@dataclass(frozen=True)
class ServerState:
    """Records, stored push results and counters of one database."""

    stored: dict[str, Stored]  # record id -> the record as kept (deleted content too)
    results: dict[str, list[dict[str, Any]]]  # device id -> every stored push result
    last_ids: dict[str, int]  # device id -> last_mutation_id
    rev_counter: int  # the highest rev handed out

    @property
    def wire(self) -> dict[str, dict[str, Any]]:
        """Every record as a pull sends it (tombstones without their content), by id."""
        return {i: rec.as_record().as_json() for i, rec in self.stored.items()}

    def result_ids(self, device_id: str) -> list[int]:
        """The mutation ids with a stored result for this device, in storage order."""
        return [r["id"] for r in self.results.get(device_id, [])]


def read_state(url: str) -> ServerState:
    """Read the whole state of the database at ``url``."""
    database = Database(url, audit_key=TEST_AUDIT_KEY)
    try:
        with database.read() as conn:
            stored = {
                rec.id: rec
                for rec in (records.from_row(r) for r in conn.execute(select(db.records)))
            }
            results: dict[str, list[dict[str, Any]]] = defaultdict(list)
            rows = conn.execute(
                select(db.push_results.c.device_id, db.push_results.c.results).order_by(
                    db.push_results.c.device_id, db.push_results.c.first_id
                )
            )
            for device_id, text in rows:
                results[device_id].extend(json.loads(text))
            last_ids = {
                device_id: int(last)
                for device_id, last in conn.execute(
                    select(db.devices.c.id, db.devices.c.last_mutation_id)
                )
            }
            rev_counter = records.high_water(conn)
    finally:
        database.dispose()
    return ServerState(stored, dict(results), last_ids, rev_counter)
