"""The devnet's CBOR scanner: item boundaries from :mod:`common.cborscan`, plus cbor2 decoding that keeps raw bytes.

Hashes are taken over the original bytes, so the ledger and the Ogmios/Kupo serializers slice items out
with the common scanner and decode each slice with cbor2's C decoder only where they need values.
The nesting bound is :data:`common.cborscan.MAX_DEPTH` (512): above cbor2's own limit (400), which is the
one that binds; Conway sets none, but a tx the devnet accepted must also render through every path that
decodes it with cbor2 (chain-sync JSON, Kupo).
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from common.cborscan import CborScanError, array_spans, head, item_end, map_spans

__all__ = ["CborScanError", "array_items", "decode_array", "decode_map", "head", "item_end", "map_items"]


def array_items(buf: bytes, pos: int = 0) -> tuple[list[bytes], int]:
    """The raw items of the array at ``pos`` (a leading tag is skipped) and the end position."""
    spans, end = array_spans(buf, pos)
    return [buf[a:b] for a, b in spans], end


def map_items(buf: bytes, pos: int = 0) -> tuple[list[tuple[bytes, bytes]], int]:
    """The raw (key, value) pairs of the map at ``pos`` and the end position."""
    pairs, end = map_spans(buf, pos)
    return [(buf[k0:k1], buf[v0:v1]) for (k0, k1), (v0, v1) in pairs], end


def _container_head(buf: bytes, pos: int, expected_major: int) -> tuple[int | None, int]:
    major, arg, pos = head(buf, pos)
    while major == 6:  # skip tags (e.g. 258 for sets)
        major, arg, pos = head(buf, pos)
    if major != expected_major:
        raise CborScanError(f"expected major type {expected_major}, found {major}")
    return arg, pos


def _decode_run(buf: bytes, pos: int, count: int | None) -> tuple[list[tuple[Any, bytes]], int]:
    """Decode ``count`` consecutive items (or up to a break byte) with cbor2's C decoder, keeping each
    item's raw bytes: the decoder reads exactly what it consumes, so ``tell()`` marks item ends."""
    stream = io.BytesIO(buf)
    stream.seek(pos)
    decoder = cbor2.CBORDecoder(stream)
    items: list[tuple[Any, bytes]] = []
    while count is None or len(items) < count:
        start = stream.tell()
        if count is None:
            if start >= len(buf):
                raise CborScanError("unexpected end of input")
            if buf[start] == 0xFF:
                return items, start + 1
        try:
            value = decoder.decode()
        except (cbor2.CBORDecodeError, RecursionError, ValueError, TypeError, OverflowError, IndexError) as exc:
            raise CborScanError(f"malformed CBOR: {exc}") from None
        items.append((value, buf[start : stream.tell()]))
    return items, stream.tell()


def decode_array(buf: bytes, pos: int = 0) -> tuple[list[tuple[Any, bytes]], int]:
    """The array at ``pos`` as (decoded item, raw item bytes) pairs, and the end position."""
    count, pos = _container_head(buf, pos, 4)
    if count is not None and count > len(buf) - pos:
        raise CborScanError("array longer than the input")
    return _decode_run(buf, pos, count)


def decode_map(buf: bytes, pos: int = 0) -> tuple[list[tuple[Any, Any, bytes]], int]:
    """The map at ``pos`` as (key, decoded value, raw value bytes) triples, and the end position."""
    count, pos = _container_head(buf, pos, 5)
    if count is not None and 2 * count > len(buf) - pos:
        raise CborScanError("map longer than the input")
    items, end = _decode_run(buf, pos, None if count is None else 2 * count)
    if len(items) % 2:
        raise CborScanError("a map with a key but no value")
    return [(items[i][0], items[i + 1][0], items[i + 1][1]) for i in range(0, len(items), 2)], end
