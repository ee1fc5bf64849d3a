"""A small strict CBOR decoder for transaction bytes, written for what a policy must be sure of.

cbor2 accepts inputs a policy must not: a map with a repeated key silently keeps the last value, so a
body could say one thing to us and another to the ledger. This decoder is strict where it matters:

- duplicate map keys, trailing bytes, truncated items, reserved additional-info values → error;
- only the types a transaction uses: unsigned/negative integers up to 64 bits, byte and text strings,
  arrays, maps (keys: int, bytes or text), tags (kept as :class:`Tagged`), false/true/null;
- floats, undefined, other simple values and big-number tags → error; nesting depth is bounded.

Indefinite-length arrays, maps and strings are accepted (wallets emit them). It also returns each
top-level item's byte span so the original body bytes are hashed, never a re-encoding.

It runs for every signing request, so the decoder is iterative (an explicit stack, no Python call per
item) and reads short arguments inline; ``tests/signer/cbor_reference.py`` keeps the first, recursive
version, and a differential test holds the two to the same values and the same refusals.
(cbor2's C decoder plus a re-encoding check was measured too: its fixed cost per call made it slower.)
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


_NO_KEY: Any = object()  # a map frame that waits for its next key
_ARG_BYTES = (1, 2, 4, 8)  # additional information 24..27
_KEY_TYPES = frozenset({int, str, bytes})  # exact types: bool (a subclass of int) is not a key


def _chunks(data: bytes, pos: int, major: int, depth: int) -> tuple[bytes, int]:
    """The joined chunks of an indefinite-length string whose header ended at ``pos`` (rare: recursive)."""
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


def _scalar(data: bytes, pos: int, initial: int, depth: int) -> tuple[Any, int]:
    """false/true/null, an indefinite-length string, or an error, for the header byte ``initial``."""
    major, info = initial >> 5, initial & 0x1F
    if major == 7:
        if info == 20:
            return False, pos
        if info == 21:
            return True, pos
        if info == 22:
            return None, pos
        if info == 31:
            raise CborError("unexpected break")
        raise CborError(f"simple value or float (0x{initial:02x}) is not allowed")
    raw, pos = _chunks(data, pos, major, depth)
    if major == 2:
        return raw, pos
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise CborError("text string is not valid UTF-8") from None


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    if info > 27:
        raise CborError(f"reserved additional information {info} at byte {pos - 1}")
    end = pos + _ARG_BYTES[info - 24]
    if end > len(data):
        raise CborError("truncated CBOR item")
    return int.from_bytes(data[pos:end], "big"), end


def decode_item(data: bytes, pos: int = 0, depth: int = 0) -> tuple[Any, int]:
    """Decode one item starting at ``pos`` (``depth`` levels inside others); return (value, position after it).

    Iterative, with an explicit stack of open arrays, maps and tags, so an item costs no Python call:
    this runs for every request. Frames are ``[items, remaining (-1: indefinite), pending key, tag]``.
    """
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    stack: list[list[Any]] = []
    while True:
        if pos >= size:
            raise CborError("truncated CBOR item")
        initial = data[pos]
        pos += 1
        if initial == 0xFF and stack and stack[-1][1] < 0 and stack[-1][2] is _NO_KEY:
            value = stack.pop()[0]  # the break that closes an indefinite-length array or map
        else:
            if depth + len(stack) > MAX_DEPTH:
                raise CborError(f"nesting deeper than {MAX_DEPTH}")
            major, info = initial >> 5, initial & 0x1F
            if info < 24:
                arg = info
            elif info == 24 and major != 7 and pos < size:
                arg = data[pos]
                pos += 1
            elif info == 31 and (major == 4 or major == 5):
                arg = -1
            elif major == 7 or (info == 31 and (major == 2 or major == 3)):
                arg = 0  # decided by _scalar
            else:
                arg, pos = _argument(data, pos, info)
            if major == 0:
                value = arg
            elif major == 2 and info != 31:
                end = pos + arg
                if end > size:
                    raise CborError("truncated string")
                value, pos = bytes(data[pos:end]), end
            elif major == 3 and info != 31:
                end = pos + arg
                if end > size:
                    raise CborError("truncated string")
                try:
                    value = data[pos:end].decode("utf-8")
                except UnicodeDecodeError:
                    raise CborError("text string is not valid UTF-8") from None
                pos = end
            elif major == 4 or major == 5:
                if arg == 0:
                    value = [] if major == 4 else {}
                else:
                    stack.append([[] if major == 4 else {}, arg, _NO_KEY, None])
                    continue
            elif major == 1:
                value = -1 - arg
            elif major == 6:
                if arg in (2, 3):
                    raise CborError("big-number tags are not allowed")
                stack.append([None, 1, _NO_KEY, arg])
                continue
            else:
                value, pos = _scalar(data, pos, initial, depth + len(stack))
        while True:  # hand the finished value to the open containers, closing those it completes
            if not stack:
                return value, pos
            frame = stack[-1]
            items = frame[0]
            if frame[3] is not None:
                stack.pop()
                value = Tagged(frame[3], value)
                continue
            if type(items) is list:
                items.append(value)
            elif frame[2] is _NO_KEY:
                if type(value) not in _KEY_TYPES:
                    raise CborError(f"map key of type {type(value).__name__} is not allowed")
                if value in items:
                    raise CborError(f"duplicate map key {value!r}")
                frame[2] = value
                break
            else:
                items[frame[2]] = value
                frame[2] = _NO_KEY
            if frame[1] > 0:
                frame[1] -= 1
                if frame[1] == 0:
                    stack.pop()
                    value = items
                    continue
            break


def decode(data: bytes) -> Any:
    """Decode exactly one item; trailing bytes are an error."""
    value, end = decode_item(data, 0)
    if end != len(data):
        raise CborError(f"{len(data) - end} trailing bytes after the CBOR item")
    return value
