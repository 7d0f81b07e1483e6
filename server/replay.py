"""What makes a push safe to retry: each device's last mutation id and its push results.

A push stores the results of its fresh mutations (one row for ids first..last) and moves
the device's ``last_mutation_id`` in the same transaction, so a retry of mutations at or
below it is answered as the original was (``stored``) and never applied again. Results
more than ``KEEP_RESULTS`` ids old go: no device retries that far back.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, any_, bindparam, delete, insert, select, update

from server import db
from server.statement import Pipeline, Statement, json_rows, json_texts
from sync import protocol
from sync.protocol import Result

KEEP_RESULTS = 5000  # replayable results per device, counted in mutation ids

_D = db.devices
_LAST_ID = Statement(select(_D.c.last_mutation_id).where(_D.c.id == bindparam("device_id")))
LOCK_LAST_IDS = Statement(
    select(_D.c.id, _D.c.last_mutation_id)
    .where(_D.c.id == any_(json_texts("device_ids")))
    .order_by(_D.c.id)
    .with_for_update(),
    replan=True,
)
"""Locks the rows of the devices in ``{"device_ids": <JSON array>}``, in the order of
their ids, and reads their last mutation ids (PostgreSQL)."""
_SET_LAST_ID = Statement(
    update(_D).where(_D.c.id == bindparam("device_id")).values(last_mutation_id=bindparam("last"))
)
_R = db.push_results
_INSERT_RESULTS = Statement(insert(_R).values({c.name: bindparam(c.name) for c in _R.c}))
# PostgreSQL: the saves of a group of pushes, one statement each (``json_rows``).
_RESULT_ROWS = json_rows(_R, [c.name for c in _R.c])
_INSERT_RESULT_ROWS = Statement(
    insert(_R).from_select([c.name for c in _R.c], select(*_RESULT_ROWS.c))
)
_LAST_ID_ROWS = json_rows(_D, ["id", "last_mutation_id"])
_SET_LAST_IDS = Statement(
    update(_D)
    .where(_D.c.id == _LAST_ID_ROWS.c.id)
    .values(last_mutation_id=_LAST_ID_ROWS.c.last_mutation_id),
    replan=True,
)
_FORGET_RESULTS = Statement(
    delete(_R).where(_R.c.device_id == bindparam("device_id"), _R.c.last_id < bindparam("before"))
)


def last_id(conn: Connection, device_id: str) -> int:
    """The device's last mutation id: every mutation at or below it was applied."""
    return int(_LAST_ID.scalar(conn, {"device_id": device_id}))


def stored(conn: Connection, device_id: str, ids: list[int]) -> dict[int, Result]:
    """Results of earlier pushes, so a retried push answers as the original did."""
    if not ids:
        return {}
    t = db.push_results
    rows = conn.execute(
        select(t.c.results).where(
            t.c.device_id == device_id, t.c.last_id >= min(ids), t.c.first_id <= max(ids)
        )
    ).scalars()
    found: dict[int, Result] = {}
    for text in rows:
        parsed = protocol.parse_push_response({"last_mutation_id": 0, "results": json.loads(text)})
        found.update({r.id: r for r in parsed.results})
    return found


def save(conn: Connection, device_id: str, fresh: list[dict[str, Any]], last: int) -> None:
    """Store a push's fresh results and move the device's last mutation id to ``last``."""
    writes = Pipeline(conn)
    queue(writes, device_id, fresh, last)
    writes.run()


def queue_many(pipeline: Pipeline, saves: list[tuple[str, list[dict[str, Any]], int]]) -> None:
    """``save`` for each (device id, fresh results, last) of a group of pushes, of
    different devices, queued on a pipeline as a few statements (PostgreSQL)."""
    if not saves:
        return
    results = [
        {"device_id": device_id, "first_id": fresh[0]["id"], "last_id": last, "results": fresh}
        for device_id, fresh, last in saves
    ]
    for row in results:  # stored as text, as ``save`` stores it
        row["results"] = db.dumps(row["results"])
    pipeline.add(_INSERT_RESULT_ROWS, {"rows": db.dumps(results)})
    last_ids = [{"id": device_id, "last_mutation_id": last} for device_id, _, last in saves]
    pipeline.add(_SET_LAST_IDS, {"rows": db.dumps(last_ids)})
    for device_id, _, last in saves:
        if last - KEEP_RESULTS > 1:
            pipeline.add(_FORGET_RESULTS, {"device_id": device_id, "before": last - KEEP_RESULTS})


def queue(pipeline: Pipeline, device_id: str, fresh: list[dict[str, Any]], last: int) -> None:
    """``save``, queued on a pipeline."""
    pipeline.add(
        _INSERT_RESULTS,
        {
            "device_id": device_id,
            "first_id": fresh[0]["id"],
            "last_id": last,
            "results": db.dumps(fresh),
        },
    )
    pipeline.add(_SET_LAST_ID, {"device_id": device_id, "last": last})
    if last - KEEP_RESULTS > 1:  # below that no row can be old enough (ids start at 1)
        pipeline.add(_FORGET_RESULTS, {"device_id": device_id, "before": last - KEEP_RESULTS})
