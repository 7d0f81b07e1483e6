"""Wire shapes of sync v1 (DESIGN §4) and their validation, shared by server and device.

Validators are plain functions returning field-named errors (an empty list means the
shape is right); ``parse_*`` functions turn checked JSON into small typed values. Field
*contents* are checked separately against ``sync.schema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync import hlc, schema
from sync.errors import FieldError, ProtocolError

OPS = ("upsert", "delete")
STATUSES = ("applied", "merged", "rejected")
MAX_COUNTER = 2**62  # mutation ids and revs fit a signed 64-bit column


@dataclass(frozen=True)
class Mutation:
    """One queued change of one record, as the device sends it."""

    id: int
    record_id: str
    type: str
    op: str
    fields: dict[str, Any]
    clock: dict[str, str]
    base_rev: int | None

    def as_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "id": self.id,
            "record_id": self.record_id,
            "type": self.type,
            "op": self.op,
            "fields": self.fields,
            "clock": self.clock,
            "base_rev": self.base_rev,
        }


@dataclass(frozen=True)
class Record:
    """A record as the server sends it in a pull: full fields and per-field clocks."""

    id: str
    type: str
    fields: dict[str, Any]
    clock: dict[str, str]
    rev: int
    deleted: bool

    def as_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "id": self.id,
            "type": self.type,
            "fields": self.fields,
            "clock": self.clock,
            "rev": self.rev,
            "deleted": self.deleted,
        }


@dataclass(frozen=True)
class ResultError:
    """Why a mutation was rejected."""

    code: str
    message: str
    field: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"code": self.code, "message": self.message, "field": self.field}


@dataclass(frozen=True)
class Result:
    """The outcome of one mutation in a push response."""

    id: int
    status: str
    rev: int | None
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    error: ResultError | None = None

    def as_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "id": self.id,
            "status": self.status,
            "rev": self.rev,
            "conflicts": self.conflicts,
            "error": self.error.as_json() if self.error else None,
        }


@dataclass(frozen=True)
class PushResponse:
    """The server's answer to a push."""

    last_mutation_id: int
    results: list[Result]


@dataclass(frozen=True)
class PullResponse:
    """One page of a pull."""

    records: list[Record]
    purge: list[str]
    cursor: int
    more: bool
    last_mutation_id: int
    # Values written by this user's devices that a later push beat (each with record_id
    # and type beside the push result's conflict fields). Absent from older servers.
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def _is_count(value: object, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value < MAX_COUNTER


def tombstone(
    fields: Mapping[str, Any], clock: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """What a deleted record keeps on a phone and on the wire: only the patient it belonged
    to (a phone needs it to file the tombstone) and, for a patient merged into another, the
    survivor (``sync.merged``), never its content."""
    kept = {k: v for k, v in fields.items() if k in ("patient_id", "merged_into")}
    return kept, {k: v for k, v in clock.items() if k in kept}


def push_request_errors(body: object, max_mutations: int) -> list[FieldError]:
    """Problems with a push request as a whole (each mutation needs a valid ``id``)."""
    if not isinstance(body, Mapping):
        return [FieldError("", "must be an object")]
    mutations = body.get("mutations")
    if not isinstance(mutations, list):
        return [FieldError("mutations", "must be a list")]
    if len(mutations) > max_mutations:
        return [FieldError("mutations", f"has more than {max_mutations} items")]
    previous = 0
    for index, item in enumerate(mutations):
        if not isinstance(item, Mapping):
            return [FieldError(f"mutations[{index}]", "must be an object")]
        if not _is_count(item.get("id"), 1):
            return [FieldError(f"mutations[{index}].id", "must be a positive whole number")]
        # One answer per id: a repeated or reordered id would get two different results.
        if item["id"] <= previous:
            return [FieldError(f"mutations[{index}].id", "must be greater than the one before")]
        previous = item["id"]
    return []


def mutation_errors(item: Mapping[str, Any]) -> list[FieldError]:
    """Problems with one mutation's shape (not its field values)."""
    errors: list[FieldError] = []
    if not schema.is_uuid(item.get("record_id")):
        errors.append(FieldError("record_id", "must be a lower-case UUID"))
    if item.get("type") not in schema.TYPES:
        errors.append(FieldError("type", "must be a known record type"))
    op = item.get("op")
    if op not in OPS:
        errors.append(FieldError("op", "must be upsert or delete"))
    base_rev = item.get("base_rev")
    if base_rev is not None and not _is_count(base_rev):
        errors.append(FieldError("base_rev", "must be a whole number or null"))
    fields, clock = item.get("fields", {}), item.get("clock", {})
    if not isinstance(fields, Mapping):
        errors.append(FieldError("fields", "must be an object"))
    if not isinstance(clock, Mapping):
        errors.append(FieldError("clock", "must be an object"))
    if errors:
        return errors
    if set(fields) != set(clock):
        errors.append(FieldError("clock", "must have one entry per field"))
    for name, stamp in clock.items():
        if not hlc.is_valid(stamp):
            errors.append(FieldError(f"clock.{str(name)[:60]}", "must be an HLC"))
    if op == "upsert" and not fields:
        errors.append(FieldError("fields", "must not be empty"))
    return errors


def parse_mutation(item: Mapping[str, Any]) -> Mutation:
    """A Mutation from checked JSON; raises ProtocolError when the shape is wrong."""
    errors = mutation_errors(item)
    if errors or not _is_count(item.get("id"), 1):
        raise ProtocolError("; ".join(str(e) for e in errors) or "id: must be positive")
    return Mutation(
        id=item["id"],
        record_id=item["record_id"],
        type=item["type"],
        op=item["op"],
        fields=dict(item.get("fields", {})),
        clock=dict(item.get("clock", {})),
        base_rev=item.get("base_rev"),
    )


def record_errors(item: object) -> list[FieldError]:
    """Problems with a pulled record's shape."""
    if not isinstance(item, Mapping):
        return [FieldError("", "must be an object")]
    errors: list[FieldError] = []
    if not schema.is_uuid(item.get("id")):
        errors.append(FieldError("id", "must be a lower-case UUID"))
    if item.get("type") not in schema.TYPES:
        errors.append(FieldError("type", "must be a known record type"))
    if not isinstance(item.get("fields"), Mapping):
        errors.append(FieldError("fields", "must be an object"))
    clock = item.get("clock")
    if not isinstance(clock, Mapping) or not all(hlc.is_valid(c) for c in clock.values()):
        errors.append(FieldError("clock", "must map fields to HLCs"))
    if not _is_count(item.get("rev"), 1):
        errors.append(FieldError("rev", "must be a positive whole number"))
    if not isinstance(item.get("deleted"), bool):
        errors.append(FieldError("deleted", "must be true or false"))
    return errors


def parse_pull_response(body: object) -> PullResponse:
    """A PullResponse from JSON; raises ProtocolError naming the first bad field."""
    if not isinstance(body, Mapping):
        raise ProtocolError("pull response must be an object")
    records = body.get("records")
    purge = body.get("purge")
    if not isinstance(records, list):
        raise ProtocolError("records: must be a list")
    if not isinstance(purge, list) or not all(schema.is_uuid(p) for p in purge):
        raise ProtocolError("purge: must be a list of ids")
    if not _is_count(body.get("cursor")) or not isinstance(body.get("more"), bool):
        raise ProtocolError("cursor/more: wrong type")
    if not _is_count(body.get("last_mutation_id")):
        raise ProtocolError("last_mutation_id: must be a whole number")
    parsed = []
    for index, item in enumerate(records):
        errors = record_errors(item)
        if errors:
            raise ProtocolError(f"records[{index}].{errors[0]}")
        parsed.append(
            Record(
                item["id"],
                item["type"],
                dict(item["fields"]),
                dict(item["clock"]),
                item["rev"],
                item["deleted"],
            )
        )
    conflicts = body.get("conflicts", [])
    if not isinstance(conflicts, list):
        raise ProtocolError("conflicts: must be a list")
    for index, item in enumerate(conflicts):
        if (
            not isinstance(item, Mapping)
            or not schema.is_uuid(item.get("record_id"))
            or item.get("type") not in schema.TYPES
            or not isinstance(item.get("field"), str)
            or not hlc.is_valid(item.get("lost_clock"))
        ):
            raise ProtocolError(f"conflicts[{index}]: must name a record, field and clock")
    return PullResponse(
        parsed,
        list(purge),
        body["cursor"],
        body["more"],
        body["last_mutation_id"],
        [dict(c) for c in conflicts],
    )


def parse_push_response(body: object) -> PushResponse:
    """A PushResponse from JSON; raises ProtocolError naming the first bad field."""
    if not isinstance(body, Mapping) or not _is_count(body.get("last_mutation_id")):
        raise ProtocolError("push response must have last_mutation_id")
    items = body.get("results")
    if not isinstance(items, list):
        raise ProtocolError("results: must be a list")
    results = []
    for index, item in enumerate(items):
        if (
            not isinstance(item, Mapping)
            or not _is_count(item.get("id"), 1)
            or item.get("status") not in STATUSES
            or not (item.get("rev") is None or _is_count(item.get("rev")))
            or not isinstance(item.get("conflicts"), list)
        ):
            raise ProtocolError(f"results[{index}]: wrong shape")
        error = item.get("error")
        if error is not None and not (
            isinstance(error, Mapping)
            and isinstance(error.get("code"), str)
            and isinstance(error.get("message"), str)
        ):
            raise ProtocolError(f"results[{index}].error: wrong shape")
        results.append(
            Result(
                item["id"],
                item["status"],
                item["rev"],
                list(item["conflicts"]),
                ResultError(error["code"], error["message"], error.get("field")) if error else None,
            )
        )
    return PushResponse(body["last_mutation_id"], results)
