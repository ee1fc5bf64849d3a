"""A minimal CBOR scanner that finds item boundaries, so hashes can be taken over the original bytes."""

from __future__ import annotations

import io
from typing import Any

import cbor2

__all__ = ["CborScanError", "array_items", "decode_array", "decode_map", "head", "item_end", "map_items"]

# Above cbor2's own nesting limit (400), which is the one that binds: Conway sets none, but a tx the devnet
# accepted must also render through every path that decodes it with cbor2 (chain-sync JSON, Kupo).
_MAX_DEPTH = 512


class CborScanError(ValueError):
    """Truncated or malformed CBOR."""


def _head(buf: bytes, pos: int) -> tuple[int, int | None, int]:
    """(major type, argument or None for indefinite length, position after the head)."""
    if pos >= len(buf):
        raise CborScanError("unexpected end of input")
    initial = buf[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    if info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if pos + size > len(buf):
            raise CborScanError("unexpected end of input")
        return major, int.from_bytes(buf[pos : pos + size], "big"), pos + size
    if info == 31 and major in (2, 3, 4, 5, 7):
        return major, None, pos
    raise CborScanError(f"invalid additional information {info} for major type {major}")


head = _head


def item_end(buf: bytes, pos: int, depth: int = 0) -> int:
    """The position right after the CBOR item that starts at ``pos``."""
    if depth > _MAX_DEPTH:
        raise CborScanError("nested too deeply")
    major, arg, pos = _head(buf, pos)
    if major in (0, 1):
        return pos
    if major in (2, 3):
        if arg is None:  # indefinite: definite chunks until the break byte
            while True:
                if pos >= len(buf):
                    raise CborScanError("unexpected end of input")
                if buf[pos] == 0xFF:
                    return pos + 1
                pos = item_end(buf, pos, depth + 1)
        end = pos + arg
        if end > len(buf):
            raise CborScanError("unexpected end of input")
        return end
    if major in (4, 5):
        per_entry = 2 if major == 5 else 1
        if arg is None:
            while True:
                if pos >= len(buf):
                    raise CborScanError("unexpected end of input")
                if buf[pos] == 0xFF:
                    return pos + 1
                pos = item_end(buf, pos, depth + 1)
        if arg * per_entry > len(buf) - pos:
            raise CborScanError("container longer than the input")
        for _ in range(arg * per_entry):
            pos = item_end(buf, pos, depth + 1)
        return pos
    if major == 6:
        return item_end(buf, pos, depth + 1)
    if arg is None:  # major 7: a lone break byte
        raise CborScanError("unexpected break")
    return pos


def _container_items(buf: bytes, pos: int, expected_major: int) -> tuple[list[tuple[int, int]], int]:
    major, arg, pos = _head(buf, pos)
    while major == 6:  # skip tags (e.g. 258 for sets)
        major, arg, pos = _head(buf, pos)
    if major != expected_major:
        raise CborScanError(f"expected major type {expected_major}, found {major}")
    per_entry = 2 if major == 5 else 1
    spans: list[tuple[int, int]] = []
    count = 0
    while arg is None or count < arg * per_entry:
        if arg is None:
            if pos >= len(buf):
                raise CborScanError("unexpected end of input")
            if buf[pos] == 0xFF:
                pos += 1
                break
        end = item_end(buf, pos)
        spans.append((pos, end))
        pos = end
        count += 1
    return spans, pos


def array_items(buf: bytes, pos: int = 0) -> tuple[list[bytes], int]:
    """The raw items of the array at ``pos`` (a leading tag is skipped) and the end position."""
    spans, end = _container_items(buf, pos, 4)
    return [buf[a:b] for a, b in spans], end


def map_items(buf: bytes, pos: int = 0) -> tuple[list[tuple[bytes, bytes]], int]:
    """The raw (key, value) pairs of the map at ``pos`` and the end position."""
    spans, end = _container_items(buf, pos, 5)
    pairs = [(buf[spans[i][0] : spans[i][1]], buf[spans[i + 1][0] : spans[i + 1][1]])
             for i in range(0, len(spans), 2)]
    return pairs, end


def _container_head(buf: bytes, pos: int, expected_major: int) -> tuple[int | None, int]:
    major, arg, pos = _head(buf, pos)
    while major == 6:  # skip tags (e.g. 258 for sets)
        major, arg, pos = _head(buf, pos)
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
        except (cbor2.CBORDecodeError, RecursionError, ValueError, TypeError, OverflowError) as exc:
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
