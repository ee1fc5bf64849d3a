"""Decode a Conway transaction's CBOR into a :class:`Tx`, keeping the original bytes that are hashed."""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2

from devnet.ledger.address import address_to_text
from devnet.ledger.cborscan import CborScanError, decode_array, decode_map
from devnet.ledger.native import NativeScript, NativeScriptError
from devnet.ledger.types import LedgerRejection, OutRef, Tx, TxOut

__all__ = ["MAX_TX_CBOR_BYTES", "TxDecodeError", "decode_output", "decode_tx", "decode_value"]

MAX_TX_CBOR_BYTES = 1 << 20  # refuse to even look at anything larger
_ERAS = ("shelley", "allegra", "mary", "alonzo", "babbage", "conway")


class TxDecodeError(ValueError):
    """Malformed transaction CBOR (reported as JSON-RPC -32602 with one message per era)."""


def _reject(reason: str) -> LedgerRejection:
    data = {era: reason if era == "conway" else f"{reason} (not a valid {era} transaction either)"
            for era in _ERAS}
    return LedgerRejection(
        -32602,
        "Invalid transaction; It looks like the given transaction wasn't well-formed. Note that I try to "
        "decode the transaction in every possible era and it was malformed in ALL eras. Yet, I didn't "
        "manage to pinpoint what era you were targeting. Here are the errors for each era.",
        data,
    )


def _blake2b(data: bytes, size: int) -> str:
    return hashlib.blake2b(data, digest_size=size).hexdigest()


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise TxDecodeError(reason)


def _as_list(obj: Any, what: str) -> list[Any]:
    if isinstance(obj, cbor2.CBORTag) and obj.tag == 258:
        obj = obj.value
    _require(isinstance(obj, (list, tuple, set, frozenset)), f"{what} must be an array or a set")
    return list(obj)


def _uint(obj: Any, what: str) -> int:
    _require(isinstance(obj, int) and not isinstance(obj, bool) and 0 <= obj < 1 << 64,
             f"{what} must be an unsigned 64-bit integer")
    return int(obj)


def _out_ref(obj: Any) -> OutRef:
    _require(isinstance(obj, (list, tuple)) and len(obj) == 2, "an input must be [transaction id, index]")
    tx_id, index = obj
    _require(isinstance(tx_id, bytes) and len(tx_id) == 32, "an input's transaction id must be 32 bytes")
    return OutRef(tx_id.hex(), _uint(index, "an input index"))


def _multiasset(obj: Any, *, signed: bool) -> dict[str, dict[str, int]]:
    _require(isinstance(obj, dict), "a multi-asset value must be a map")
    assets: dict[str, dict[str, int]] = {}
    for policy, names in obj.items():
        _require(isinstance(policy, bytes) and len(policy) == 28, "a policy id must be 28 bytes")
        _require(isinstance(names, dict), "a policy's assets must be a map")
        bucket: dict[str, int] = {}
        for name, qty in names.items():
            _require(isinstance(name, bytes) and len(name) <= 32, "an asset name must be at most 32 bytes")
            _require(isinstance(qty, int) and not isinstance(qty, bool), "an asset quantity must be an integer")
            _require(-(1 << 63) <= qty < 1 << 64 and (signed or qty >= 0), "asset quantity out of range")
            bucket[name.hex()] = qty
        assets[policy.hex()] = bucket
    return assets


def decode_value(obj: Any) -> tuple[int, dict[str, dict[str, int]]]:
    if isinstance(obj, int) and not isinstance(obj, bool):
        return _uint(obj, "a coin amount"), {}
    _require(isinstance(obj, (list, tuple)) and len(obj) == 2, "a value must be a coin or [coin, multi-asset]")
    return _uint(obj[0], "a coin amount"), _multiasset(obj[1], signed=False)


def decode_output(raw: bytes, obj: Any = None) -> TxOut:
    """One transaction output (legacy array or post-Alonzo map form); ``obj`` is ``raw`` decoded, if known."""
    if obj is None:
        obj = cbor2.loads(raw)
    datum_hash: str | None = None
    inline_datum: bytes | None = None
    script_ref: bytes | None = None
    if isinstance(obj, (list, tuple)):
        _require(len(obj) in (2, 3), "a legacy output must be [address, value, datum hash?]")
        address, value = obj[0], obj[1]
        if len(obj) == 3:
            _require(isinstance(obj[2], bytes) and len(obj[2]) == 32, "a datum hash must be 32 bytes")
            datum_hash = obj[2].hex()
    elif isinstance(obj, dict):
        _require(0 in obj and 1 in obj and set(obj) <= {0, 1, 2, 3}, "an output map needs keys 0 and 1 only")
        address, value = obj[0], obj[1]
        if 2 in obj:
            option = obj[2]
            _require(isinstance(option, (list, tuple)) and len(option) == 2 and option[0] in (0, 1),
                     "a datum option must be [0, hash] or [1, data]")
            if option[0] == 0:
                _require(isinstance(option[1], bytes) and len(option[1]) == 32, "a datum hash must be 32 bytes")
                datum_hash = option[1].hex()
            else:
                _require(isinstance(option[1], cbor2.CBORTag) and option[1].tag == 24
                         and isinstance(option[1].value, bytes), "an inline datum must be tag 24 bytes")
                inline_datum = option[1].value
                datum_hash = _blake2b(inline_datum, 32)
        if 3 in obj:
            _require(isinstance(obj[3], cbor2.CBORTag) and obj[3].tag == 24 and isinstance(obj[3].value, bytes),
                     "a script reference must be tag 24 bytes")
            script_ref = obj[3].value
    else:
        raise TxDecodeError("an output must be an array or a map")
    _require(isinstance(address, bytes) and 1 <= len(address) <= 128, "an address must be bytes")
    lovelace, assets = decode_value(value)
    try:
        text = address_to_text(address)
    except ValueError as exc:
        raise TxDecodeError(f"invalid address: {exc}") from exc
    return TxOut(text, address, lovelace, assets, datum_hash, inline_datum, script_ref, raw)


def _metadata(aux: Any) -> dict[int, Any] | None:
    if isinstance(aux, dict):
        metadata = aux
    elif isinstance(aux, (list, tuple)) and len(aux) == 2:
        metadata = aux[0]
    elif isinstance(aux, cbor2.CBORTag) and aux.tag == 259 and isinstance(aux.value, dict):
        metadata = aux.value.get(0, {})
    else:
        raise TxDecodeError("malformed auxiliary data")
    _require(isinstance(metadata, dict), "metadata must be a map")
    for label in metadata:
        _uint(label, "a metadata label")
    return dict(metadata) if metadata else None


def _decoded_map(raw: bytes, what: str) -> tuple[dict[int, Any], dict[int, bytes]]:
    """A CBOR map with integer keys: decoded values and each value's original bytes."""
    triples, end = decode_map(raw)
    _require(end == len(raw), f"trailing bytes after the {what}")
    values: dict[int, Any] = {}
    raws: dict[int, bytes] = {}
    for key, value, value_raw in triples:
        _require(isinstance(key, int) and not isinstance(key, bool), f"{what} keys must be integers")
        _require(key not in values, f"duplicate key {key} in the {what}")
        values[key] = value
        raws[key] = value_raw
    return values, raws


def decode_tx(tx_cbor: bytes) -> Tx:
    """Decode a Conway transaction; raises LedgerRejection(-32602) when it is not one."""
    if not isinstance(tx_cbor, (bytes, bytearray)) or not tx_cbor:
        raise _reject("empty transaction")
    if len(tx_cbor) > MAX_TX_CBOR_BYTES:
        raise _reject(f"transaction of {len(tx_cbor)} bytes is larger than {MAX_TX_CBOR_BYTES}")
    try:
        return _decode(bytes(tx_cbor))
    except (TxDecodeError, CborScanError, NativeScriptError) as exc:
        raise _reject(str(exc)) from None
    except (cbor2.CBORDecodeError, ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:
        raise _reject(f"malformed CBOR: {exc}") from None


def _decode(buf: bytes) -> Tx:
    parts, end = decode_array(buf)
    _require(end == len(buf), "trailing bytes after the transaction")
    _require(len(parts) == 4, "a Conway transaction is [body, witnesses, is_valid, auxiliary data]")
    (_, body_bytes), (_, witness_bytes), (is_valid, _), (aux, aux_bytes) = parts
    _require(isinstance(is_valid, bool), "is_valid must be a boolean")
    body, raw_body = _decoded_map(body_bytes, "transaction body")
    _require(0 in body and 1 in body and 2 in body, "a transaction body needs inputs, outputs and a fee")
    outputs = [decode_output(raw, obj) for obj, raw in decode_array(raw_body[1])[0]]
    witness, witness_raw = _decoded_map(witness_bytes, "witness set")
    vkey_witnesses: list[tuple[bytes, bytes]] = []
    for item in _as_list(witness.get(0, []), "vkey witnesses"):
        _require(isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, bytes) for x in item),
                 "a vkey witness must be [vkey, signature]")
        vkey_witnesses.append((item[0], item[1]))
    native_scripts: list[NativeScript] = []
    if 1 in witness_raw:
        native_scripts = [NativeScript.from_decoded(obj, raw) for obj, raw in decode_array(witness_raw[1])[0]]
    aux_raw: bytes | None = None if aux_bytes == b"\xf6" else aux_bytes
    metadata = _metadata(aux) if aux_raw is not None else None
    aux_hash = body.get(7)
    _require(aux_hash is None or (isinstance(aux_hash, bytes) and len(aux_hash) == 32),
             "the auxiliary data hash must be 32 bytes")
    mint = _multiasset(body.get(9, {}), signed=True)
    required = [_as_bytes(h, 28, "a required signer").hex() for h in _as_list(body.get(14, []), "required signers")]
    network_id = body.get(15)
    _require(network_id is None or network_id in (0, 1), "the network id must be 0 or 1")
    script_data_hash = body.get(11)
    return Tx(
        id=_blake2b(body_bytes, 32),
        cbor=buf,
        size=len(buf),
        body=body,
        body_bytes=body_bytes,
        inputs=[_out_ref(x) for x in _as_list(body[0], "inputs")],
        reference_inputs=[_out_ref(x) for x in _as_list(body.get(18, []), "reference inputs")],
        collaterals=[_out_ref(x) for x in _as_list(body.get(13, []), "collateral inputs")],
        outputs=outputs,
        fee=_uint(body[2], "the fee"),
        ttl=None if body.get(3) is None else _uint(body[3], "the time to live"),
        validity_start=None if body.get(8) is None else _uint(body[8], "the validity start"),
        mint=mint,
        network_id=network_id,
        required_signers=required,
        vkey_witnesses=vkey_witnesses,
        native_scripts=native_scripts,
        metadata=metadata,
        auxiliary_data_raw=aux_raw,
        auxiliary_data_hash=aux_hash.hex() if aux_hash else None,
        script_data_hash=script_data_hash.hex() if isinstance(script_data_hash, bytes) else None,
        is_valid=is_valid,
        witness_set=witness,
    )


def _as_bytes(obj: Any, size: int, what: str) -> bytes:
    _require(isinstance(obj, bytes) and len(obj) == size, f"{what} must be {size} bytes")
    return bytes(obj)
