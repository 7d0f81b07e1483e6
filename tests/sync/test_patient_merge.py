"""Merging two patients across phones: a real ``python -m server serve``, two phones with
real encrypted stores. A phone offline during the merge keeps every edit it made to the
duplicate: its new visit lands on the survivor, on the server and on both phones. Also the
shared rules (``sync.merged``) and the store's handling of a pulled merge tombstone.
(``tests/sync/test_merge.py`` is the per-field merge rule's.)"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.store import Store
from sync import merged
from sync.client import RetryPolicy, SyncClient
from sync.engine import SyncEngine
from tests.sync.live_server import PASSWORD, ServerProcess


class Phone:
    """A real store and sync client talking straight to the server."""

    def __init__(self, server: ServerProcess, tmp: Path) -> None:
        self.tmp = tmp
        self.store: Store | None = None
        self.client = SyncClient(
            server.base,
            token=lambda: self.store.get_meta("token") if self.store else None,
            retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02),
            timeout=httpx.Timeout(10.0),
        )

    async def enrol(self, username: str) -> Store:
        enrolled = await self.client.enrol(username, PASSWORD, "test phone")
        self.store = Store.open(
            self.tmp / uuid.uuid4().hex, os.urandom(32), node_id=enrolled["device_id"]
        )
        self.store.set_meta("token", enrolled["token"])
        return self.store

    async def sync(self) -> None:
        assert self.store is not None
        result = await SyncEngine(self.store, self.client, pull_limit=3).sync()
        assert result.ok and result.pending == 0 and not result.rejected, result


def _patient_ids(store: Store) -> dict[str, str]:
    return {r["id"]: r["fields"]["patient_id"] for r in store.list() if r["type"] != "patient"}


async def _offline_edit_lands_on_survivor(server: ServerProcess, tmp: Path) -> None:
    alice_phone, amy_phone = Phone(server, tmp), Phone(server, tmp)
    alice, amy = await alice_phone.enrol("alice"), await amy_phone.enrol("amy")
    survivor = alice.put("patient", {"name": "Ana Silva"})["id"]
    duplicate = alice.put("patient", {"name": "Anna Silva", "phone": "555-0101"})["id"]
    task = alice.put("task", {"patient_id": duplicate, "title": "Call the son"})["id"]
    await alice_phone.sync()
    await amy_phone.sync()
    # Amy goes offline and records a visit and a task on the duplicate.
    visit = amy.put("visit", {"patient_id": duplicate, "setting": "home"})["id"]
    own_task = amy.put("task", {"patient_id": duplicate, "title": "Bring forms"})["id"]
    # Meanwhile Alice merges the duplicate into the survivor.
    answer = await alice_phone.client.merge_patient(duplicate, survivor)
    assert answer["moved"] == 1 and answer["kept_from_duplicate"] == ["phone"]
    await alice_phone.sync()

    await amy_phone.sync()  # back online: push, then pull
    await alice_phone.sync()

    for store in (alice, amy):
        assert store.get(duplicate) is None
        assert merged.merged_into(store.get(duplicate, include_deleted=True)) == survivor
        assert _patient_ids(store) == dict.fromkeys([task, visit, own_task], survivor)
        assert {r["id"] for r in store.list(patient_id=survivor)} == {
            survivor,
            task,
            visit,
            own_task,
        }
        assert store.get(survivor)["fields"]["phone"] == "555-0101"  # type: ignore[index]
    for phone in (alice_phone, amy_phone):
        await phone.client.aclose()


def test_an_offline_phone_s_visit_lands_on_the_survivor(
    server: ServerProcess, tmp_path: Path
) -> None:
    asyncio.run(_offline_edit_lands_on_survivor(server, tmp_path))


# -- the store, when a pull brings a merge tombstone while edits are still pending ------


def _server_record(record_id: str, type_name: str, fields: dict[str, Any], rev: int) -> Any:
    stamp = f"{1_700_000_000_000 + rev:015d}-00000-server"
    deleted = merged.MERGED_INTO in fields
    return {
        "id": record_id,
        "type": type_name,
        "fields": fields,
        "clock": dict.fromkeys(fields, stamp),
        "rev": rev,
        "deleted": deleted,
    }


def test_pending_local_records_follow_the_merge(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s", os.urandom(32), node_id="phone-1")
    survivor, duplicate = str(uuid.uuid4()), str(uuid.uuid4())
    store.apply_pull(
        [
            _server_record(survivor, "patient", {"name": "Ana"}, 1),
            _server_record(duplicate, "patient", {"name": "Anna"}, 2),
        ],
        [],
        2,
    )
    visit = store.put("visit", {"patient_id": duplicate, "summary": "Seen at home"})
    pending = store.outbox()

    store.apply_pull([_server_record(duplicate, "patient", {"merged_into": survivor}, 3)], [], 3)

    moved = store.get(visit["id"])
    assert moved is not None
    assert moved["fields"] == {"patient_id": survivor, "summary": "Seen at home"}
    assert moved["clock"] == visit["clock"]  # no new write: the server moves it the same way
    assert store.outbox() == pending  # the edit still goes to the server
    assert [r["id"] for r in store.list(patient_id=survivor)] == [survivor, visit["id"]]
    assert store.list(patient_id=duplicate) == []


# -- the rules -----------------------------------------------------------------------------

CAREGIVER = {"name": "Rui", "relation": "son"}
PHOTO = {"sha256": "a" * 64, "caption": "consent"}


@pytest.mark.parametrize(
    "survivor,duplicate,taken,differing",
    [
        ({"name": "A"}, {"name": "B"}, {}, ["name"]),
        ({"name": "A"}, {"name": "A", "phone": "1"}, {"phone": "1"}, []),
        ({"name": "A", "phone": ""}, {"name": "A", "phone": "1"}, {"phone": "1"}, []),
        ({"name": "A", "phone": "2"}, {"name": "A", "phone": "1"}, {}, ["phone"]),
        ({"name": "A", "team_id": "t"}, {"name": "A", "team_id": "u"}, {}, []),
        ({"name": "A"}, {"name": "A", "risk_flags": ["falls"]}, {"risk_flags": ["falls"]}, []),
        (
            {"name": "A", "risk_flags": ["falls", "lives alone"]},
            {"name": "A", "risk_flags": ["lives alone", "oxygen"]},
            {"risk_flags": ["falls", "lives alone", "oxygen"]},
            [],
        ),
        (
            {"name": "A", "caregivers": [CAREGIVER]},
            {"name": "A", "caregivers": [dict(CAREGIVER)]},
            {},
            [],
        ),
        (
            {"name": "A", "attachments": [PHOTO]},
            {"name": "A", "attachments": [{**PHOTO, "caption": "other words"}]},
            {},
            [],
        ),
        (
            {"name": "A", "risk_flags": [str(i) for i in range(20)]},
            {"name": "A", "risk_flags": ["one more"]},
            {},
            [],
        ),
    ],
)
def test_what_the_survivor_keeps(
    survivor: dict[str, Any], duplicate: dict[str, Any], taken: dict[str, Any], differing: list[str]
) -> None:
    assert merged.taken_from_duplicate(survivor, duplicate) == taken
    assert merged.differing(survivor, duplicate) == differing


def test_following_merges() -> None:
    links = {"a": "b", "b": "c", "x": "y", "y": "x"}
    assert merged.survivor("a", links.get) == "c"
    assert merged.survivor("c", links.get) == "c"
    assert merged.survivor("x", links.get) == "y"  # a loop ends, never spins
    tomb = {"type": "patient", "deleted": True, "fields": {"merged_into": str(uuid.uuid4())}}
    assert merged.merged_into(tomb) == tomb["fields"]["merged_into"]
    assert merged.merged_into({**tomb, "deleted": False}) is None
    assert merged.merged_into({**tomb, "type": "visit"}) is None
    assert merged.merged_into(None) is None
