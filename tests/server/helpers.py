"""A scripted device for server tests: enrols, numbers its mutations, pushes and pulls."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from sync import hlc
from tests.server.conftest import PASSWORD, FakeClock

PATIENT = {"name": "Test Patient", "status": "active"}


def new_id() -> str:
    return str(uuid.uuid4())


class Device:
    """One enrolled device with its own HLC, mutation counter and pull cursor."""

    def __init__(self, client: httpx.AsyncClient, enrolled: dict[str, Any], clock: FakeClock):
        self.client = client
        self.id: str = enrolled["device_id"]
        self.token: str = enrolled["token"]
        self.user: dict[str, Any] = enrolled["user"]
        self.hlc = hlc.Clock(self.id, wall=lambda: int(clock() * 1000))
        self.next_id = 1
        self.cursor = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def upsert(
        self,
        type_name: str,
        fields: dict[str, Any],
        record_id: str | None = None,
        base_rev: int | None = None,
        stamp: str | None = None,
    ) -> dict[str, Any]:
        """A new upsert mutation with the next id; fields stamped with one HLC."""
        stamp = stamp or self.hlc.now()
        mutation = {
            "id": self.next_id,
            "record_id": record_id or new_id(),
            "type": type_name,
            "op": "upsert",
            "fields": fields,
            "clock": {name: stamp for name in fields},
            "base_rev": base_rev,
        }
        self.next_id += 1
        return mutation

    def delete(self, type_name: str, record_id: str, base_rev: int | None) -> dict[str, Any]:
        mutation = {
            "id": self.next_id,
            "record_id": record_id,
            "type": type_name,
            "op": "delete",
            "fields": {},
            "clock": {},
            "base_rev": base_rev,
        }
        self.next_id += 1
        return mutation

    async def push_raw(self, *mutations: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            "/api/v1/sync/push", json={"mutations": list(mutations)}, headers=self.headers
        )

    async def push(self, *mutations: dict[str, Any]) -> dict[str, Any]:
        response = await self.push_raw(*mutations)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def pull(self, cursor: int | None = None, limit: int | None = None) -> dict[str, Any]:
        params = {"cursor": self.cursor if cursor is None else cursor}
        if limit is not None:
            params["limit"] = limit
        response = await self.client.get("/api/v1/sync/pull", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def pull_all(
        self, limit: int | None = None
    ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Pull every page from the saved cursor; returns records by id and purged ids."""
        found: dict[str, dict[str, Any]] = {}
        purged: list[str] = []
        while True:
            page = await self.pull(limit=limit)
            for rec in page["records"]:
                found[rec["id"]] = rec
            purged += page["purge"]
            self.cursor = page["cursor"]
            if not page["more"]:
                return found, purged


async def enrol(
    client: httpx.AsyncClient, clock: FakeClock, username: str, name: str = "phone"
) -> Device:
    response = await client.post(
        "/api/v1/devices",
        json={"username": username, "password": PASSWORD, "device_name": name},
    )
    assert response.status_code == 201, response.text
    return Device(client, response.json(), clock)
