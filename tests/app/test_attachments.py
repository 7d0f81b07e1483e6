"""Photos at rest and in the app state: encrypted blobs named by records, deleted with them,
wiped with the store, never on disk in clear; uploaded before the push that names them and
downloaded on first view on another device."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest

from app import photos
from app.attachments import Target, item_of, record_target
from app.errors import PhotoError
from app.store import Store
from sync import attachments as transfer
from sync.errors import InvalidRecord
from tests.app.photo_support import PhotoServer, leaks, noise_photo
from tests.app.views_support import enrolled, make_app, run

PATIENT = "11111111-1111-4111-8111-111111111111"


@pytest.fixture(scope="module")
def shots() -> list[photos.PreparedPhoto]:
    return [photos.prepare(noise_photo(seed)) for seed in (1, 2, 3)]


def open_store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store", os.urandom(32), node_id="device-1")


def attach(store: Store, type_name: str, fields: dict, *shots: photos.PreparedPhoto) -> dict:
    for shot in shots:
        store.put_blob(shot.jpeg)
        store.put_blob(shot.thumbnail)
    return store.put(type_name, {**fields, "attachments": [item_of(s) for s in shots]})


def blob_files(store: Store) -> int:
    directory = store.directory / "blobs"
    return len(list(directory.iterdir())) if directory.exists() else 0


def test_a_deleted_record_takes_its_blobs(tmp_path: Path, shots) -> None:
    store = open_store(tmp_path)
    patient = store.put("patient", {"name": "Ada"})["id"]
    visit = attach(store, "visit", {"patient_id": patient}, shots[0], shots[1])
    store.acknowledge(store.last_mutation_id)  # the server has the mutations
    assert blob_files(store) == 4 and store.get_blob(shots[0].sha256) == shots[0].jpeg
    store.delete(visit["id"])
    assert blob_files(store) == 0
    assert store.get_blob(shots[0].sha256) is None
    assert store.get_blob(shots[0].thumbnail_sha256) is None


def test_a_blob_another_record_names_stays(tmp_path: Path, shots) -> None:
    store = open_store(tmp_path)
    patient = store.put("patient", {"name": "Ada"})["id"]
    first = attach(store, "visit", {"patient_id": patient}, shots[0])
    attach(store, "transition", {"patient_id": patient}, shots[0])
    store.acknowledge(store.last_mutation_id)
    store.delete(first["id"])
    assert store.get_blob(shots[0].sha256) == shots[0].jpeg


def test_a_pending_mutation_keeps_its_blob_until_the_server_has_it(tmp_path: Path, shots) -> None:
    store = open_store(tmp_path)
    patient = store.put("patient", {"name": "Ada"})["id"]
    visit = attach(store, "visit", {"patient_id": patient}, shots[0])
    store.put("visit", {"attachments": []}, visit["id"])  # the photo taken off again
    # The first upsert, not yet pushed, still names it: the push will upload it.
    assert store.get_blob(shots[0].sha256) == shots[0].jpeg
    store.acknowledge(store.last_mutation_id)
    assert store.get_blob(shots[0].sha256) is None and blob_files(store) == 0


def test_reopening_counts_references_again(tmp_path: Path, shots) -> None:
    key = os.urandom(32)
    store = Store.open(tmp_path / "store", key, node_id="device-1")
    patient = store.put("patient", {"name": "Ada"})["id"]
    visit = attach(store, "visit", {"patient_id": patient}, shots[0])
    store.close()
    store = Store.open(tmp_path / "store", key, node_id="device-1")
    assert store.blob_in_use(shots[0].sha256)
    store.acknowledge(store.last_mutation_id)
    store.delete(visit["id"])
    store.acknowledge(store.last_mutation_id)
    assert blob_files(store) == 0


def test_pulled_tombstones_and_purges_take_blobs(tmp_path: Path, shots) -> None:
    store = open_store(tmp_path)
    stamp = f"{1_790_000_000_000:015d}-00000-server"
    records = [
        {
            "id": PATIENT,
            "type": "patient",
            "fields": {"name": "Bo"},
            "clock": {"name": stamp},
            "rev": 1,
            "deleted": False,
        },
        {
            "id": "22222222-2222-4222-8222-222222222222",
            "type": "visit",
            "fields": {"patient_id": PATIENT, "attachments": [item_of(shots[0])]},
            "clock": {"patient_id": stamp, "attachments": stamp},
            "rev": 2,
            "deleted": False,
        },
        {
            "id": "33333333-3333-4333-8333-333333333333",
            "type": "addendum",
            "fields": {
                "patient_id": PATIENT,
                "visit_id": "22222222-2222-4222-8222-222222222222",
                "text": "x",
                "attachments": [item_of(shots[1])],
            },
            "clock": dict.fromkeys(("patient_id", "visit_id", "text", "attachments"), stamp),
            "rev": 3,
            "deleted": False,
        },
    ]
    store.apply_pull(records, [], 3)
    for shot in shots[:2]:  # downloaded on first view
        store.put_blob(shot.jpeg)
        store.put_blob(shot.thumbnail)
        transfer.mark_sent(store, shot.sha256)
    tombstone = {
        **records[1],
        "fields": {"patient_id": PATIENT},
        "clock": {"patient_id": stamp},
        "rev": 4,
        "deleted": True,
    }
    store.apply_pull([tombstone], [], 4)
    assert store.get_blob(shots[0].sha256) is None
    assert not transfer.is_sent(store, shots[0].sha256)  # forgotten with the blob
    assert store.get_blob(shots[1].sha256) == shots[1].jpeg
    store.apply_pull([], [PATIENT], 5)  # the patient left this device's scope
    assert blob_files(store) == 0


def test_wipe_removes_every_blob(tmp_path: Path, shots) -> None:
    store = open_store(tmp_path)
    patient = store.put("patient", {"name": "Ada"})["id"]
    attach(store, "visit", {"patient_id": patient}, *shots)
    assert blob_files(store) == 6
    store.wipe()
    assert not (tmp_path / "store").exists()


def test_photos_are_never_on_disk_in_clear(tmp_path: Path, monkeypatch) -> None:
    """The canary scan: a photo's bytes (as picked, prepared, and its thumbnail) appear in
    no file under the data directory or the temp directory, raw, base64 or hex."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    server = PhotoServer()
    app = run(enrolled(make_app(tmp_path, server)))
    original = noise_photo(7)
    patient, _ = app.add_patient("Ada Example")
    assert patient

    async def attach_and_sync() -> photos.PreparedPhoto:
        shot = await app.attachments.prepare(original)
        app.attachments.add(record_target(app.store, "patient", patient), [shot])
        await app.syncing.sync_now()
        return shot

    shot = run(attach_and_sync())
    assert server.blobs[shot.sha256] == shot.jpeg and not server.dangling
    assert app.store.get_blob(shot.sha256) == shot.jpeg
    app.session.lock()
    for data in (original, shot.jpeg, shot.thumbnail):
        assert leaks(tmp_path, data) == []
    # Self-check of the scan: the same bytes written in clear are found.
    (temp / "oops").write_bytes(b"x" + shot.jpeg.hex().encode())
    assert leaks(tmp_path, shot.jpeg) == ["tmp/oops"]


def test_a_failed_save_leaves_no_blob_behind(tmp_path: Path, shots) -> None:
    store = open_store(tmp_path)

    class Refuses:
        def write(self, items: list) -> None:
            raise InvalidRecord([])

    app = type("App", (), {"store": store, "require_store": lambda self: store})()
    from app.attachments import Attachments

    with pytest.raises(InvalidRecord):
        Attachments(app).add(Target(list, Refuses().write), [shots[0]])
    assert blob_files(store) == 0


def test_a_bad_file_is_a_photo_error(tmp_path: Path) -> None:
    app = run(enrolled(make_app(tmp_path, PhotoServer())))
    with pytest.raises(PhotoError) as caught:
        run(app.attachments.prepare(b"%PDF-1.4 not a photo"))
    assert caught.value.reason == "unsupported"


def test_upload_before_push_and_lazy_download_on_a_second_device(tmp_path: Path, shots) -> None:
    server = PhotoServer()
    phone = run(enrolled(make_app(tmp_path / "one", server)))
    patient, _ = phone.add_patient("Ada Example")
    visit = phone.store.put("visit", {"patient_id": patient, "setting": "home"})
    phone.attachments.add(record_target(phone.store, "visit", visit["id"]), shots)
    run(phone.syncing.sync_now())
    assert not server.dangling
    assert len(server.puts) == 6 and set(server.puts) == set(server.blobs)
    run(phone.syncing.sync_now())  # nothing new to send: no second upload
    phone.store.put(
        "visit",
        {"attachments": [{**item_of(shots[0]), "caption": "Stairs"}, item_of(shots[1])]},
        visit["id"],
    )
    run(phone.syncing.sync_now())  # a caption changed: the bytes are already there
    assert len(server.puts) == 6

    server.device_id = "44444444-4444-4444-8444-444444444444"
    other = run(enrolled(make_app(tmp_path / "two", server)))
    pulled = other.store.get(visit["id"])
    assert [a["caption"] for a in pulled["fields"]["attachments"]] == ["Stairs", ""]
    sha = shots[0].sha256

    async def first_view() -> tuple[bytes | None, bytes | None]:
        thumb = other.attachments.thumbnail(shots[0].thumbnail_sha256)  # starts a download
        assert thumb is None and other.attachments.downloading(shots[0].thumbnail_sha256)
        full = await other.attachments.load(sha)
        await asyncio.sleep(0)
        while other.attachments.downloading(shots[0].thumbnail_sha256):
            await asyncio.sleep(0.01)
        return other.attachments.local(shots[0].thumbnail_sha256), full

    heard: list[str] = []
    other.subscribe(heard.append)
    thumb, full = run(first_view())
    assert full == shots[0].jpeg and thumb == shots[0].thumbnail
    assert "photo" in heard
    assert other.store.get_blob(sha) == shots[0].jpeg  # kept, encrypted
    assert server.gets.count(sha) == 1
    assert run(other.attachments.load(sha)) == shots[0].jpeg and server.gets.count(sha) == 1


def test_an_unavailable_photo_is_retried_later(tmp_path: Path, shots) -> None:
    server = PhotoServer()
    app = run(enrolled(make_app(tmp_path, server)))
    patient, _ = app.add_patient("Ada Example")
    sha = shots[2].sha256
    assert run(app.attachments.load(sha)) is None  # no record names it: never asked for
    assert server.gets == []
    # A record from another device whose author has not uploaded the photo yet.
    app.store.put("patient", {"attachments": [item_of(shots[2])]}, patient)
    assert run(app.attachments.load(sha)) is None  # 404 for now
    app.attachments.request(sha)
    assert not app.attachments.downloading(sha)  # after a failure, wait a minute
    server.blobs[sha] = shots[2].jpeg
    app.now.advance(61)
    app.attachments.request(sha)
    assert run(app.attachments.load(sha)) == shots[2].jpeg
    assert server.gets == [sha, sha]
