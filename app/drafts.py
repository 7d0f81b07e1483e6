"""Typed drafts: what a form holds that is not saved yet, kept encrypted across auto-lock.

Every form keeps its in-progress input in a dataclass (``RoundRow``, a referral form, ...)
under a key of its own ("round:<id>:next"). ``Drafts`` holds them for the unlocked session
and writes them into the open store's encrypted meta (never into a plain file), so a lock,
an auto-lock, a closed tab or a restarted app brings back exactly what was typed. A draft
is dropped when the form saves or the user discards it; one naming a patient who left this
phone goes with the patient (``forget_patients``).

Writes are cheap but not free (a journal append), so ``put`` only marks the draft dirty;
``flush`` writes every dirty draft (``AppState.lock`` flushes before the store closes, and
the forms flush on blur and when leaving the screen).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Iterator
from typing import Any, Protocol, TypeVar

from sync import schema

log = logging.getLogger(__name__)

PREFIX = "draft:"
T = TypeVar("T")


class MetaStore(Protocol):
    """What drafts need of the store: its encrypted meta table."""

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A meta value, or ``default``."""

    def set_meta(self, key: str, value: Any) -> None:
        """Save (None: remove) a meta value."""

    def meta_keys(self) -> list[str]:
        """Every meta key."""


class Drafts:
    """The session's unsaved form input, by key, each a dataclass instance."""

    def __init__(self) -> None:
        self._store: MetaStore | None = None
        self._cache: dict[str, Any] = {}
        self._dirty: set[str] = set()

    # -- session --------------------------------------------------------------------
    def open(self, store: MetaStore) -> None:
        """Start a session on an unlocked store (drafts are read on first use)."""
        self._store, self._cache, self._dirty = store, {}, set()

    def close(self) -> None:
        """Write what is dirty, then forget every draft held in memory (at lock)."""
        self.flush()
        self._store, self._cache, self._dirty = None, {}, set()

    # -- drafts ---------------------------------------------------------------------
    def get(self, key: str, kind: type[T]) -> T | None:
        """The draft under ``key`` if it is a ``kind`` (a dataclass), else None."""
        if key in self._cache:
            found = self._cache[key]
            return found if isinstance(found, kind) else None
        if self._store is None:
            return None
        saved = self._store.get_meta(PREFIX + key)
        draft = _load(saved, kind)
        if draft is not None:
            self._cache[key] = draft
        return draft

    def put(self, key: str, draft: Any) -> None:
        """Hold ``draft`` (a dataclass instance) under ``key``; written at the next flush."""
        if not dataclasses.is_dataclass(draft) or isinstance(draft, type):
            raise TypeError("a draft is a dataclass instance")
        self._cache[key] = draft
        self._dirty.add(key)

    def touch(self, key: str) -> None:
        """The draft under ``key`` was changed in place: write it at the next flush."""
        if key in self._cache:
            self._dirty.add(key)

    def drop(self, key: str) -> None:
        """Forget the draft (saved or discarded), in memory and in the store."""
        self._cache.pop(key, None)
        self._dirty.discard(key)
        if self._store is not None and self._store.get_meta(PREFIX + key) is not None:
            self._store.set_meta(PREFIX + key, None)

    def flush(self) -> None:
        """Write every changed draft into the encrypted store."""
        store, dirty, self._dirty = self._store, self._dirty, set()
        if store is None:
            return
        for key in sorted(dirty):
            draft = self._cache.get(key)
            if draft is None:
                continue
            store.set_meta(
                PREFIX + key, {"kind": type(draft).__name__, "data": dataclasses.asdict(draft)}
            )

    def keys(self) -> Iterator[str]:
        """Every draft key, in memory or saved."""
        saved = (k[len(PREFIX) :] for k in self._meta_keys())
        yield from sorted(set(self._cache) | set(saved))

    def forget_patients(self, patient_ids: Collection[str]) -> None:
        """Drop every draft whose key or content names one of ``patient_ids``."""
        for key in list(self.keys()):
            saved = self._cache.get(key)
            data = (
                dataclasses.asdict(saved)
                if saved is not None
                else ((self._store.get_meta(PREFIX + key) if self._store else None) or {})
            )
            if any(p in key for p in patient_ids) or _names(data, patient_ids):
                self.drop(key)

    def move_patient(self, old: str, new: str) -> None:
        """A patient merged into another: every draft naming ``old`` (in its key or its
        content) names ``new`` instead. Where ``new``'s own draft already holds the key, that
        draft is kept and the moved one stays where it was, unchanged (nothing typed is lost).
        """
        for key in list(self.keys()):
            moved_key = ":".join(new if part == old else part for part in key.split(":"))
            if moved_key != key and moved_key in set(self.keys()):
                continue
            if key in self._cache:
                self._move_held(key, moved_key, old, new)
            else:
                self._move_saved(key, moved_key, old, new)

    def ids_named(self) -> set[str]:
        """Every string in the drafts' keys and contents that could be a record id."""
        found: set[str] = set()
        for key in self.keys():
            found.update(key.split(":"))
            held = self._cache.get(key)
            data = dataclasses.asdict(held) if held is not None else self._saved(key)
            found.update(_strings(data))
        return {s for s in found if schema.is_uuid(s)}

    def _move_held(self, key: str, moved_key: str, old: str, new: str) -> None:
        draft = self._cache[key]
        changed = {
            f.name: _swap(getattr(draft, f.name), old, new)
            for f in dataclasses.fields(draft)
            if f.init
        }
        moved = dataclasses.replace(draft, **changed)
        if moved_key == key and moved == draft:
            return
        if moved_key != key:
            self.drop(key)
        self.put(moved_key, moved)

    def _move_saved(self, key: str, moved_key: str, old: str, new: str) -> None:
        saved = self._store.get_meta(PREFIX + key) if self._store is not None else None
        if self._store is None or not isinstance(saved, dict):
            return
        moved = {**saved, "data": _swap(saved.get("data"), old, new)}
        if moved_key == key and moved == saved:
            return
        if moved_key != key:
            self._store.set_meta(PREFIX + key, None)
        self._store.set_meta(PREFIX + moved_key, moved)

    def _saved(self, key: str) -> Any:
        return self._store.get_meta(PREFIX + key) if self._store is not None else None

    def _meta_keys(self) -> list[str]:
        if self._store is None:
            return []
        return [k for k in self._store.meta_keys() if k.startswith(PREFIX)]


def _load(saved: Any, kind: type[T]) -> T | None:
    """A draft read back from the store, or None when it is not (or no longer) a ``kind``."""
    if not isinstance(saved, dict) or saved.get("kind") != kind.__name__:
        return None
    data = saved.get("data")
    if not isinstance(data, dict) or not dataclasses.is_dataclass(kind):
        return None
    known = {f.name for f in dataclasses.fields(kind)}
    try:
        return kind(**{k: v for k, v in data.items() if k in known})
    except TypeError:  # a field the form needs is missing: the draft is from an older app
        log.info("drafts: an unreadable %s draft was skipped", kind.__name__)
        return None


def _names(value: Any, patient_ids: Collection[str]) -> bool:
    if isinstance(value, str):
        return value in patient_ids
    if isinstance(value, dict):
        return any(_names(v, patient_ids) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_names(v, patient_ids) for v in value)
    return False


def _swap(value: Any, old: str, new: str) -> Any:
    """``value`` with every string equal to ``old`` replaced by ``new``, at any depth."""
    if isinstance(value, str):
        return new if value == old else value
    if isinstance(value, dict):
        return {k: _swap(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, old, new) for v in value]
    if isinstance(value, tuple):
        return tuple(_swap(v, old, new) for v in value)
    return value


def _strings(value: Any) -> Iterator[str]:
    """Every string in ``value`` (dict values, list and tuple items), at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)
