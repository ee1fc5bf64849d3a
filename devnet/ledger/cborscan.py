"""A minimal CBOR scanner that finds item boundaries, so hashes can be taken over the original bytes."""

from __future__ import annotations

__all__ = ["CborScanError", "array_items", "item_end", "map_items"]

_MAX_DEPTH = 256


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
