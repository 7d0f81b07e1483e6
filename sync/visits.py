"""The final-visit rule, the one both the phone's store and the server's push call.

A visit is a draft until it is finalized. Then:

- a final visit never changes: corrections are addenda (``change_errors``);
- finalizing needs the core fields (``sync.schema.FINALIZE_REQUIRED``);
- a final visit cannot be deleted (``delete_errors``).

The server reports a refusal of the first and last kind with the code ``FINALIZED_CODE``;
a visit that lacks a core field is an ordinary invalid record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync.errors import FieldError
from sync.schema import finalize_errors

FINAL = "final"
FINALIZED_CODE = "record_finalized"
NEVER_CHANGES = "a final visit never changes; add an addendum"
NEVER_DELETED = "a final visit cannot be deleted"


def is_final(type_name: str, fields: Mapping[str, Any] | None) -> bool:
    """True for a visit whose fields say it is final (any other record never is)."""
    return type_name == "visit" and fields is not None and fields.get("status") == FINAL


def frozen_errors(type_name: str, old: Mapping[str, Any] | None) -> list[FieldError]:
    """Why the stored record ``old`` may not change at all (empty when it may)."""
    return [FieldError("status", NEVER_CHANGES)] if is_final(type_name, old) else []


def finalizing_errors(type_name: str, new: Mapping[str, Any]) -> list[FieldError]:
    """What a visit that ``new`` makes final still lacks (empty for a draft)."""
    return finalize_errors(new) if is_final(type_name, new) else []


def change_errors(
    type_name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> list[FieldError]:
    """Why a record may not go from ``old`` (None when new) to ``new``: the whole rule."""
    return frozen_errors(type_name, old) or finalizing_errors(type_name, new)


def delete_errors(type_name: str, fields: Mapping[str, Any] | None) -> list[FieldError]:
    """Why the record may not be deleted (empty when it may)."""
    return [FieldError("status", NEVER_DELETED)] if is_final(type_name, fields) else []
