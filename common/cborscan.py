"""Byte spans of CBOR items, found without decoding them: hashes and splices over the original bytes.

A transaction id is blake2b-256 over the body **as sent**, a datum hash is over the datum as sent;
re-encoding a decoded value may change its bytes (map order, integer widths, set tags) and so its hash.
This scanner reads only item heads, so callers can slice out the exact bytes of an item and decode
(with cbor2) only what they need. It accepts well-formed CBOR of any type; it checks no semantics.

``max_depth`` bounds nesting (the scanner recurses once per level): the gateway uses a small bound,
the devnet one above cbor2's own limit (400) so that cbor2 is the limit that binds there.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_DEPTH", "CborScanError", "Span", "array_spans", "head", "item_end", "map_spans", "split_array"]

MAX_DEPTH: Final = 512
_BREAK: Final = 0xFF

Span = tuple[int, int]
"""(start, end) of an item: ``data[start:end]`` is its exact encoding."""


class CborScanError(ValueError):
    """The bytes are not well-formed CBOR (truncated, bad additional information, too deep)."""


def head(data: bytes, pos: int) -> tuple[int, int | None, int]:
    """(major type, argument or None for indefinite length, position after the head) of the item at ``pos``."""
    if pos >= len(data):
        raise CborScanError(f"truncated CBOR at byte {pos}")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    if info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise CborScanError(f"truncated CBOR head at byte {pos - 1}")
        return major, int.from_bytes(data[pos : pos + size], "big"), pos + size
    if info == 31 and major in (2, 3, 4, 5, 7):
        return major, None, pos
    raise CborScanError(f"invalid CBOR additional information {info} for major type {major} at byte {pos - 1}")


def _indefinite_string_end(data: bytes, pos: int, major: int, depth: int, max_depth: int) -> int:
    while True:  # chunks of the same major type until a break
        if pos >= len(data):
            raise CborScanError("truncated indefinite-length string")
        if data[pos] == _BREAK:
            return pos + 1
        if data[pos] >> 5 != major:
            raise CborScanError("indefinite-length string chunk of another type")
        pos = item_end(data, pos, depth + 1, max_depth)


def item_end(data: bytes, pos: int = 0, depth: int = 0, max_depth: int = MAX_DEPTH) -> int:
    """The position just after the CBOR item that starts at ``pos`` (``depth`` levels inside others)."""
    if depth > max_depth:
        raise CborScanError("CBOR nested too deeply")
    major, arg, pos = head(data, pos)
    if major in (0, 1):
        return pos
    if major == 7:
        if arg is None:
            raise CborScanError("unexpected CBOR break")
        return pos
    if major in (2, 3):
        if arg is None:
            return _indefinite_string_end(data, pos, major, depth, max_depth)
        end = pos + arg
        if end > len(data):
            raise CborScanError("truncated CBOR string")
        return end
    if major == 6:
        return item_end(data, pos, depth + 1, max_depth)
    per_entry = 2 if major == 5 else 1
    if arg is None:
        while True:
            if pos >= len(data):
                raise CborScanError("truncated indefinite-length container")
            if data[pos] == _BREAK:
                return pos + 1
            for _ in range(per_entry):  # a break between a key and its value is malformed
                pos = item_end(data, pos, depth + 1, max_depth)
    if arg * per_entry > len(data) - pos:  # each entry takes at least a byte: refuse absurd counts early
        raise CborScanError("CBOR container longer than the input")
    for _ in range(arg * per_entry):
        pos = item_end(data, pos, depth + 1, max_depth)
    return pos


def _entry_spans(data: bytes, pos: int, expected_major: int, skip_tags: bool,
                 max_depth: int) -> tuple[list[Span], int]:
    """Spans of the items of the array (or of the keys and values of the map) at ``pos``, and its end."""
    major, arg, pos = head(data, pos)
    while skip_tags and major == 6:  # e.g. tag 258 on a set
        major, arg, pos = head(data, pos)
    if major != expected_major:
        kind = "an array" if expected_major == 4 else "a map"
        raise CborScanError(f"expected {kind} (major type {expected_major}), found major type {major}")
    per_entry = 2 if major == 5 else 1
    if arg is not None and arg * per_entry > len(data) - pos:
        raise CborScanError("CBOR container longer than the input")
    spans: list[Span] = []
    while arg is None or len(spans) < arg * per_entry:
        if arg is None and len(spans) % per_entry == 0:
            if pos >= len(data):
                raise CborScanError("truncated indefinite-length container")
            if data[pos] == _BREAK:
                return spans, pos + 1
        end = item_end(data, pos, 1, max_depth)
        spans.append((pos, end))
        pos = end
    return spans, pos


def array_spans(data: bytes, pos: int = 0, *, skip_tags: bool = True,
                max_depth: int = MAX_DEPTH) -> tuple[list[Span], int]:
    """The spans of the elements of the array at ``pos`` and the position after it.

    Leading tags (e.g. 258 on a set) are skipped unless ``skip_tags`` is false, when a tagged item is refused.
    """
    return _entry_spans(data, pos, 4, skip_tags, max_depth)


def map_spans(data: bytes, pos: int = 0, *, max_depth: int = MAX_DEPTH) -> tuple[list[tuple[Span, Span]], int]:
    """The (key span, value span) pairs of the map at ``pos`` (leading tags skipped) and the position after it."""
    spans, end = _entry_spans(data, pos, 5, True, max_depth)
    return list(zip(spans[0::2], spans[1::2], strict=True)), end


def split_array(data: bytes, *, max_depth: int = MAX_DEPTH) -> list[bytes]:
    """The exact bytes of each element of the (untagged) array that is all of ``data``; trailing bytes are refused."""
    spans, end = array_spans(data, 0, skip_tags=False, max_depth=max_depth)
    if end != len(data):
        raise CborScanError(f"{len(data) - end} bytes after the CBOR array")
    return [data[start:stop] for start, stop in spans]
