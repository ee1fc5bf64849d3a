"""A small strict CBOR decoder for transaction bytes, written for what a policy must be sure of.

cbor2 accepts inputs a policy must not: a map with a repeated key silently keeps the last value, so a
body could say one thing to us and another to the ledger. This decoder is strict where it matters:

- duplicate map keys, trailing bytes, truncated items, reserved additional-info values → error;
- only the types a transaction uses: unsigned/negative integers up to 64 bits, byte and text strings,
  arrays, maps (keys: int, bytes or text), tags (kept as :class:`Tagged`), false/true/null;
- floats, undefined, other simple values and big-number tags → error; nesting depth is bounded.

Indefinite-length arrays, maps and strings are accepted (wallets emit them). It also returns each
top-level item's byte span so the original body bytes are hashed, never a re-encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DEPTH", "CborError", "Tagged", "decode", "decode_item"]

MAX_DEPTH = 24


class CborError(ValueError):
    """The bytes are not CBOR this decoder accepts."""


@dataclass(frozen=True, slots=True)
class Tagged:
    tag: int
    value: Any


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    if info == 24:
        end = pos + 1
    elif info == 25:
        end = pos + 2
    elif info == 26:
        end = pos + 4
    elif info == 27:
        end = pos + 8
    else:
        raise CborError(f"reserved additional information {info} at byte {pos - 1}")
    if end > len(data):
        raise CborError("truncated CBOR item")
    return int.from_bytes(data[pos:end], "big"), end


def _string_chunks(data: bytes, pos: int, major: int, depth: int) -> tuple[bytes, int]:
    parts: list[bytes] = []
    while True:
        if pos >= len(data):
            raise CborError("truncated indefinite-length string")
        if data[pos] == 0xFF:
            return b"".join(parts), pos + 1
        if data[pos] >> 5 != major or data[pos] & 0x1F == 31:
            raise CborError("bad chunk inside an indefinite-length string")
        chunk, pos = decode_item(data, pos, depth + 1)
        parts.append(chunk.encode() if isinstance(chunk, str) else chunk)


def _container(data: bytes, pos: int, major: int, info: int, depth: int) -> tuple[Any, int]:
    indefinite = info == 31
    count = 0
    if not indefinite:
        count, pos = _argument(data, pos, info)
    if major == 4:
        items: list[Any] = []
        while indefinite or len(items) < count:
            if indefinite and pos < len(data) and data[pos] == 0xFF:
                return items, pos + 1
            item, pos = decode_item(data, pos, depth + 1)
            items.append(item)
        return items, pos
    result: dict[Any, Any] = {}
    seen = 0
    while indefinite or seen < count:
        if indefinite and pos < len(data) and data[pos] == 0xFF:
            return result, pos + 1
        key, pos = decode_item(data, pos, depth + 1)
        if not isinstance(key, int | str | bytes) or isinstance(key, bool):
            raise CborError(f"map key of type {type(key).__name__} is not allowed")
        if key in result:
            raise CborError(f"duplicate map key {key!r}")
        result[key], pos = decode_item(data, pos, depth + 1)
        seen += 1
    return result, pos


def decode_item(data: bytes, pos: int = 0, depth: int = 0) -> tuple[Any, int]:
    """Decode one item starting at ``pos``; return (value, position after it)."""
    if depth > MAX_DEPTH:
        raise CborError(f"nesting deeper than {MAX_DEPTH}")
    if pos >= len(data):
        raise CborError("truncated CBOR item")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if major == 0 or major == 1:
        value, pos = _argument(data, pos, info)
        return (value if major == 0 else -1 - value), pos
    if major == 2 or major == 3:
        if info == 31:
            raw, pos = _string_chunks(data, pos, major, depth)
        else:
            length, pos = _argument(data, pos, info)
            end = pos + length
            if end > len(data):
                raise CborError("truncated string")
            raw, pos = bytes(data[pos:end]), end
        if major == 2:
            return raw, pos
        try:
            return raw.decode("utf-8"), pos
        except UnicodeDecodeError:
            raise CborError("text string is not valid UTF-8") from None
    if major == 4 or major == 5:
        return _container(data, pos, major, info, depth)
    if major == 6:
        tag, pos = _argument(data, pos, info)
        if tag in (2, 3):
            raise CborError("big-number tags are not allowed")
        value, pos = decode_item(data, pos, depth + 1)
        return Tagged(tag, value), pos
    if info == 20:
        return False, pos
    if info == 21:
        return True, pos
    if info == 22:
        return None, pos
    if info == 31:
        raise CborError("unexpected break")
    raise CborError(f"simple value or float (0x{initial:02x}) is not allowed")


def decode(data: bytes) -> Any:
    """Decode exactly one item; trailing bytes are an error."""
    value, end = decode_item(data, 0)
    if end != len(data):
        raise CborError(f"{len(data) - end} trailing bytes after the CBOR item")
    return value
