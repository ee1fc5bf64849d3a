"""Byte-exact CBOR navigation for the Ogmios serializer: where an item starts and ends, without re-encoding it.

Ogmios reports hashes and hex of sub-structures exactly as they appear on chain (tx id = hash of the
original body bytes, datum hash = hash of the original datum bytes, metadatum ``cbor`` = original bytes).
``cbor2`` decodes values but loses their original encoding, so the serializer locates the raw spans with
:mod:`common.cborscan` and decodes each span with ``cbor2`` only where it needs values. This module keeps
the serializer's span-list shapes over the one scanner the devnet ledger uses too.
"""

from __future__ import annotations

from typing import Any

from common.cborscan import CborScanError, Span, array_spans, item_end, map_spans
from common.cborscan import head as read_head
from devnet.ledger.cborscan import decode_array, decode_map

__all__ = ["CborError", "array_entries", "array_items", "item_end", "map_entries", "map_items", "read_head"]

CborError = CborScanError  # the name this package's callers catch


def array_items(data: bytes, pos: int) -> list[Span]:
    """Spans (start, end) of the elements of the array at ``pos`` (a leading tag, e.g. 258, is skipped)."""
    return array_spans(data, pos)[0]


def map_items(data: bytes, pos: int) -> list[tuple[Span, Span]]:
    """Spans of (key, value) pairs of the map at ``pos`` (a leading tag is skipped)."""
    return map_spans(data, pos)[0]


def array_entries(data: bytes, pos: int = 0) -> list[tuple[Any, bytes]]:
    """(decoded value, original bytes) of each element of the array at ``pos`` (C decoder, exact spans)."""
    return decode_array(data, pos)[0]


def map_entries(data: bytes, pos: int = 0) -> list[tuple[Any, Any, bytes]]:
    """(decoded key, decoded value, original value bytes) of each pair of the map at ``pos``."""
    return decode_map(data, pos)[0]
