"""Byte spans of CBOR items, without decoding them: how a transaction's body keeps its exact bytes.

A transaction id is blake2b-256 over the body **as sent**; re-encoding a decoded body may change
its bytes (map order, integer widths, set tags) and so its id. ``array_items`` finds the byte span
of each element of a top-level array so the splicer can copy the body and auxiliary data verbatim.
"""

from __future__ import annotations

__all__ = ["CborSpanError", "array_items", "item_end"]

MAX_DEPTH = 64


class CborSpanError(ValueError):
    """The bytes are not well-formed CBOR (truncated, bad additional info, too deep)."""


def _head(data: bytes, pos: int) -> tuple[int, int | None, int]:
    """(major type, argument or None for indefinite length, position after the head)."""
    if pos >= len(data):
        raise CborSpanError("truncated CBOR")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    if info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise CborSpanError("truncated CBOR head")
        return major, int.from_bytes(data[pos:pos + size], "big"), pos + size
    if info == 31 and major in (2, 3, 4, 5, 7):
        return major, None, pos
    raise CborSpanError(f"invalid CBOR additional information {info} for major type {major}")


def item_end(data: bytes, pos: int = 0, depth: int = 0) -> int:
    """The position just after the CBOR item starting at ``pos``."""
    if depth > MAX_DEPTH:
        raise CborSpanError("CBOR nested too deeply")
    major, arg, pos = _head(data, pos)
    if major in (0, 1):
        return pos
    if major == 7:
        if arg is None:
            raise CborSpanError("unexpected CBOR break")
        return pos
    if major in (2, 3):
        if arg is None:  # indefinite string: chunks of the same major type until a break
            while True:
                if pos >= len(data):
                    raise CborSpanError("truncated indefinite string")
                if data[pos] == 0xFF:
                    return pos + 1
                if data[pos] >> 5 != major:
                    raise CborSpanError("indefinite string chunk of another type")
                pos = item_end(data, pos, depth + 1)
        end = pos + arg
        if end > len(data):
            raise CborSpanError("truncated CBOR string")
        return end
    if major == 6:
        return item_end(data, pos, depth + 1)
    per_entry = 2 if major == 5 else 1
    if arg is None:
        while True:
            if pos >= len(data):
                raise CborSpanError("truncated indefinite container")
            if data[pos] == 0xFF:
                return pos + 1
            for _ in range(per_entry):
                pos = item_end(data, pos, depth + 1)
    if arg > len(data):  # each entry takes at least a byte: refuse absurd counts before looping
        raise CborSpanError("CBOR container longer than the input")
    for _ in range(arg * per_entry):
        pos = item_end(data, pos, depth + 1)
    return pos


def array_items(data: bytes) -> list[bytes]:
    """The exact bytes of each element of the definite or indefinite array that is all of ``data``."""
    major, count, pos = _head(data, 0)
    if major != 4:
        raise CborSpanError("not a CBOR array")
    items: list[bytes] = []
    if count is None:
        while True:
            if pos >= len(data):
                raise CborSpanError("truncated indefinite array")
            if data[pos] == 0xFF:
                pos += 1
                break
            end = item_end(data, pos, 1)
            items.append(data[pos:end])
            pos = end
    else:
        if count > len(data):
            raise CborSpanError("CBOR array longer than the input")
        for _ in range(count):
            end = item_end(data, pos, 1)
            items.append(data[pos:end])
            pos = end
    if pos != len(data):
        raise CborSpanError(f"{len(data) - pos} bytes after the CBOR array")
    return items
