"""Typed drafts: kept encrypted across auto-lock, dropped on save or discard, never a
plaintext byte on disk, and gone with a patient who left the phone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.session import LOCKED
from tests.app.views_support import PIN, FakeClock, FakeServer, enrolled, make_app, run


@dataclass
class Row:
    name: str = ""
    patient_id: str | None = None
    items: list[str] = field(default_factory=list)


@dataclass
class Other:
    text: str = ""


def _files(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())


def test_a_draft_survives_auto_lock_encrypted(tmp_path: Path) -> None:
    clock = FakeClock()
    app = make_app(tmp_path, FakeServer(), clock)
    run(enrolled(app))
    app.drafts.put("round:new:next", Row("Zebedee Quux", None, ["Call son"]))
    clock.advance(10 * 60)
    assert app.session.check_idle() and app.session.phase == LOCKED
    assert app.drafts.get("round:new:next", Row) is None  # nothing held while locked
    assert b"Zebedee" not in _files(tmp_path)  # written, but encrypted
    run(app.session.unlock(PIN))
    assert app.drafts.get("round:new:next", Row) == Row("Zebedee Quux", None, ["Call son"])
    assert app.drafts.get("round:new:next", Other) is None  # another form's type: not it
    assert list(app.drafts.keys()) == ["round:new:next"]


def test_drop_forgets_in_memory_and_on_disk(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    app.drafts.put("a", Other("one"))
    app.drafts.flush()
    app.drafts.drop("a")
    app.session.lock()
    run(app.session.unlock(PIN))
    assert app.drafts.get("a", Other) is None and list(app.drafts.keys()) == []


def test_a_changed_draft_is_written_at_lock(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    row = Row("Ann")
    app.drafts.put("r", row)
    app.drafts.flush()
    row.name = "Ann Other"  # changed in place by a form
    app.drafts.touch("r")
    app.session.lock()
    run(app.session.unlock(PIN))
    assert app.drafts.get("r", Row) == Row("Ann Other")


def test_drafts_naming_a_purged_patient_go_with_them(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    app.drafts.put("referral:new:p-1", Other("for p-1"))
    app.drafts.put("round:r:next", Row("Bo", "p-1"))
    app.drafts.put("keep", Row("Cy", "p-2"))
    app.drafts.flush()
    app.drafts.forget_patients(["p-1"])
    assert list(app.drafts.keys()) == ["keep"]


def test_an_unreadable_draft_is_skipped_not_raised(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    app.store.set_meta("draft:x", {"kind": "Other", "data": {"unknown": 1}})
    assert app.drafts.get("x", Other) == Other()  # unknown fields dropped, defaults used
    app.store.set_meta("draft:y", {"kind": "Row", "data": "garbage"})
    assert app.drafts.get("y", Row) is None


def test_drafts_naming_a_merged_away_patient_move_to_the_survivor(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    app.drafts.put("referral:new:p-1", Other("for p-1"))  # held in memory only
    app.drafts.put("round:r:next", Row("Bo", "p-1", ["p-1", "call"]))
    app.drafts.flush()  # this one saved, then read back from the store
    app.session.lock()
    run(app.session.unlock(PIN))
    app.drafts.put("keep", Row("Cy", "p-2"))
    app.drafts.move_patient("p-1", "p-9")
    assert list(app.drafts.keys()) == ["keep", "referral:new:p-9", "round:r:next"]
    assert app.drafts.get("referral:new:p-9", Other) == Other("for p-1")  # text is not an id
    assert app.drafts.get("round:r:next", Row) == Row("Bo", "p-9", ["p-9", "call"])
    assert app.drafts.get("keep", Row) == Row("Cy", "p-2")
    app.session.lock()  # the move is written, and the old key is gone from the store
    run(app.session.unlock(PIN))
    assert list(app.drafts.keys()) == ["keep", "referral:new:p-9", "round:r:next"]
    assert app.drafts.get("round:r:next", Row) == Row("Bo", "p-9", ["p-9", "call"])


def test_a_survivor_s_own_draft_is_not_overwritten(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    app.drafts.put("referral:new:p-1", Other("the duplicate's"))
    app.drafts.put("referral:new:p-9", Other("the survivor's"))
    app.drafts.move_patient("p-1", "p-9")
    assert list(app.drafts.keys()) == ["referral:new:p-1", "referral:new:p-9"]
    assert app.drafts.get("referral:new:p-9", Other) == Other("the survivor's")
    assert app.drafts.get("referral:new:p-1", Other) == Other("the duplicate's")
