"""Purges reach every device, also one whose first pull never finished (issue 10).

The real server app in-process (``tests/sync/test_engine_inprocess``'s world); a phone's
pulls are cut by a transport that drops them on request.
"""

from __future__ import annotations

import httpx

from server import records
from sync.engine import SyncEngine, SyncStatus
from tests.app.test_purge import history
from tests.server.conftest import Org
from tests.sync import test_engine_inprocess as inprocess
from tests.sync.test_engine_inprocess import Phone, World, new_patient, scenario

# The in-process world and the server's fixtures (SQLite and PostgreSQL).
sqlite_template = inprocess.sqlite_template
pg_shared = inprocess.pg_shared
database_url = inprocess.database_url
database = inprocess.database
clock = inprocess.clock
settings = inprocess.settings
org = inprocess.org
world = inprocess.world

TEAM_CLOCK = "001800000000000-00000-server"


class CutPulls(httpx.AsyncBaseTransport):
    """Passes requests on; while ``cut`` counts down past zero, pulls fail to connect."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.pass_pulls: int | None = None  # None: every pull goes through

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/pull") and self.pass_pulls is not None:
            if self.pass_pulls <= 0:
                raise httpx.ConnectError("the network went away", request=request)
            self.pass_pulls -= 1
        return await self.inner.handle_async_request(request)


def cut_after(phone: Phone, pulls: int) -> CutPulls:
    cut = CutPulls(phone.transport.inner)
    phone.transport.inner = cut
    cut.pass_pulls = pulls
    return cut


def move(world: World, org: Org, patient_id: str) -> None:
    with world.database.write() as conn:
        records.move_patient(conn, patient_id, org.team_b, TEAM_CLOCK, world.clock())


@scenario
async def test_a_first_pull_cut_after_a_page_still_hears_of_the_purge(
    world: World, org: Org
) -> None:
    alice, amy = await world.phone("alice"), await world.phone("amy")
    pids = [new_patient(alice, f"Patient {n}") for n in range(6)]
    await alice.sync()
    cut = cut_after(amy, 1)
    result = await SyncEngine(amy.store, amy.client, pull_limit=2).sync()
    assert result.status is SyncStatus.OFFLINE and 0 < result.pulled < len(pids)
    held = set(amy.visible())
    assert held and held < set(pids)
    target = sorted(held)[0]
    move(world, org, target)
    cut.pass_pulls = None
    result = await SyncEngine(amy.store, amy.client, pull_limit=2).sync()
    assert result.ok
    assert target not in amy.visible()
    assert set(amy.visible()) == set(pids) - {target}


@scenario
async def test_a_device_that_pushed_before_its_first_pull_hears_of_the_purge(
    world: World, org: Org
) -> None:
    amy = await world.phone("amy")
    cut = cut_after(amy, 0)
    pid = new_patient(amy, "Offline Added")
    result = await amy.sync()  # the push lands, the first pull never does
    assert result.status is SyncStatus.OFFLINE and result.pushed == 1
    move(world, org, pid)
    cut.pass_pulls = None
    result = await amy.sync()
    assert result.ok
    assert pid not in amy.visible()


@scenario
async def test_a_purge_takes_the_patients_refused_and_pending_changes(
    world: World, org: Org
) -> None:
    """The purged patient's edits the server refused (kept for the user) and edits typed
    during the sync (still pending) go with it; the others' survive and sync."""
    amy = await world.phone("amy")
    gone, kept = new_patient(amy, "Zelda Purgewell"), new_patient(amy, "Quentin Keepsake")
    assert (await amy.sync()).ok
    move(world, org, gone)
    amy.store.put("patient", {"name": "Zelda Purgewell-Smith", "phone": "555"}, gone)
    amy.store.put("patient", {"phone": "111"}, kept)

    def typed_during_the_push() -> None:
        amy.transport.before_push = None
        amy.store.put("task", {"patient_id": gone, "title": "Call Zelda Purgewell"})
        amy.store.put("task", {"patient_id": kept, "title": "Call Quentin"})

    amy.transport.before_push = typed_during_the_push
    result = await amy.sync()
    assert result.ok and result.purged == [gone]
    assert result.rejected == []  # refused, then purged: nothing left to fix
    assert amy.store.get_meta("rejected") is None
    assert [m["fields"].get("title") for m in amy.store.outbox()] == ["Call Quentin"]
    assert "Zelda" not in history(amy.store) and gone not in history(amy.store)
    result = await amy.sync()  # the outbox's gap: renumbered for the server, then pushed
    assert result.ok and result.pushed == 1 and result.pending == 0
    titles = [f.get("title") for f in world.server_records(org.team_a).values()]
    assert "Call Quentin" in titles and "Call Zelda Purgewell" not in titles
    assert set(amy.visible()) == set(world.server_records(org.team_a))
