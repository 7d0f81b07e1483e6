"""A store file of version 1, read once to be rewritten in version 2 (``app.storage``).

Version 1 held entries only, every document in them: ``MAGIC_V1 file_id nonce tag crc32``,
then entries ``length crc32(length) payload`` with ``payload = hnonce hlen head_ct bnonce
body_ct``, the head the JSON list of ``[table, id]`` (AAD b"H" file_id seq) and the body
the JSON list of documents (AAD b"B" file_id seq head).
"""

from __future__ import annotations

import json
import logging
import zlib
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.errors import StoreCorrupted
from app.storeformat import FRAME, NONCE, TAG, Doc, Torn, damaged, unwritten

log = logging.getLogger(__name__)

MAGIC_V1 = b"LIAJRN\x00\x01"
HEADER_LEN_V1 = 8 + 16 + NONCE + TAG + 4


def read_v1(buf: bytes, aead: AESGCM) -> dict[str, dict[str, Doc]]:
    """Every table's documents in the version 1 file ``buf``; a torn final entry is left
    out, any other damage raises ``StoreCorrupted``."""
    file_id = _check_header(buf, aead)
    data: dict[str, dict[str, Doc]] = {}
    view = memoryview(buf)
    pos, seq = HEADER_LEN_V1, 0
    while pos < len(buf):
        try:
            keys, docs, end = _entry(aead, file_id, buf, view, pos, seq + 1)
        except Torn:
            log.warning("journal: a torn final entry left out of the migration")
            break
        seq += 1
        for (table, doc_id), doc in zip(keys, docs, strict=True):
            if doc is None:
                data.setdefault(table, {}).pop(doc_id, None)
            else:
                data.setdefault(table, {})[doc_id] = doc
        pos = end
    return data


def _entry(
    aead: AESGCM, file_id: bytes, buf: bytes, view: memoryview, pos: int, seq: int
) -> tuple[list[Any], list[Any], int]:
    rest = len(buf) - pos
    if rest < FRAME.size:
        raise Torn
    length, crc = FRAME.unpack_from(buf, pos)
    if zlib.crc32(buf[pos : pos + 4]) != crc:
        if unwritten(buf, pos, 0) < pos + FRAME.size or not buf[pos:].strip(b"\0"):
            raise Torn
        raise damaged(f"entry {seq} has a damaged frame")
    if length > rest - FRAME.size:
        raise Torn
    end = pos + FRAME.size + length
    payload = view[pos + FRAME.size : end]
    try:
        seq_bytes = seq.to_bytes(8, "big")
        hlen = int.from_bytes(payload[NONCE : NONCE + 4], "big")
        if hlen < TAG or NONCE + 4 + hlen + NONCE + TAG > len(payload):
            raise InvalidTag
        start = NONCE + 4
        head = aead.decrypt(
            bytes(payload[:NONCE]), payload[start : start + hlen], b"H" + file_id + seq_bytes
        )
        bstart = start + hlen + NONCE
        body = aead.decrypt(
            bytes(payload[bstart - NONCE : bstart]),
            payload[bstart:],
            b"B" + file_id + seq_bytes + head,
        )
        keys, docs = json.loads(head.decode()), json.loads(body.decode())
        if not isinstance(keys, list) or not isinstance(docs, list) or len(keys) != len(docs):
            raise ValueError("entry shape")
    except (InvalidTag, ValueError, TypeError):
        if end == len(buf) and unwritten(buf, pos + FRAME.size, 0) < end:
            raise Torn from None
        raise damaged(f"entry {seq} does not authenticate") from None
    return keys, docs, end


def _check_header(buf: bytes, aead: AESGCM) -> bytes:
    head = buf[: HEADER_LEN_V1 - 4]
    if len(buf) < HEADER_LEN_V1 or zlib.crc32(head) != int.from_bytes(
        buf[HEADER_LEN_V1 - 4 : HEADER_LEN_V1], "big"
    ):
        raise damaged("the journal header is damaged")
    file_id, nonce, tag = head[8:24], head[24:36], head[36:52]
    try:
        aead.decrypt(nonce, tag, MAGIC_V1 + file_id)
    except InvalidTag:
        raise StoreCorrupted(
            "cannot decrypt the store (wrong key or damaged file): the header is intact, "
            "so the key is most likely wrong"
        ) from None
    return file_id
