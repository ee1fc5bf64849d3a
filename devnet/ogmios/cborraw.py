"""Byte-exact CBOR navigation: find where an item starts and ends without re-encoding it.

Ogmios reports hashes and hex of sub-structures exactly as they appear on chain (tx id = hash of the
original body bytes, datum hash = hash of the original datum bytes, metadatum ``cbor`` = original bytes).
``cbor2`` decodes values but loses their original encoding, so the serializer locates the raw spans with
this walker and decodes each span with ``cbor2`` only where it needs values.
"""

from __future__ import annotations

import io
from typing import Any, Final

import cbor2

__all__ = ["CborError", "array_entries", "array_items", "item_end", "map_entries", "map_items", "read_head"]

_BREAK: Final = 0xFF
_MAX_DEPTH: Final = 512  # above cbor2's nesting limit (400), the one that binds (devnet/ledger/cborscan.py)


class CborError(ValueError):
    """The bytes are not well-formed CBOR (truncated, bad header, nesting too deep)."""


def read_head(data: bytes, pos: int) -> tuple[int, int | None, int]:
    """Read an item head at ``pos``: (major type, argument or None if indefinite, position after head)."""
    if pos >= len(data):
        raise CborError(f"unexpected end of input at byte {pos}")
    initial = data[pos]
    major = initial >> 5
    info = initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    if info == 31:
        if major in (0, 1, 6):
            raise CborError(f"indefinite length not allowed for major type {major}")
        return major, None, pos
    width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if width is None:
        raise CborError(f"reserved additional info {info} at byte {pos - 1}")
    if pos + width > len(data):
        raise CborError(f"unexpected end of input at byte {pos}")
    return major, int.from_bytes(data[pos : pos + width], "big"), pos + width


def item_end(data: bytes, pos: int, depth: int = 0) -> int:
    """Return the offset just past the CBOR item that starts at ``pos``."""
    if depth > _MAX_DEPTH:
        raise CborError("CBOR nesting too deep")
    major, arg, pos = read_head(data, pos)
    if major in (0, 1):
        return pos
    if major == 7:
        if arg is None:
            raise CborError("unexpected break")
        return pos
    if major in (2, 3):
        if arg is None:
            while True:
                if pos >= len(data):
                    raise CborError("unterminated indefinite string")
                if data[pos] == _BREAK:
                    return pos + 1
                pos = item_end(data, pos, depth + 1)
        end = pos + arg
        if end > len(data):
            raise CborError("string runs past the end of input")
        return end
    if major == 6:
        return item_end(data, pos, depth + 1)
    count = arg if major == 4 else (None if arg is None else arg * 2)
    if count is None:
        while True:
            if pos >= len(data):
                raise CborError("unterminated indefinite container")
            if data[pos] == _BREAK:
                return pos + 1
            pos = item_end(data, pos, depth + 1)
    if count > len(data) - pos:
        raise CborError("container claims more items than bytes left")
    for _ in range(count):
        pos = item_end(data, pos, depth + 1)
    return pos


def _skip_tag(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] >> 5 == 6:
        _, _, pos = read_head(data, pos)
    return pos


def array_items(data: bytes, pos: int) -> list[tuple[int, int]]:
    """Spans (start, end) of the elements of the array at ``pos`` (a leading tag, e.g. 258, is skipped)."""
    pos = _skip_tag(data, pos)
    major, arg, pos = read_head(data, pos)
    if major != 4:
        raise CborError(f"expected an array, found major type {major}")
    spans: list[tuple[int, int]] = []
    while arg is None or len(spans) < arg:
        if arg is None:
            if pos >= len(data):
                raise CborError("unterminated indefinite array")
            if data[pos] == _BREAK:
                break
        end = item_end(data, pos)
        spans.append((pos, end))
        pos = end
    return spans


def map_items(data: bytes, pos: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Spans of (key, value) pairs of the map at ``pos`` (a leading tag is skipped)."""
    pos = _skip_tag(data, pos)
    major, arg, pos = read_head(data, pos)
    if major != 5:
        raise CborError(f"expected a map, found major type {major}")
    pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []
    while arg is None or len(pairs) < arg:
        if arg is None:
            if pos >= len(data):
                raise CborError("unterminated indefinite map")
            if data[pos] == _BREAK:
                break
        key_end = item_end(data, pos)
        value_end = item_end(data, key_end)
        pairs.append(((pos, key_end), (key_end, value_end)))
        pos = value_end
    return pairs


def _decoder(data: bytes, pos: int) -> tuple[io.BytesIO, cbor2.CBORDecoder]:
    stream = io.BytesIO(data)
    stream.seek(pos)
    return stream, cbor2.CBORDecoder(stream)


def _container_head(data: bytes, pos: int, major_wanted: int) -> tuple[int | None, int]:
    pos = _skip_tag(data, pos)
    major, arg, pos = read_head(data, pos)
    if major != major_wanted:
        raise CborError(f"expected major type {major_wanted}, found {major}")
    return arg, pos


def array_entries(data: bytes, pos: int = 0) -> list[tuple[Any, bytes]]:
    """(decoded value, original bytes) of each element of the array at ``pos`` (C decoder, exact spans)."""
    count, pos = _container_head(data, pos, 4)
    stream, decoder = _decoder(data, pos)
    out: list[tuple[Any, bytes]] = []
    try:
        while count is None or len(out) < count:
            start = stream.tell()
            if count is None and data[start : start + 1] == b"\xff":
                break
            value = decoder.decode()
            out.append((value, data[start : stream.tell()]))
    except (cbor2.CBORDecodeError, IndexError, ValueError, TypeError, RecursionError) as exc:
        raise CborError(str(exc)) from None
    return out


def map_entries(data: bytes, pos: int = 0) -> list[tuple[Any, Any, bytes]]:
    """(decoded key, decoded value, original value bytes) of each pair of the map at ``pos``."""
    count, pos = _container_head(data, pos, 5)
    stream, decoder = _decoder(data, pos)
    out: list[tuple[Any, Any, bytes]] = []
    try:
        while count is None or len(out) < count:
            if count is None and data[stream.tell() : stream.tell() + 1] == b"\xff":
                break
            key = decoder.decode()
            start = stream.tell()
            value = decoder.decode()
            out.append((key, value, data[start : stream.tell()]))
    except (cbor2.CBORDecodeError, IndexError, ValueError, TypeError, RecursionError) as exc:
        raise CborError(str(exc)) from None
    return out
