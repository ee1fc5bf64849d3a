"""Conway's decoder strictness, checked on the original bytes (``cbor2`` merges duplicate keys and sets).

Conway (protocol version 9 and later) refuses at decode time, before any ledger rule runs:
- duplicate elements in the body's sets (``Cardano.Ledger.Binary.Decoding.Decoder``
  ``decodeSetLikeEnforceNoDuplicates``, tag 258 allowed but not required) and duplicate map keys
  (``decodeMapLikeEnforceNoDuplicates``; the body's and witness set's ``SparseKeyed`` decoders too);
- empty policy maps, zero quantities and (in the mint) quantities outside Int64
  (``Cardano.Ledger.Mary.Value`` ``decodeMultiAssetMaps`` "Empty Assets are not allowed",
  ``decodeIntegerBounded64`` "mint field cannot be 0 (zero)" / overflow; output quantities are positive);
- metadata that is not a ``Metadatum`` (``Cardano.Ledger.Shelley.TxAuxData`` ``decodeMetadatum``: integers
  of major type 0/1 only, so no bignum tags, no other tags, no simple values; duplicate labels refused by
  the ``Map Word64 Metadatum`` decoder). A metadatum *map* is a list of pairs: its keys may repeat.
Metadata is walked iteratively: Conway sets no nesting limit.
"""

from __future__ import annotations

from typing import Any

import cbor2

from devnet.ledger.cborscan import CborScanError, array_items, head, map_items

__all__ = [
    "TxDecodeError", "check_metadata", "decode_multiasset", "decode_value_raw", "require", "same_bytes", "unique",
    "value_from_decoded",
]

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_UINT64_END = 1 << 64


class TxDecodeError(ValueError):
    """Malformed transaction CBOR (reported as JSON-RPC -32602 with one message per era)."""


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise TxDecodeError(reason)


def unique(values: list[Any], what: str) -> None:
    """Refuse a set or map with two equal elements (compared as decoded values, not as bytes)."""
    if len(set(values)) != len(values):
        raise TxDecodeError(f"duplicate elements in the {what} (Conway refuses them at decode)")


def _int_head(raw: bytes, what: str) -> int:
    """An integer of major type 0 or 1 (no bignum tag): its value."""
    major, arg, end = head(raw, 0)
    require(major in (0, 1) and arg is not None and end == len(raw), f"{what} must be a major type 0/1 integer")
    assert arg is not None
    return arg if major == 0 else -1 - arg


def _bytes_item(raw: bytes) -> bytes:
    """A byte string item's contents (a definite head read directly; chunked strings through cbor2)."""
    major, arg, pos = head(raw, 0)
    require(major == 2, "expected a byte string")
    if arg is not None and pos + arg == len(raw):
        return raw[pos:]
    value = cbor2.loads(raw)
    require(isinstance(value, bytes), "expected a byte string")
    return bytes(value)


def _map_items(raw: bytes) -> list[tuple[bytes, bytes]]:
    pairs, end = map_items(raw)
    require(end == len(raw), "trailing bytes after a map")
    return pairs


def same_bytes(decoded: Any, raw: bytes) -> bool:
    """True when cbor2 writes ``decoded`` back as exactly ``raw``: then nothing was merged (two equal keys
    would write back one entry fewer) and no integer was a bignum (cbor2 writes small ints untagged), so
    the decoded value can be checked as is. Anything else takes the byte walk."""
    try:
        return cbor2.dumps(decoded) == raw
    except (cbor2.CBOREncodeError, TypeError, ValueError):
        return False


def _quantity(qty: int, *, mint: bool) -> int:
    if mint:
        require(_INT64_MIN <= qty <= _INT64_MAX, f"overflow when decoding mint field: {qty}")
        require(qty != 0, "mint field cannot be 0 (zero)")
    else:
        require(0 < qty < _UINT64_END, f"an output's asset quantity must be positive, got {qty}")
    return qty


def decode_multiasset(raw: bytes, *, mint: bool, decoded: Any = None) -> dict[str, dict[str, int]]:
    """A multi-asset map (an output's, or the mint with signed Int64 quantities) from its original bytes;
    ``decoded`` is cbor2's reading of them, used when it writes back to the same bytes."""
    if isinstance(decoded, dict) and same_bytes(decoded, raw):
        return _multiasset_decoded(decoded, mint=mint)
    policies: dict[str, dict[str, int]] = {}
    for policy_raw, names_raw in _map_items(raw):
        policy = _bytes_item(policy_raw)
        require(len(policy) == 28, "a policy id must be 28 bytes")
        require(policy.hex() not in policies, "duplicate policy id in a multi-asset map")
        names = _map_items(names_raw)
        require(bool(names), "Empty Assets are not allowed (a policy with no asset names)")
        bucket: dict[str, int] = {}
        for name_raw, qty_raw in names:
            name = _bytes_item(name_raw)
            require(len(name) <= 32, "an asset name must be at most 32 bytes")
            require(name.hex() not in bucket, "duplicate asset name in a multi-asset map")
            bucket[name.hex()] = _quantity(_int_head(qty_raw, "an asset quantity"), mint=mint)
        policies[policy.hex()] = bucket
    return policies


def _multiasset_decoded(decoded: dict[Any, Any], *, mint: bool) -> dict[str, dict[str, int]]:
    policies: dict[str, dict[str, int]] = {}
    for policy, names in decoded.items():
        require(isinstance(policy, bytes) and len(policy) == 28, "a policy id must be 28 bytes")
        require(isinstance(names, dict), "a policy's assets must be a map")
        require(bool(names), "Empty Assets are not allowed (a policy with no asset names)")
        bucket: dict[str, int] = {}
        for name, qty in names.items():
            require(isinstance(name, bytes) and len(name) <= 32, "an asset name must be at most 32 bytes")
            require(isinstance(qty, int) and not isinstance(qty, bool), "an asset quantity must be an integer")
            bucket[name.hex()] = _quantity(qty, mint=mint)
        policies[policy.hex()] = bucket
    return policies


def decode_value_raw(raw: bytes, decoded: Any = None) -> tuple[int, dict[str, dict[str, int]]]:
    """An output value (a coin, or ``[coin, multi-asset]``) from its original bytes (``decoded``: cbor2's
    reading of them, trusted when it writes back to the same bytes)."""
    if decoded is not None and same_bytes(decoded, raw):
        return value_from_decoded(decoded)
    if raw[:1] and raw[0] >> 5 == 0:
        return _int_head(raw, "a coin amount"), {}
    items, end = array_items(raw)
    require(len(items) == 2 and end == len(raw), "a value must be a coin or [coin, multi-asset]")
    coin = _int_head(items[0], "a coin amount")
    require(coin >= 0, "a coin amount must be unsigned")
    return coin, decode_multiasset(items[1], mint=False)


def value_from_decoded(decoded: Any) -> tuple[int, dict[str, dict[str, int]]]:
    """An output value from cbor2's reading, for bytes that ``same_bytes`` vouched for."""
    if isinstance(decoded, int) and not isinstance(decoded, bool):
        require(0 <= decoded < _UINT64_END, "a coin amount must be an unsigned 64-bit integer")
        return decoded, {}
    require(isinstance(decoded, list) and len(decoded) == 2 and isinstance(decoded[0], int)
            and not isinstance(decoded[0], bool) and 0 <= decoded[0] < _UINT64_END
            and isinstance(decoded[1], dict), "a value must be a coin or [coin, multi-asset]")
    return decoded[0], _multiasset_decoded(decoded[1], mint=False)


def check_metadata(raw: bytes) -> None:
    """Refuse metadata labels that repeat or are not unsigned 64-bit, and metadatums that are not one."""
    labels: list[int] = []
    for label_raw, value_raw in _map_items(raw):
        label = _int_head(label_raw, "a metadata label")
        require(label >= 0, "a metadata label must be an unsigned 64-bit integer")
        labels.append(label)
        _check_metadatum(value_raw)
    unique(labels, "metadata labels")


def _check_metadatum(raw: bytes) -> None:
    """Walk one metadatum without recursion: ints, byte/text strings, arrays and maps only."""
    pos, pending = 0, [1]  # items still expected at each open container level (-1: until a break)
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        if pending[-1] < 0 and raw[pos : pos + 1] == b"\xff":
            pending.pop()
            pos += 1
            continue
        if pending[-1] > 0:
            pending[-1] -= 1
        major, arg, pos = head(raw, pos)
        if major in (0, 1):
            continue
        if major in (2, 3):
            pos = _string_end(raw, pos, major, arg)
        elif major in (4, 5):
            pending.append(-1 if arg is None else arg * (2 if major == 5 else 1))
        else:
            kind = "a CBOR tag (bignums included)" if major == 6 else "a simple value or float"
            raise TxDecodeError(f"a metadatum cannot be {kind}")
    require(pos == len(raw), "trailing bytes after a metadatum")


def _string_end(raw: bytes, pos: int, major: int, arg: int | None) -> int:
    if arg is not None:
        if pos + arg > len(raw):
            raise CborScanError("unexpected end of input")
        return pos + arg
    while raw[pos : pos + 1] != b"\xff":  # indefinite: definite chunks of the same major type
        chunk_major, chunk_len, pos = head(raw, pos)
        require(chunk_major == major and chunk_len is not None, "malformed indefinite-length string")
        assert chunk_len is not None
        pos = _string_end(raw, pos, major, chunk_len)
    return pos + 1
