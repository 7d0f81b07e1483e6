"""Attachments: hash and type checks, size limit, access only through a visible record."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from server.attachments import sniff
from tests.server.conftest import SETTINGS
from tests.server.helpers import PATIENT, enrol

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 100


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "data,kind",
    [
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "image/heic"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"GIF89a", None),
        (b"<svg/>", None),
        (b"", None),
    ],
)
def test_sniff(data, kind):
    assert sniff(data) == kind


async def test_upload_then_access_through_a_record(client, clock, org):
    alice = await enrol(client, clock, "alice")
    amy = await enrol(client, clock, "amy")
    bob = await enrol(client, clock, "bob")
    url = f"/api/v1/attachments/{sha(PNG)}"
    response = await client.put(url, content=PNG, headers=alice.headers)
    assert response.status_code == 201
    assert response.json() == {"sha256": sha(PNG), "size": len(PNG)}
    # The same answer again: an upload never tells whether the bytes were there before.
    again = await client.put(url, content=PNG, headers=bob.headers)
    assert (again.status_code, again.json()) == (201, response.json())
    # Not referred to by any record yet: nobody can read it.
    assert (await client.get(url, headers=alice.headers)).status_code == 404
    patient = alice.upsert("patient", {**PATIENT, "attachments": [{"sha256": sha(PNG)}]})
    await alice.push(patient)
    for device in (alice, amy):
        response = await client.get(url, headers=device.headers)
        assert response.status_code == 200
        assert response.content == PNG
        assert response.headers["content-type"] == "image/png"
    response = await client.get(url, headers=bob.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    # Dropping the reference (or deleting the record) closes access again.
    await alice.push(alice.upsert("patient", {"attachments": []}, patient["record_id"]))
    assert (await client.get(url, headers=amy.headers)).status_code == 404


async def test_refused_uploads(client, clock, org):
    alice = await enrol(client, clock, "alice")
    cases = [
        (sha(JPEG), PNG, 422, "hash_mismatch"),
        (sha(b"hello"), b"hello", 422, "unsupported_type"),
        ("NOTAHASH", PNG, 400, "malformed"),
    ]
    for digest, data, status, code in cases:
        response = await client.put(
            f"/api/v1/attachments/{digest}", content=data, headers=alice.headers
        )
        assert response.status_code == status, (code, response.text)
        assert response.json()["error"]["code"] == code
    big = JPEG + b"\x00" * SETTINGS.attachment_limit
    response = await client.put(
        f"/api/v1/attachments/{sha(big)}", content=big, headers=alice.headers
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_streamed_body_is_counted_without_content_length(client, clock, org):
    alice = await enrol(client, clock, "alice")
    chunk = JPEG + b"\x00" * 10_000

    async def chunks():
        for _ in range(SETTINGS.attachment_limit // len(chunk) + 2):
            yield chunk

    response = await client.put(
        f"/api/v1/attachments/{'0' * 64}", content=chunks(), headers=alice.headers
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_attachments_need_a_token(client):
    response = await client.put(f"/api/v1/attachments/{sha(PNG)}", content=PNG)
    assert response.status_code == 401


def _photo(digest: str) -> dict[str, list[dict[str, str]]]:
    return {"attachments": [{"sha256": digest}]}


async def test_knowing_a_hash_grants_nothing(client, clock, org):
    alice, amy, bob = [await enrol(client, clock, name) for name in ("alice", "amy", "bob")]
    url = f"/api/v1/attachments/{sha(PNG)}"
    assert (await client.put(url, content=PNG, headers=alice.headers)).status_code == 201
    patient = alice.upsert("patient", {**PATIENT, **_photo(sha(PNG))})
    await alice.push(patient)
    # Bob (another team) read the hash somewhere; he names it in a record of his own.
    own = bob.upsert("patient", {**PATIENT, **_photo(sha(PNG))})
    result = (await bob.push(own))["results"][0]
    assert (result["status"], result["error"]["code"]) == ("rejected", "missing_attachment")
    assert (await client.get(url, headers=bob.headers)).status_code == 404
    # Amy sees Alice's record, so she may refer to the photo again (she can fetch it anyway).
    task = amy.upsert("task", {"patient_id": patient["record_id"], "title": "t"})
    visit = amy.upsert("visit", {"patient_id": patient["record_id"], **_photo(sha(PNG))})
    results = (await amy.push(task, visit))["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    # Bob proves he holds the bytes by uploading them: then they are his to refer to.
    await client.put(url, content=PNG, headers=bob.headers)
    retry = bob.upsert("patient", {**PATIENT, **_photo(sha(PNG))})
    assert (await bob.push(retry))["results"][0]["status"] == "applied"


async def test_a_moved_patients_photo_stays_with_its_team(client, clock, org, database_url, capsys):
    from server.__main__ import main

    alice, amy = await enrol(client, clock, "alice"), await enrol(client, clock, "amy")
    await client.put(f"/api/v1/attachments/{sha(JPEG)}", content=JPEG, headers=alice.headers)
    patient = alice.upsert("patient", {**PATIENT, **_photo(sha(JPEG))})
    await alice.push(patient)
    assert (
        main(["assign", patient["record_id"], "--team", "B", "--database-url", database_url]) == 0
    )
    capsys.readouterr()
    # Amy (team A) knew the hash from the pulled record; naming it now gets her nothing.
    other = amy.upsert("patient", {**PATIENT, **_photo(sha(JPEG))})
    assert (await amy.push(other))["results"][0]["error"]["code"] == "missing_attachment"
    url = f"/api/v1/attachments/{sha(JPEG)}"
    assert (await client.get(url, headers=amy.headers)).status_code == 404


async def test_daily_upload_allowance(client, clock, database, org):
    from server.app import create_app
    from server.settings import Settings

    tight = Settings.from_environ(
        {
            "LIAISON_ARGON2_MEMORY_KIB": "64",
            "LIAISON_ARGON2_ITERATIONS": "1",
            "LIAISON_ARGON2_LANES": "1",
            "LIAISON_ATTACHMENT_DEVICE_MIB_PER_DAY": "1",
        }
    )
    import httpx

    app = create_app(tight, database, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        alice = await enrol(c, clock, "alice")
        sizes = []
        for n in range(12):  # 100 KB each: the tenth or eleventh passes 1 MiB
            blob = JPEG + bytes([n]) * 100_000
            response = await c.put(
                f"/api/v1/attachments/{sha(blob)}", content=blob, headers=alice.headers
            )
            sizes.append(response.status_code)
        assert sizes[:10] == [201] * 10 and sizes[-1] == 429
        assert int(response.headers["Retry-After"]) > 0
        clock.advance(24 * 3600 + 1)
        blob = JPEG + b"next day"
        response = await c.put(
            f"/api/v1/attachments/{sha(blob)}", content=blob, headers=alice.headers
        )
        assert response.status_code == 201


async def test_unreferenced_blobs_are_collected_after_the_grace_period(
    client, clock, org, database, settings
):
    from server.service import Service

    service = Service(settings, database, clock)
    alice = await enrol(client, clock, "alice")
    kept, junk, dropped = JPEG + b"kept", JPEG + b"junk", JPEG + b"dropped"
    for blob in (kept, junk, dropped):
        await client.put(f"/api/v1/attachments/{sha(blob)}", content=blob, headers=alice.headers)
    patient = alice.upsert("patient", {**PATIENT, **_photo(sha(kept))})
    task = alice.upsert(
        "task", {"patient_id": patient["record_id"], "title": "t", **_photo(sha(dropped))}
    )
    await alice.push(patient, task)
    await alice.push(alice.delete("task", task["record_id"], None))
    assert service.housekeeping() == 0  # within the grace period: nothing goes
    clock.advance(settings.attachment_grace_hours * 3600 + 1)
    assert service.housekeeping() == 2  # the junk, and the deleted task's photo
    assert service.housekeeping() == 0

    def get(blob: bytes) -> Any:
        return client.get(f"/api/v1/attachments/{sha(blob)}", headers=alice.headers)

    assert (await get(kept)).content == kept
    # The junk is gone for good: naming it now is refused until it is uploaded again.
    again = alice.upsert("patient", {**PATIENT, **_photo(sha(junk))})
    assert (await alice.push(again))["results"][0]["error"]["code"] == "missing_attachment"
