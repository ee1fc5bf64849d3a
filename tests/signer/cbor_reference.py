"""The signer's first strict CBOR decoder (recursive, one Python call per item), kept as the oracle that
``signer.cbor_strict``'s faster iterative decoder is checked against: same values, same refusals."""

from __future__ import annotations

from typing import Any

from signer.cbor_strict import MAX_DEPTH, CborError, Tagged


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    sizes = {24: 1, 25: 2, 26: 4, 27: 8}
    if info not in sizes:
        raise CborError(f"reserved additional information {info} at byte {pos - 1}")
    end = pos + sizes[info]
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
    if depth > MAX_DEPTH:
        raise CborError(f"nesting deeper than {MAX_DEPTH}")
    if pos >= len(data):
        raise CborError("truncated CBOR item")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if major in (0, 1):
        value, pos = _argument(data, pos, info)
        return (value if major == 0 else -1 - value), pos
    if major in (2, 3):
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
    if major in (4, 5):
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
