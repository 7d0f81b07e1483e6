"""The store file's format (version 2, described in ``app.storage``): its constants, its
header, where a record is in it (a place: part, position, size), how records are grouped
into parts, and how the end of a file torn by a power cut is told from damage."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter, or_
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.errors import StoreCorrupted

Doc = dict[str, Any]
Data = dict[str, Any]  # table name -> {doc id: doc} (the records: a read-only mapping)
T = TypeVar("T")

MAGIC = b"LIAJRN\x00\x02"
NONCE = 12
TAG = 16
HEADER = struct.Struct(">8s16sQ12s16s")  # magic, file id, index at, nonce, tag (+ crc32)
HEADER_LEN = HEADER.size + 4
FRAME = struct.Struct(">II")
LENGTH = struct.Struct(">I")
MIN_PAYLOAD = NONCE + 4 + TAG + NONCE + 4 + TAG
INDEX_KEY = ["", "index"]  # the index's key in the first entry's small documents
# The smallest unit a disk writes. What a power cut leaves unwritten is whole sectors: zeros
# from a sector boundary to the end of the file (or an entry whose frame never landed).
SECTOR = 512
_SLACK = 8  # zero bytes that may precede the unwritten sectors as part of the landed data
# A record is read by decrypting and parsing its whole part: small parts read fast, and
# records saved together (a patient's, a pulled page's) are mostly read together.
PART_DOCS = 32
PART_BYTES = 1 << 16
# A record's place: its part's number, its position in the part and its size, in one int.
POS_BITS, SIZE_BITS = 16, 32
HOT = -1  # the place of a record held in memory (a version 1 file being rewritten)

# ASCII-only JSON parses faster than UTF-8 with accents (most text here is ASCII anyway).
ENCODE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=False).encode


_FIRST, _SECOND, _THIRD = itemgetter(0), itemgetter(1), itemgetter(2)


class Torn(Exception):
    """The journal ends in an incomplete entry (a crash mid-append)."""


PART_SHIFT = POS_BITS + SIZE_BITS


def place_at(part: int, pos: int, size: int) -> int:
    return (part << PART_SHIFT) | (pos << SIZE_BITS) | size


def part_of(place: int) -> int:
    return place >> PART_SHIFT


def pos_of(place: int) -> int:
    return (place >> SIZE_BITS) & ((1 << POS_BITS) - 1)


SIZE_MASK = (1 << SIZE_BITS) - 1


def size_of(place: int) -> int:
    return place & SIZE_MASK


@dataclass
class Part:
    """A sealed list of record documents in the file: ``nonce + ct`` at ``at``."""

    id: bytes
    at: int
    length: int
    docs: int


@dataclass
class Records:
    """Where each record is: ``places`` (id -> (place, summary)), the parts, the records
    held in memory (``hot``: only while a version 1 file is rewritten)."""

    places: dict[str, tuple[int, str]] = field(default_factory=dict)
    parts: list[Part] = field(default_factory=list)
    hot: dict[str, Doc] = field(default_factory=dict)

    def copy(self) -> Records:
        return Records(dict(self.places), list(self.parts), dict(self.hot))


def runs(parts: list[Part], most: int) -> Iterator[list[Part]]:
    """``parts`` in runs that lie back to back in the file, each of at most ``most`` bytes
    (or one part): a run is copied with one read."""
    run: list[Part] = []
    for part in parts:
        if run and (
            run[-1].at + run[-1].length != part.at or part.at + part.length - run[0].at > most
        ):
            yield run
            run = []
        run.append(part)
    if run:
        yield run


def order(doc: Doc, record_id: str) -> tuple[str, str]:
    """Where a record goes when packed: by type, then by patient."""
    fields = doc.get("fields")
    patient = fields.get("patient_id") if isinstance(fields, dict) else None
    return str(doc.get("type", "")), patient if isinstance(patient, str) else record_id


def groups(docs: Iterable[tuple[T, bytes]]) -> Iterator[list[tuple[T, bytes]]]:
    """``docs`` in runs of at most ``PART_DOCS`` documents and about ``PART_BYTES``."""
    group: list[tuple[T, bytes]] = []
    size = 0
    for pair in docs:
        if group and (len(group) >= PART_DOCS or size + len(pair[1]) > PART_BYTES):
            yield group
            group, size = [], 0
        group.append(pair)
        size += len(pair[1])
    if group:
        yield group


def place_rows(rows: list[list[Any]], records: Records, slots: Iterator[int]) -> int:
    """Place a batch's records (``[id, size, summary]``, a size of -1 for one removed) at
    ``slots`` in ``records``, in order; by how many bytes the live records grew. It runs for
    every record at open: kept short, and new records only (a pulled page) are placed by
    C loops (``map``, ``zip``) rather than Python ones."""
    places, hot, grown = records.places, records.hot, 0
    ids = list(map(_FIRST, rows))
    sizes = list(map(_SECOND, rows))
    if places.keys().isdisjoint(ids) and min(sizes, default=0) >= 0:
        found = zip(map(or_, slots, sizes), map(_THIRD, rows), strict=True)
        places.update(zip(ids, found, strict=True))
        return sum(sizes)
    for record_id, size, summary in rows:
        if record_id in places:
            old = places[record_id][0]
            if hot:
                hot.pop(record_id, None)
            if old != HOT:
                grown -= old & SIZE_MASK
            if size < 0:
                del places[record_id]
                continue
        elif size < 0:
            continue
        # An assignment keeps a changed record's place in the order stored.
        places[record_id] = (next(slots) | size, summary)
        grown += size
    return grown


def check_header(buf: bytes, aead: AESGCM) -> tuple[bytes, int]:
    """The file id and the index's offset of a version 2 header."""
    if len(buf) < HEADER_LEN or buf[:8] != MAGIC:
        raise damaged("not a Liaison journal, or its header is damaged")
    head = buf[: HEADER_LEN - 4]
    if zlib.crc32(head) != int.from_bytes(buf[HEADER_LEN - 4 : HEADER_LEN], "big"):
        raise damaged("the journal header is damaged")
    _, file_id, index_at, nonce, tag = HEADER.unpack(head)
    try:
        aead.decrypt(nonce, tag, MAGIC + file_id + index_at.to_bytes(8, "big"))
    except InvalidTag:
        raise StoreCorrupted(
            "cannot decrypt the store (wrong key or damaged file): the header is intact, "
            "so the key is most likely wrong"
        ) from None
    if index_at < HEADER_LEN:
        raise damaged("the journal header is damaged")
    return file_id, index_at


def unwritten(buf: bytes, start: int, origin: int) -> int:
    """Where the zeros that a power cut could have left begin: a sector boundary after
    ``start`` from which every byte to the end is zero (``len(buf)`` when there is none).
    ``buf`` begins at file offset ``origin`` (sectors count from the file's start).

    The zeros must begin at the boundary, give or take the few zero bytes landed data can
    end with (at most 3 in a length field; more in ciphertext by chance 1 in 2**40).
    """
    first_zero = start + len(buf[start:].rstrip(b"\0"))
    boundary = -(-(first_zero + origin) // SECTOR) * SECTOR - origin
    return boundary if boundary < len(buf) and boundary - first_zero < _SLACK else len(buf)


def damaged(what: str) -> StoreCorrupted:
    """The error for a damaged or tampered file (which is left as it is)."""
    return StoreCorrupted(f"the store file is damaged or was tampered with: {what}; left as is")
