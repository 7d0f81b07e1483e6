"""A purge (a patient left this device's scope) leaves nothing readable about the patient:
not its records, pending changes, refused changes or conflicts kept for the user, drafts,
photos, screen state, nor the journal's history, searched decrypted for the name."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app import compaction, photos, storeformat
from app.attachments import item_of
from app.store import Store
from app.views import assessment
from app.views import round as round_view
from sync import attachments as transfer
from tests.app.photo_support import noise_photo
from tests.app.views_support import (
    FakeNav,
    FakeServer,
    enrolled,
    find,
    make_app,
    patient_record,
    run,
    set_value,
)

KEY = bytes(range(32))
GONE, KEPT = "Zelda Purgewell", "Quentin Keepsake"
STAMP = f"{1_790_000_000_000:015d}-00000-server"


def decrypted_history(path: Path, aead: AESGCM) -> str:
    """Everything the journal file holds (not just the live data), decrypted: the records'
    parts the index lists and every entry after it, read from the documented file format
    of ``app.storage``, independently of its code."""
    buf = path.read_bytes()
    file_id, n = buf[8:24], storeformat.NONCE
    pos, seq, out = int.from_bytes(buf[24:32], "big"), 0, []

    def part(data: bytes, part_id: str) -> None:
        out.append(aead.decrypt(data[:n], data[n:], b"R" + bytes.fromhex(part_id)).decode())

    while pos < len(buf):
        length, _ = storeformat.FRAME.unpack_from(buf, pos)
        payload = buf[pos + storeformat.FRAME.size : pos + storeformat.FRAME.size + length]
        seq += 1
        hlen = int.from_bytes(payload[n : n + 4], "big")
        aad = file_id + seq.to_bytes(8, "big")
        head = aead.decrypt(payload[:n], payload[n + 4 : n + 4 + hlen], b"H" + aad)
        at = n + 4 + hlen
        slen = int.from_bytes(payload[at + n : at + n + 4], "big")
        small = aead.decrypt(
            payload[at : at + n], payload[at + n + 4 : at + n + 4 + slen], b"S" + aad + head
        )
        out += [head.decode(), small.decode()]
        at += n + 4 + slen
        for part_id, _, plen in json.loads(head)["p"]:
            part(payload[at : at + plen], part_id)
            at += plen
        if seq == 1:  # the index: the compacted parts before it
            for part_id, offset, plen, _ in json.loads(small)[-1]["parts"]:
                part(buf[offset : offset + plen], part_id)
        pos += storeformat.FRAME.size + length
    return "\n".join(out)


def history(store: Store) -> str:
    """``decrypted_history`` of an open store (its own key), JSON escapes undone."""
    text = decrypted_history(store.directory / "store.journal", store._live()._aead)
    return json.loads(json.dumps(text))  # ensure_ascii JSON: names are plain ASCII here


def pulled(record_id: str, type_name: str, rev: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "type": type_name,
        "fields": fields,
        "clock": dict.fromkeys(fields, STAMP),
        "rev": rev,
        "deleted": False,
    }


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.mark.parametrize("parts", ["repacked", "copied"])
def test_a_purge_leaves_nothing_readable_about_the_patient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: str
) -> None:
    if parts == "copied":  # compactions copy every part with a live record in it as it is
        monkeypatch.setattr(compaction, "COPY_LIVE", 0.0)
        monkeypatch.setattr(compaction, "MIN_COPY_BYTES", 0)
    store = Store.open(tmp_path / "store", KEY, node_id="device-1")
    gone, kept = new_id(), new_id()
    shots = {name: photos.prepare(noise_photo(seed)) for name, seed in ((GONE, 1), (KEPT, 2))}
    page = []
    for rev, (pid, name) in enumerate(((gone, GONE), (kept, KEPT)), start=1):
        page += [
            pulled(pid, "patient", rev * 10, name=name, status="active"),
            pulled(
                new_id(),
                "visit",
                rev * 10 + 1,
                patient_id=pid,
                status="draft",
                summary=f"{name} lives alone",
                attachments=[item_of(shots[name])],
            ),
            pulled(new_id(), "task", rev * 10 + 2, patient_id=pid, title=f"Call {name}'s son"),
        ]
    store.apply_pull(page, [], 30)
    for shot in shots.values():  # downloaded on first view
        store.put_blob(shot.jpeg)
        store.put_blob(shot.thumbnail)
        transfer.mark_sent(store, shot.sha256)
    # Local work not pushed yet, interleaved between the two patients.
    store.put("patient", {"phone": "555 0100", "address": f"{GONE}'s flat"}, gone)
    kept_task = store.put("task", {"patient_id": kept, "title": f"Visit {KEPT}"})
    draft = store.put(
        "visit", {"patient_id": gone, "status": "draft", "summary": f"Second visit to {GONE}"}
    )
    store.put("patient", {"phone": "555 0199"}, kept)
    # What the last sync kept for the user: refused changes and lost values of both.
    refused_new = {
        "id": 1,
        "record_id": new_id(),
        "type": "task",
        "op": "upsert",
        "fields": {"patient_id": gone, "title": f"Refer {GONE}"},
        "clock": {},
        "base_rev": None,
    }
    refused_edit = {
        "id": 2,
        "record_id": gone,
        "type": "patient",
        "op": "upsert",
        "fields": {"name": f"{GONE} Jr"},
        "clock": {},
        "base_rev": 10,
    }
    refused_kept = {
        "id": 3,
        "record_id": kept,
        "type": "patient",
        "op": "upsert",
        "fields": {"name": f"{KEPT} Sr"},
        "clock": {},
        "base_rev": 20,
    }
    store.set_meta(
        "rejected",
        [
            {"mutation": m, "code": "invalid", "message": "no", "field": None}
            for m in (refused_new, refused_edit, refused_kept)
        ],
    )
    conflict = {
        "type": "visit",
        "field": "summary",
        "lost_clock": STAMP,
        "lost_by": "x",
        "lost_at": "2026-11-23T10:00:00+00:00",
        "incoming_won": True,
        "mutation_id": None,
        "user": None,
    }
    store.set_meta(
        "conflicts",
        [
            {
                **conflict,
                "record_id": page[1]["id"],
                "value": f"{GONE} is fine",
                "lost_value": f"{GONE} fell",
            },
            {**conflict, "record_id": page[4]["id"], "value": f"{KEPT} ok", "lost_value": "x"},
        ],
    )
    store.set_meta("sync_repair", [gone, kept])
    assert GONE in history(store)

    store.apply_pull([], [gone], 40)

    assert store.list(patient_id=gone, include_deleted=True) == []
    assert store.get(draft["id"], include_deleted=True) is None
    assert [m["record_id"] for m in store.outbox()] == [kept_task["id"], kept]
    assert [r["mutation"]["id"] for r in store.get_meta("rejected")] == [3]
    assert [c["record_id"] for c in store.get_meta("conflicts")] == [page[4]["id"]]
    assert store.get_meta("sync_repair") == [kept]
    assert store.get_blob(shots[GONE].sha256) is None
    assert store.get_blob(shots[GONE].thumbnail_sha256) is None
    assert not transfer.is_sent(store, shots[GONE].sha256)
    assert store.get_blob(shots[KEPT].sha256) == shots[KEPT].jpeg
    assert len(list((store.directory / "blobs").iterdir())) == 2
    text = history(store)
    assert GONE not in text and gone not in text  # not even in the journal's history
    assert KEPT in text and store.get_meta("cursor") == 40
    store.close()
    reopened = Store.open(tmp_path / "store", KEY, node_id="device-1")
    assert reopened.search_patients("Zelda") == [] and reopened.pending_count() == 2
    assert len(reopened.search_patients("Quentin")) == 1
    reopened.close()


def test_a_purge_of_a_patient_not_on_this_device_changes_nothing_else(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store", os.urandom(32), node_id="device-1")
    pid = store.put("patient", {"name": KEPT})["id"]
    store.set_meta(
        "rejected",
        [
            {
                "mutation": {"id": 1, "record_id": pid, "type": "patient", "fields": {}},
                "code": "x",
                "message": "y",
                "field": None,
            }
        ],
    )
    size = (store.directory / "store.journal").stat().st_size
    store.apply_pull([], [new_id()], 5)
    assert store.get(pid) and store.pending_count() == 1 and len(store.get_meta("rejected")) == 1
    assert (store.directory / "store.journal").stat().st_size > size  # appended, no rewrite
    store.close()


def test_screen_state_of_a_purged_patient_is_forgotten(tmp_path: Path) -> None:
    """An open form of the patient (with an autosave pending) and the staged photos of an
    addendum go; nothing of the patient is written back afterwards."""
    gone, kept = patient_record(GONE, 1), patient_record(KEPT, 2)
    server = FakeServer([gone, kept])
    app = run(enrolled(make_app(tmp_path, server)))

    async def edit_then_sync() -> Any:
        view = assessment.build(app, FakeNav(), patient_id=gone["id"])
        summary = find(view, "summary")
        summary.value = f"{GONE} has no heating"
        summary.on_change(None)  # the autosave waits a second: still pending
        edit = app.ui[f"visit:new:{gone['id']}"]
        assert edit.debouncer.pending
        other = assessment.build(app, FakeNav(), patient_id=kept["id"])
        find(other, "summary").value = "Fine"
        round_screen = round_view.build(app, FakeNav())
        set_value(round_screen, "next-name", GONE)
        find(round_screen, f"match-{gone['id']}").on_click(None)
        app.ui[f"addendum-photos:{uuid.uuid4()}"] = [b"staged photo of a gone visit"]
        server.records = [r for r in server.records if r["id"] != gone["id"]]
        server.purges = [gone["id"]]
        await app.syncing.sync_now()
        return edit

    edit = run(edit_then_sync())
    assert not edit.debouncer.pending
    edit.debouncer.flush()  # nothing left to write
    assert app.store.list(patient_id=gone["id"], include_deleted=True) == []
    assert all(gone["id"] not in key for key in app.ui)
    assert not any(key.startswith(("addendum-photos:", "round:")) for key in app.ui)
    assert f"visit:new:{kept['id']}" in app.ui  # the other patient's form stays
    assert GONE not in history(app.store)
    app.store.close()
