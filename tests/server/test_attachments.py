"""Attachments: hash and type checks, size limit, access only through a visible record."""

from __future__ import annotations

import hashlib

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
    assert (await client.put(url, content=PNG, headers=alice.headers)).status_code == 200
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
        response = await client.put(f"/api/v1/attachments/{digest}", content=data,
                                    headers=alice.headers)
        assert response.status_code == status, (code, response.text)
        assert response.json()["error"]["code"] == code
    big = JPEG + b"\x00" * SETTINGS.attachment_limit
    response = await client.put(f"/api/v1/attachments/{sha(big)}", content=big,
                                headers=alice.headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_streamed_body_is_counted_without_content_length(client, clock, org):
    alice = await enrol(client, clock, "alice")
    chunk = JPEG + b"\x00" * 10_000

    async def chunks():
        for _ in range(SETTINGS.attachment_limit // len(chunk) + 2):
            yield chunk

    response = await client.put(f"/api/v1/attachments/{'0' * 64}", content=chunks(),
                                headers=alice.headers)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_attachments_need_a_token(client):
    response = await client.put(f"/api/v1/attachments/{sha(PNG)}", content=PNG)
    assert response.status_code == 401
