"""Per-field merge of DESIGN §4, as pure functions shared by the server and the device.

A record's state is its field values and, per field, the HLC of its last write. A field
takes the incoming value when the incoming HLC is newer (HLC strings order as clocks do,
and the node id at their end breaks ties, so every replica picks the same winner).

A conflict is a value that lost while it differed from the winner, when the writer could
not have seen the value it replaced (the stored field changed after the writer's
``base_rev``) or when the incoming value itself lost. Conflicts are reported, never
silently dropped. A device never conflicts with itself: when both writes carry the same node
id (the HLC's last part), the writer had seen the value it replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Conflict:
    """A field whose losing value is kept for review beside the winner."""

    field: str
    winner_value: Any
    winner_clock: str
    loser_value: Any
    loser_clock: str
    incoming_won: bool

    def as_json(self) -> dict[str, Any]:
        """The wire form used in push results."""
        return {
            "field": self.field,
            "value": self.winner_value,
            "clock": self.winner_clock,
            "lost_value": self.loser_value,
            "lost_clock": self.loser_clock,
            "incoming_won": self.incoming_won,
        }


@dataclass
class MergeResult:
    """The merged record, the fields the incoming write changed, and the conflicts."""

    fields: dict[str, Any]
    clock: dict[str, str]
    changed: dict[str, Any] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)


def _never(_field: str) -> bool:
    return False


def merge(
    fields: Mapping[str, Any],
    clock: Mapping[str, str],
    incoming_fields: Mapping[str, Any],
    incoming_clock: Mapping[str, str],
    changed_since_base: Callable[[str], bool] = _never,
) -> MergeResult:
    """Merge an incoming write into a stored record, field by field.

    ``changed_since_base(name)`` says whether the stored field changed after the writer last
    saw the record (the server knows this from revs; a device applying a pull passes the
    default, as the server already resolved what it sends).
    """
    result = MergeResult(dict(fields), dict(clock))
    for name, value in incoming_fields.items():
        new_clock = incoming_clock[name]
        old_clock = clock.get(name)
        if old_clock is not None and new_clock == old_clock:
            continue  # the same write seen again: a replay changes nothing
        old_value = fields.get(name)
        if old_clock is None or new_clock > old_clock:
            result.fields[name] = value
            result.clock[name] = new_clock
            result.changed[name] = value
            if (
                old_clock is not None
                and old_value != value
                and changed_since_base(name)
                and _node(old_clock) != _node(new_clock)
            ):
                result.conflicts.append(
                    Conflict(name, value, new_clock, old_value, old_clock, incoming_won=True)
                )
        elif old_value != value:
            result.conflicts.append(
                Conflict(name, old_value, old_clock, value, new_clock, incoming_won=False)
            )
    return result


def _node(clock: str) -> str:
    # HLC strings are "<ms>-<counter>-<node>"; the node may itself contain dashes.
    return clock.split("-", 2)[-1]


def newest_clock(clock: Mapping[str, str]) -> str | None:
    """The latest HLC among a record's fields."""
    return max(clock.values(), default=None)
