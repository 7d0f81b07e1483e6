"""The record repository: records, outbox, search, queries, settings and pulls."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
from tinydb import Query, where

from app import storage as journal
from app.errors import RecordNotFound, StoreClosed
from app.store import Store, fold
from benchmarks import store as bench
from sync.errors import InvalidClock, InvalidRecord, ProtocolError
from tests.sync.test_schema import PID, VALID

KEY = bytes(range(32))
NODE = "device-1"
SERVER = "server"


class Wall:
    """An injectable wall clock in ms."""

    def __init__(self, ms: int = 1_800_000_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def hlc(ms: int, node: str = SERVER) -> str:
    return f"{ms:015d}-00000-{node}"


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def store(tmp_path: Path, wall: Wall):
    s = Store.open(tmp_path / "store", KEY, node_id=NODE, wall=wall)
    yield s
    s.close()


def reopen(store: Store, wall: Wall | None = None) -> Store:
    store.close()
    return Store.open(store.directory, KEY, node_id=NODE, wall=wall)


def patient(store: Store, name: str = "Ada Demo") -> dict:
    return store.put("patient", {"name": name, "status": "active"})


def task(store: Store, patient_id: str, title: str = "Call back") -> dict:
    return store.put("task", {"patient_id": patient_id, "title": title})


# -- records ------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(VALID))
def test_every_type_round_trips(store: Store, type_name: str) -> None:
    fields = json.loads(json.dumps(VALID[type_name]))
    record = store.put(type_name, fields)
    assert set(record) == {"id", "type", "fields", "clock", "rev", "deleted"}
    assert record["fields"] == VALID[type_name] and record["type"] == type_name
    assert record["rev"] is None and record["deleted"] is False
    assert set(record["clock"]) == set(fields)
    fields.clear()  # the caller's dict is not the stored one
    record["fields"]["extra"] = "x"  # nor is the returned one
    store = reopen(store)
    try:
        again = store.get(record["id"])
        assert again is not None and again["fields"] == VALID[type_name]
    finally:
        store.close()


@pytest.mark.parametrize(
    "type_name,fields,record_id,field",
    [
        ("patient", {"name": "x", "birth_date": "1941-02-30"}, None, "birth_date"),
        ("patient", {"name": "x", "shoe_size": None}, None, "shoe_size"),
        ("patient", {}, None, "name"),
        ("task", {"patient_id": PID, "title": None}, None, "title"),
        ("nonsense", {"name": "x"}, None, "type"),
        ("patient", {"name": "x"}, "not-a-uuid", "id"),
        ("visit", {"patient_id": PID, "status": "final"}, None, "setting"),
    ],
)
def test_invalid_fields_raise_naming_the_field_and_write_nothing(
    store: Store, type_name: str, fields: dict, record_id: str | None, field: str
) -> None:
    size = (store.directory / "store.journal").stat().st_size
    with pytest.raises(InvalidRecord) as caught:
        store.put(type_name, fields, record_id)
    assert field in {e.field for e in caught.value.errors}
    assert (store.directory / "store.journal").stat().st_size == size
    assert store.pending_count() == 0 and store.list(include_deleted=True) == []


def test_errors_never_carry_patient_data(store: Store) -> None:
    secret = "Qx7secretName"
    with pytest.raises(InvalidRecord) as caught:
        store.put("patient", {"name": secret * 30, "status": secret})
    assert secret not in str(caught.value) and secret not in repr(caught.value.errors)


def test_an_invalid_update_keeps_the_stored_record(store: Store) -> None:
    p = patient(store)
    with pytest.raises(InvalidRecord):
        store.put("patient", {"name": "y" * 201, "phone": "555"}, p["id"])
    with pytest.raises(InvalidRecord):
        store.put("task", {"title": "x"}, p["id"])  # a record never changes type
    assert store.get(p["id"]) == p and store.pending_count() == 1


def test_a_final_visit_never_changes(store: Store) -> None:
    p = patient(store)
    fields = {**VALID["visit"], "patient_id": p["id"], "status": "final"}
    visit = store.put("visit", fields)
    with pytest.raises(InvalidRecord) as caught:
        store.put("visit", {"summary": "changed"}, visit["id"])
    assert caught.value.errors[0].field == "status"
    assert store.put("visit", {"summary": fields.get("summary")}, visit["id"]) == visit


def test_a_final_visit_cannot_be_deleted(store: Store) -> None:
    p = patient(store)
    visit = store.put("visit", {**VALID["visit"], "patient_id": p["id"], "status": "final"})
    queued = store.pending_count()
    with pytest.raises(InvalidRecord) as caught:
        store.delete(visit["id"])
    assert caught.value.errors[0].field == "status"
    assert store.get(visit["id"]) == visit and store.pending_count() == queued


def test_put_stamps_only_changed_fields(store: Store, wall: Wall) -> None:
    p = store.put("patient", {"name": "Ada", "phone": "555-0100", "status": "active"})
    first = hlc(wall.ms, NODE)
    assert set(p["clock"].values()) == {first}
    wall.ms += 1000
    p2 = store.put("patient", {"name": "Ada", "phone": "555-0199", "language": None}, p["id"])
    assert p2["clock"]["name"] == first and p2["clock"]["status"] == first
    assert p2["clock"]["phone"] == hlc(wall.ms, NODE) and "language" not in p2["fields"]
    mutation = store.outbox()[-1]
    assert mutation == {
        "id": 2,
        "record_id": p["id"],
        "type": "patient",
        "op": "upsert",
        "fields": {"phone": "555-0199"},
        "clock": {"phone": hlc(wall.ms, NODE)},
        "base_rev": None,
    }
    assert store.put("patient", {"name": "Ada"}, p["id"]) == p2  # no change, no mutation
    assert store.pending_count() == 2
    cleared = store.put("patient", {"phone": None}, p["id"])  # clearing is a change
    assert cleared["fields"]["phone"] is None and store.outbox()[-1]["fields"] == {"phone": None}


def test_a_bool_is_not_the_number_one(store: Store) -> None:
    p = patient(store)
    t = store.put("visit", {"patient_id": p["id"], "screening": {"q1": 1}})
    changed = store.put("visit", {"screening": {"q1": 2}}, t["id"])
    assert changed["fields"]["screening"] == {"q1": 2} and store.pending_count() == 3


def test_a_record_id_can_be_chosen_by_the_caller(store: Store) -> None:
    record_id = str(uuid.uuid4())
    p = store.put("patient", {"name": "Ada"}, record_id)
    assert p["id"] == record_id and store.outbox()[0]["record_id"] == record_id


def test_mutation_ids_increase_survive_restart_and_are_never_reused(
    store: Store, wall: Wall
) -> None:
    p = patient(store)
    for n in range(3):
        task(store, p["id"], f"t{n}")
    assert [m["id"] for m in store.outbox()] == [1, 2, 3, 4]
    assert [m["id"] for m in store.outbox(2)] == [1, 2]
    store = reopen(store, wall)
    task(store, p["id"])
    assert [m["id"] for m in store.outbox()] == [1, 2, 3, 4, 5]
    store.acknowledge(2)
    assert [m["id"] for m in store.outbox()] == [3, 4, 5]
    store.acknowledge(0)
    assert store.pending_count() == 3
    store.acknowledge(5)
    assert store.outbox() == [] and store.last_mutation_id == 5
    store = reopen(store, wall)
    task(store, p["id"])
    assert [m["id"] for m in store.outbox()] == [6]
    store.close()


def test_a_wall_clock_set_back_never_makes_new_edits_older(store: Store, wall: Wall) -> None:
    p = patient(store)
    store = reopen(store, Wall(1_000))
    try:
        p2 = store.put("patient", {"name": "Later"}, p["id"])
        assert p2["clock"]["name"] > p["clock"]["name"]
    finally:
        store.close()


def test_delete_leaves_a_tombstone_and_queues_a_delete(store: Store) -> None:
    p = patient(store)
    t = task(store, p["id"])
    store.delete(t["id"])
    assert store.get(t["id"]) is None
    tomb = store.get(t["id"], include_deleted=True)
    assert tomb is not None and tomb["deleted"] is True
    assert tomb["fields"] == {"patient_id": p["id"]}  # the title is gone
    assert store.outbox()[-1] == {
        "id": 3,
        "record_id": t["id"],
        "type": "task",
        "op": "delete",
        "fields": {},
        "clock": {},
        "base_rev": None,
    }
    assert store.list("task") == [] and len(store.list("task", include_deleted=True)) == 1
    store.delete(t["id"])  # again: nothing more
    assert store.pending_count() == 3
    with pytest.raises(RecordNotFound):
        store.put("task", {"title": "back"}, t["id"])
    with pytest.raises(RecordNotFound):
        store.delete(str(uuid.uuid4()))


def test_list_by_type_and_by_patient(store: Store) -> None:
    ada, bo = patient(store, "Ada"), patient(store, "Bo")
    site = store.put("site", {"name": "Clinic"})
    ada_tasks = [task(store, ada["id"], f"a{n}")["id"] for n in range(3)]
    bo_task = task(store, bo["id"])["id"]
    visit = store.put("visit", {"patient_id": ada["id"], "setting": "home"})["id"]
    assert {r["id"] for r in store.list("task")} == {*ada_tasks, bo_task}
    assert {r["id"] for r in store.list("site")} == {site["id"]}
    assert {r["id"] for r in store.list(patient_id=ada["id"])} == {ada["id"], *ada_tasks, visit}
    assert {r["id"] for r in store.list("task", patient_id=ada["id"])} == set(ada_tasks)
    assert [r["id"] for r in store.list("patient", patient_id=bo["id"])] == [bo["id"]]
    assert len(store.list()) == 8
    assert store.list(patient_id=str(uuid.uuid4())) == []


def test_search_patients_ignores_case_and_accents_and_needs_every_word(store: Store) -> None:
    ids = {
        name: patient(store, name)["id"]
        for name in ("Zoë Ångström", "José García", "Marie Curie", "Łukasz Kowalski", "Søren Ode")
    }

    def names(text: str, limit: int = 50) -> list[str]:
        return [r["fields"]["name"] for r in store.search_patients(text, limit)]

    assert names("zoe") == ["Zoë Ångström"]
    assert names("ANGSTROM zo") == ["Zoë Ångström"]
    assert names("garcia JOSÉ") == ["José García"]
    assert names("lukasz") == ["Łukasz Kowalski"] and names("soren") == ["Søren Ode"]
    assert names("ma cu") == ["Marie Curie"] and names("marie x") == []
    assert len(names("")) == 5 and len(names("", limit=2)) == 2
    assert names("o") == sorted(names("o"), key=fold)  # alphabetical, accents ignored
    store.put("patient", {"name": "Zoë Martin"}, ids["Zoë Ångström"])
    assert names("angstrom") == [] and names("zoe mar") == ["Zoë Martin"]
    store.delete(ids["Marie Curie"])
    assert names("curie") == []
    store = reopen(store)
    try:
        assert [r["id"] for r in store.search_patients("kowal")] == [ids["Łukasz Kowalski"]]
    finally:
        store.close()


def test_tinydb_queries_find_records_and_return_copies(store: Store) -> None:
    ada = patient(store, "Ada")
    open_task = store.put("task", {"patient_id": ada["id"], "title": "Call", "done": False})
    store.put("task", {"patient_id": ada["id"], "title": "Fax", "done": True})
    gone = task(store, ada["id"], "Gone")
    store.delete(gone["id"])
    assert {r["fields"]["title"] for r in store.find(where("type") == "task")} == {"Call", "Fax"}
    assert len(store.find(where("type") == "task", include_deleted=True)) == 3
    found = store.find(Query().fields.done == False)  # noqa: E712 - a TinyDB query
    assert [r["id"] for r in found] == [open_task["id"]]
    found[0]["fields"]["title"] = "changed"
    assert store.get(open_task["id"])["fields"]["title"] == "Call"  # type: ignore[index]
    by_patient = store.find((where("type") == "task") & (Query().fields.patient_id == ada["id"]))
    assert len(by_patient) == 2
    table = store.records_table
    raw = table.search(where("id") == ada["id"])
    raw[0]["fields"]["name"] = "changed"
    assert table.search(where("id") == ada["id"])[0]["fields"]["name"] == "Ada"
    assert len(table) == 4 and table.get(doc_id=ada["id"])["type"] == "patient"  # type: ignore[index]
    with pytest.raises(TypeError):
        table.insert({"id": "x"})
    with pytest.raises(TypeError):
        table.update({"deleted": True})


def test_concurrent_puts_get_distinct_consecutive_ids(store: Store) -> None:
    p = patient(store)

    def work() -> None:
        for n in range(20):
            task(store, p["id"], f"t{n}")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [m["id"] for m in store.outbox()] == list(range(1, 82))


# -- settings ----------------------------------------------------------------------


def test_meta_round_trips_and_none_removes(store: Store) -> None:
    store.set_meta("token", "secret-token")
    store.set_meta("user", {"id": 1, "teams": ["a"]})
    store.get_meta("user")["teams"].append("b")
    store = reopen(store)
    try:
        assert store.get_meta("token") == "secret-token"
        assert store.get_meta("user") == {"id": 1, "teams": ["a"]}
        store.set_meta("token", None)
        assert store.get_meta("token", "none") == "none"
        with pytest.raises(ValueError):
            store.set_meta("_device", 1)
    finally:
        store.close()


# -- pulls -------------------------------------------------------------------------


def server_record(record_id: str, type_name: str, fields: dict, ms: int, rev: int) -> dict:
    clock = dict.fromkeys(fields, hlc(ms))
    return {"id": record_id, "type": type_name, "fields": fields, "clock": clock, "rev": rev,
            "deleted": False}  # fmt: skip


def count_commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = journal.JournalStorage.commit

    def counting(self: journal.JournalStorage, changes: journal.Changes) -> None:
        calls.append(len(changes))
        real(self, changes)

    monkeypatch.setattr(journal.JournalStorage, "commit", counting)
    return calls


def test_put_and_delete_are_one_write_each(store: Store, monkeypatch) -> None:
    calls = count_commits(monkeypatch)
    p = patient(store)
    store.delete(p["id"])
    assert len(calls) == 2


def test_apply_pull_merges_per_field_and_keeps_a_newer_local_edit(
    store: Store, wall: Wall, monkeypatch
) -> None:
    p = store.put("patient", {"name": "Ada", "phone": "local phone"})  # at wall.ms
    incoming = server_record(
        p["id"], "patient", {"name": "Ada Server", "phone": "server phone"}, wall.ms, rev=7
    )
    incoming["clock"]["name"] = hlc(wall.ms + 500)  # newer than the local write: wins
    incoming["clock"]["phone"] = hlc(wall.ms - 500)  # older than the pending local edit
    other = server_record(str(uuid.uuid4()), "site", {"name": "Clinic"}, wall.ms, rev=8)
    calls = count_commits(monkeypatch)
    store.apply_pull([incoming, other], [], 8)
    assert len(calls) == 1
    merged = store.get(p["id"])
    assert merged is not None
    assert merged["fields"] == {"name": "Ada Server", "phone": "local phone"}
    assert merged["clock"] == {"name": hlc(wall.ms + 500), "phone": p["clock"]["phone"]}
    assert merged["rev"] == 7 and store.get(other["id"])["rev"] == 8  # type: ignore[index]
    assert store.pending_count() == 1 and store.get_meta("cursor") == 8
    later = store.put("patient", {"phone": "x"}, p["id"])
    assert later["clock"]["phone"] > hlc(wall.ms + 500)  # the clock observed the pull
    assert store.outbox()[-1]["base_rev"] == 7


def test_apply_pull_applies_tombstones_and_purges_in_one_write(
    store: Store, wall: Wall, monkeypatch
) -> None:
    ada, bo = patient(store, "Ada"), patient(store, "Bo")
    ada_task = task(store, ada["id"])
    bo_task = task(store, bo["id"])
    new_for_ada = server_record(
        str(uuid.uuid4()), "task", {"patient_id": ada["id"], "title": "New"}, wall.ms, 3
    )
    tomb = server_record(bo_task["id"], "task", {"patient_id": bo["id"]}, wall.ms + 1, 4)
    tomb["deleted"] = True
    pending = store.pending_count()
    calls = count_commits(monkeypatch)
    store.apply_pull([new_for_ada, tomb], [ada["id"]], 42)
    assert len(calls) == 1
    for gone in (ada["id"], ada_task["id"], new_for_ada["id"]):
        assert store.get(gone, include_deleted=True) is None
    assert store.search_patients("ada") == [] and store.list(patient_id=ada["id"]) == []
    assert store.get(bo_task["id"]) is None
    assert store.get(bo_task["id"], include_deleted=True)["deleted"] is True  # type: ignore[index]
    assert store.get(bo["id"]) is not None
    # Ada's pending changes went with her (the server would refuse them anyway).
    assert store.pending_count() == pending - 2 and store.get_meta("cursor") == 42
    assert {m["record_id"] for m in store.outbox()} == {bo["id"], bo_task["id"]}


def test_a_pending_local_delete_survives_a_pull(store: Store, wall: Wall) -> None:
    p = patient(store)
    store.delete(p["id"])
    incoming = server_record(p["id"], "patient", {"name": "Ada"}, wall.ms + 5, rev=3)
    store.apply_pull([incoming], [], 3)
    assert store.get(p["id"]) is None
    record = store.get(p["id"], include_deleted=True)
    assert record is not None and record["rev"] == 3


def test_a_pulled_tombstone_without_fields_then_a_restart(store: Store, wall: Wall) -> None:
    p = patient(store)
    tomb = {"id": p["id"], "type": "patient", "fields": {}, "clock": {}, "rev": 2, "deleted": True}
    store.apply_pull([tomb], [], 2)
    store = reopen(store, wall)
    try:
        assert store.get(p["id"]) is None and store.get_meta("cursor") == 2
        later = store.put("patient", {"name": "New"})
        assert later["clock"]["name"] > p["clock"]["name"]
    finally:
        store.close()


@pytest.mark.parametrize(
    "bad,error",
    [
        ({"id": "nope", "type": "task", "fields": {}, "clock": {}}, ProtocolError),
        ({"id": PID, "type": "task", "fields": {"title": "x"}, "clock": {}}, ProtocolError),
        ({"id": PID, "type": "task", "fields": {"title": "x"}, "clock": {"title": "x"}},
         InvalidClock),
    ],
)  # fmt: skip
def test_a_malformed_pull_writes_nothing(store: Store, bad: dict, error: type) -> None:
    good = server_record(str(uuid.uuid4()), "site", {"name": "Clinic"}, 1000, rev=1)
    with pytest.raises(error):
        store.apply_pull([good, bad], [], 5)
    assert store.list("site") == [] and store.get_meta("cursor") is None


# -- refused changes and a renumbered outbox (for sync.engine) ----------------------


def test_revert_undoes_a_refused_change_where_nothing_newer_replaced_it(
    store: Store, wall: Wall, monkeypatch
) -> None:
    fields = {"name": "Ada", "phone": "555-0100", "status": "active"}
    known = server_record(str(uuid.uuid4()), "patient", fields, wall.ms - 1000, rev=3)
    store.apply_pull([known], [], 3)
    refused = store.put("patient", {"phone": "555-0111", "language": "pt"}, known["id"])
    wall.ms += 1000
    newer = store.put("patient", {"phone": "555-0199"}, known["id"])
    assert "language" in refused["fields"]
    calls = count_commits(monkeypatch)
    store.revert(store.outbox()[0])
    assert len(calls) == 1
    record = store.get(known["id"])
    assert record is not None and record["rev"] == 3
    # language was only in the refused change: gone; phone was replaced since: kept.
    assert record["fields"] == {"name": "Ada", "phone": "555-0199", "status": "active"}
    assert record["clock"] == {**known["clock"], "phone": newer["clock"]["phone"]}
    assert [m["id"] for m in store.outbox()] == [2]
    store = reopen(store, wall)
    try:
        assert store.get(known["id"]) == record and store.pending_count() == 1
    finally:
        store.close()


def test_revert_drops_a_record_the_server_never_had(store: Store, monkeypatch) -> None:
    p = patient(store, "Ada")
    calls = count_commits(monkeypatch)
    store.revert(store.outbox()[0])
    assert len(calls) == 1
    assert store.get(p["id"], include_deleted=True) is None
    assert store.pending_count() == 0 and store.search_patients("ada") == []
    # Another pending change keeps it, less the refused fields.
    bo = patient(store, "Bo")
    later = store.put("patient", {"phone": "555-0100"}, bo["id"])
    store.revert(store.outbox()[0])
    record = store.get(bo["id"])
    assert record is not None and record["fields"] == {"phone": "555-0100"}
    assert record["clock"] == {"phone": later["clock"]["phone"]}
    assert [m["record_id"] for m in store.outbox()] == [bo["id"]]


def test_revert_of_a_refused_delete_keeps_the_tombstone(store: Store, wall: Wall) -> None:
    known = server_record(str(uuid.uuid4()), "patient", {"name": "Ada"}, wall.ms - 1000, rev=3)
    store.apply_pull([known], [], 3)
    store.delete(known["id"])
    store.revert(store.outbox()[0])
    record = store.get(known["id"], include_deleted=True)
    assert record is not None and record["deleted"] is True and record["rev"] == 3
    assert store.pending_count() == 0


@pytest.mark.parametrize("reopen_first", [False, True])
@pytest.mark.parametrize("first_id", [1, 10])  # a restored server (lower), a new device
def test_renumber_outbox_numbers_pending_mutations_in_order_and_puts_continue(
    store: Store, wall: Wall, monkeypatch, first_id: int, reopen_first: bool
) -> None:
    p = patient(store)
    for n in range(3):
        task(store, p["id"], f"t{n}")
    store.acknowledge(2)
    before = store.outbox()
    assert [m["id"] for m in before] == [3, 4]
    calls = count_commits(monkeypatch)
    store.renumber_outbox(first_id)
    assert len(calls) == 1
    if reopen_first:
        store = reopen(store, wall)
    after = store.outbox()
    assert [m["id"] for m in after] == [first_id, first_id + 1]
    assert [{**m, "id": 0} for m in after] == [{**m, "id": 0} for m in before]
    assert store.last_mutation_id == first_id + 1
    task(store, p["id"], "next")
    store = reopen(store, wall)
    try:
        task(store, p["id"], "after reopen")
        ids = [m["id"] for m in store.outbox()]
        assert ids == [first_id, first_id + 1, first_id + 2, first_id + 3]
        titles = [m["fields"].get("title") for m in store.outbox()]
        assert titles == ["t1", "t2", "next", "after reopen"]
    finally:
        store.close()


# -- lifecycle ---------------------------------------------------------------------


def test_a_closed_store_refuses_use(store: Store) -> None:
    store.close()
    store.close()
    for call in (
        lambda: store.get(PID),
        lambda: store.list(),
        lambda: patient(store),
        lambda: store.outbox(),
        lambda: store.get_meta("token"),
        lambda: store.put_blob(b"x"),
        lambda: store.records_table,
    ):
        with pytest.raises(StoreClosed):
            call()


def test_wipe_deletes_every_file(store: Store) -> None:
    patient(store)
    store.put_blob(b"photo")
    directory = store.directory
    store.wipe()
    assert not directory.exists()
    store.close()  # harmless after a wipe
    again = Store.open(directory, KEY, node_id=NODE)
    try:
        assert again.list() == [] and again.pending_count() == 0
    finally:
        again.close()


def test_the_benchmark_runs_and_prints_its_json_line(tmp_path: Path, capsys) -> None:
    bench.main(["--quick", "--dir", str(tmp_path)])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("records", "save_ms", "tinydb_save_ms", "sqlite_save_ms", "open_ms",
                "tinydb_open_ms", "search_ms", "save_speedup", "open_ratio"):  # fmt: skip
        assert isinstance(result[key], int | float), key
    assert result["records"] == 200 and list(tmp_path.iterdir()) == []


def test_watchers_hear_of_local_saves_not_of_pulls(store: Store, wall: Wall) -> None:
    heard: list[int] = []
    store.watch(lambda: heard.append(store.pending_count()))  # may read the store: no lock held
    p = patient(store)
    store.put("patient", {"name": "Ada Renamed"}, record_id=p["id"])
    incoming = server_record(str(uuid.uuid4()), "site", {"name": "Clinic"}, wall.ms, rev=8)
    store.apply_pull([incoming], [], 8)
    t = task(store, p["id"])
    store.delete(t["id"])
    assert heard == [1, 2, 3, 4]


def test_scan_reads_the_stored_records_without_copying_them(tmp_path) -> None:
    store = Store.open(tmp_path / "s", bytes(32), node_id="device-1")
    p = store.put("patient", {"name": "Ada"})
    t1 = store.put("task", {"patient_id": p["id"], "title": "one"})
    t2 = store.put("task", {"patient_id": p["id"], "title": "two"})
    assert store.scan("task")[0] is store.scan("task")[0]  # the stored record, not a copy
    assert store.list("task")[0] is not store.list("task")[0]
    assert [r["id"] for r in store.scan("task")] == [t1["id"], t2["id"]]
    assert {r["id"] for r in store.scan(patient_id=p["id"])} == {p["id"], t1["id"], t2["id"]}
    store.delete(t1["id"])
    assert [r["id"] for r in store.scan("task")] == [t2["id"]]
    assert [r["id"] for r in store.list("task", include_deleted=True)] == [t1["id"], t2["id"]]
    store.close()
    store = Store.open(tmp_path / "s", bytes(32), node_id="device-1")  # indexes built at open
    assert [r["id"] for r in store.scan("task")] == [t2["id"]]
    assert store.scan("patient")[0]["fields"]["name"] == "Ada" and store.scan("visit") == []
    store.close()
