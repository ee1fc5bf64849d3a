"""Strict decoding of an unsigned transaction into the parts the policy reads.

Input is either a full transaction ``[body, witness_set, is_valid, auxiliary_data]`` or a bare body
map. The body's **original bytes** are kept: the transaction id, and what is signed, is
blake2b-256 of exactly those bytes. Every structural problem is a ``MALFORMED_TRANSACTION`` refusal;
the policy (``signer.policy``) then decides what the well-formed body may do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signer.cbor_strict import CborError, Tagged, decode_item
from signer.chain import blake2b_256
from signer.errors import Refusal

__all__ = [
    "MAX_TX_BYTES",
    "DecodedTx",
    "Output",
    "decode_transaction",
    "hash_field",
    "malformed",
    "parse_inputs",
    "parse_key_hashes",
    "parse_multiasset",
    "parse_output",
    "parse_value",
    "set_items",
    "uint_field",
]

MAX_TX_BYTES = 16 * 1024
_MALFORMED = "MALFORMED_TRANSACTION"


def malformed(detail: str) -> Refusal:
    return Refusal(_MALFORMED, detail)


@dataclass(frozen=True)
class DecodedTx:
    body_bytes: bytes
    body: dict[int, Any]
    tx_id: bytes
    aux_bytes: bytes | None = None
    aux: Any = None
    full: bool = False
    witness_set: dict[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Output:
    address: bytes
    lovelace: int
    assets: dict[bytes, dict[bytes, int]]
    has_datum: bool
    has_script_ref: bool


def _header_count(data: bytes) -> tuple[int, int]:
    """Array length and header size of the top-level array (definite lengths only)."""
    initial = data[0]
    if initial >> 5 != 4 or initial & 0x1F > 27:
        raise malformed("a transaction is a definite-length CBOR array of 4 items (or a bare body map)")
    info = initial & 0x1F
    if info < 24:
        return info, 1
    size = 1 << (info - 24)
    return int.from_bytes(data[1:1 + size], "big"), 1 + size


def decode_transaction(data: bytes) -> DecodedTx:
    """Decode ``data`` strictly; a Refusal(MALFORMED_TRANSACTION) when it is not a plausible tx."""
    if not data:
        raise malformed("empty transaction bytes")
    if len(data) > MAX_TX_BYTES:
        raise malformed(f"transaction is {len(data)} bytes; the limit is {MAX_TX_BYTES}")
    try:
        if data[0] >> 5 == 5:
            body, end = decode_item(data, 0)
            if end != len(data):
                raise malformed("trailing bytes after the transaction body")
            return _checked(DecodedTx(body_bytes=data, body=body, tx_id=blake2b_256(data)))
        count, pos = _header_count(data)
        if count != 4:
            raise malformed(f"a transaction array has 4 items, this one has {count}")
        spans = []
        items = []
        for _ in range(4):
            item, end = decode_item(data, pos, 1)
            spans.append((pos, end))
            items.append(item)
            pos = end
        if pos != len(data):
            raise malformed("trailing bytes after the transaction")
    except CborError as exc:
        raise malformed(f"not valid CBOR: {exc}") from None
    body, witness_set, is_valid, aux = items
    if is_valid is not True:
        raise malformed("the transaction's is_valid flag must be true")
    if not isinstance(witness_set, dict):
        raise malformed("the witness set must be a map")
    body_bytes = data[spans[0][0]:spans[0][1]]
    aux_bytes = None if aux is None else data[spans[3][0]:spans[3][1]]
    return _checked(DecodedTx(body_bytes=body_bytes, body=body, tx_id=blake2b_256(body_bytes),
                              aux_bytes=aux_bytes, aux=aux, full=True, witness_set=witness_set))


def _checked(tx: DecodedTx) -> DecodedTx:
    if not isinstance(tx.body, dict) or not all(isinstance(k, int) for k in tx.body):
        raise malformed("the transaction body must be a map with integer keys")
    for key in (0, 1, 2):
        if key not in tx.body:
            raise malformed(f"the body lacks required field {key}")
    return tx


def _uint(value: Any, what: str, bits: int = 64) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise malformed(f"{what} must be an unsigned {bits}-bit integer")
    return value


def _hash(value: Any, size: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise malformed(f"{what} must be {size} bytes")
    return value


def set_items(value: Any, what: str) -> list[Any]:
    """A CDDL ``set<T>``: a plain array, or the same under tag 258."""
    if isinstance(value, Tagged):
        if value.tag != 258:
            raise malformed(f"{what}: unexpected tag {value.tag}")
        value = value.value
    if not isinstance(value, list):
        raise malformed(f"{what} must be an array")
    return value


def parse_inputs(value: Any) -> list[tuple[bytes, int]]:
    items = set_items(value, "inputs")
    if not items:
        raise malformed("a transaction needs at least one input")
    inputs = []
    for item in items:
        if not isinstance(item, list) or len(item) != 2:
            raise malformed("an input is [transaction id, index]")
        inputs.append((_hash(item[0], 32, "input transaction id"), _uint(item[1], "input index", 16)))
    if len(set(inputs)) != len(inputs):
        raise malformed("the same input appears twice")
    return inputs


def parse_multiasset(value: Any, what: str, *, signed: bool) -> dict[bytes, dict[bytes, int]]:
    if not isinstance(value, dict):
        raise malformed(f"{what} must be a map of policy id to assets")
    result: dict[bytes, dict[bytes, int]] = {}
    for policy, assets in value.items():
        _hash(policy, 28, f"{what} policy id")
        if not isinstance(assets, dict) or not assets:
            raise malformed(f"{what}: assets of a policy must be a non-empty map")
        for name, quantity in assets.items():
            if not isinstance(name, bytes) or len(name) > 32:
                raise malformed(f"{what}: an asset name is at most 32 bytes")
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                raise malformed(f"{what}: quantities are integers")
            low = -(1 << 63) if signed else 1
            if not low <= quantity < (1 << 63 if signed else 1 << 64) or quantity == 0:
                raise malformed(f"{what}: quantity {quantity} out of range")
        result[policy] = dict(assets)
    return result


def parse_value(value: Any) -> tuple[int, dict[bytes, dict[bytes, int]]]:
    if isinstance(value, int) and not isinstance(value, bool):
        return _uint(value, "output lovelace"), {}
    if isinstance(value, list) and len(value) == 2:
        return _uint(value[0], "output lovelace"), parse_multiasset(value[1], "output value", signed=False)
    raise malformed("an output value is a coin or [coin, multiasset]")


def parse_output(value: Any) -> Output:
    if isinstance(value, list):
        if len(value) not in (2, 3):
            raise malformed("a legacy output is [address, value, datum hash?]")
        address, amount = value[0], value[1]
        has_datum, has_ref = len(value) == 3, False
    elif isinstance(value, dict):
        if not set(value) <= {0, 1, 2, 3} or 0 not in value or 1 not in value:
            raise malformed("an output map has keys 0 (address), 1 (value), 2 (datum)?, 3 (script ref)?")
        address, amount = value[0], value[1]
        has_datum, has_ref = 2 in value, 3 in value
    else:
        raise malformed("an output is an array or a map")
    if not isinstance(address, bytes) or not 1 <= len(address) <= 128:
        raise malformed("an output address must be bytes")
    lovelace, assets = parse_value(amount)
    return Output(address, lovelace, assets, has_datum, has_ref)


def parse_key_hashes(value: Any, what: str) -> list[bytes]:
    return [_hash(item, 28, what) for item in set_items(value, what)]


def uint_field(body: dict[int, Any], key: int, what: str) -> int | None:
    return None if key not in body else _uint(body[key], what)


def hash_field(body: dict[int, Any], key: int, size: int, what: str) -> bytes | None:
    return None if key not in body else _hash(body[key], size, what)
