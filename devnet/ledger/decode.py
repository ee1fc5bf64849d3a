"""Decode a Conway transaction's CBOR into a :class:`Tx`, keeping the original bytes that are hashed."""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2

from devnet.ledger.address import address_to_text
from devnet.ledger.cborscan import CborScanError, array_items, decode_array, decode_map, head, map_items
from devnet.ledger.native import NativeScript, NativeScriptError
from devnet.ledger.strict import (
    TxDecodeError,
    check_metadata,
    decode_multiasset,
    decode_value_raw,
    require,
    same_bytes,
    unique,
    value_from_decoded,
)
from devnet.ledger.types import LedgerRejection, OutRef, Tx, TxOut

__all__ = ["MAX_TX_CBOR_BYTES", "TxDecodeError", "decode_output", "decode_tx"]

MAX_TX_CBOR_BYTES = 1 << 20  # refuse to even look at anything larger
_ERAS = ("shelley", "allegra", "mary", "alonzo", "babbage", "conway")


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


# Conway's body keys (``Cardano.Ledger.Conway.TxBody`` ``DecCBOR ConwayTxBodyRaw``: any other key is
# ``Invalid n``, a decoder failure; key 6, the pre-Conway update proposal, included).
_BODY_KEYS = frozenset({0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22})
# Fields guarded by ``emptyFailure``: "TxBody: '<name>' must be non-empty when supplied".
_NON_EMPTY = {4: "Certificates", 5: "Withdrawals", 9: "Mint", 13: "Collateral Inputs",
              14: "Required Signer Hashes", 18: "Reference Inputs", 19: "VotingProcedures",
              20: "ProposalProcedures"}
# Body sets whose duplicates Conway refuses (``decodeSetLikeEnforceNoDuplicates``).
_SETS = {0: "inputs", 13: "collateral inputs", 18: "reference inputs", 14: "required signers"}
_WITNESS_KEYS = frozenset(range(8))  # AlonzoTxWits: any other key is ``invalidField``
_OUTPUT_KEYS = frozenset({0, 1, 2, 3})


def _uint(obj: Any, what: str) -> int:
    require(isinstance(obj, int) and not isinstance(obj, bool) and 0 <= obj < 1 << 64,
            f"{what} must be an unsigned 64-bit integer")
    return int(obj)


def _out_ref(obj: Any) -> OutRef:
    require(isinstance(obj, (list, tuple)) and len(obj) == 2, "an input must be [transaction id, index]")
    tx_id, index = obj
    require(isinstance(tx_id, bytes) and len(tx_id) == 32, "an input's transaction id must be 32 bytes")
    return OutRef(tx_id.hex(), _uint(index, "an input index"))


def _set_items(obj: Any, raw: bytes, what: str) -> list[Any]:
    """The elements of a set (array, tag 258 optional), none merged: cbor2's list keeps them all; under tag
    258 cbor2 builds a Python set, so the elements are decoded again one by one from the original bytes."""
    if isinstance(obj, list):
        return obj
    items, end = decode_array(raw)
    require(end == len(raw), f"trailing bytes after the {what}")
    return [item for item, _ in items]


def _check_address(address: Any) -> None:
    require(isinstance(address, bytes) and 1 <= len(address) <= 128, "an address must be bytes")
    kind = address[0] >> 4
    # Cardano.Ledger.Address decodeAddrStateT: headers 0xE_/0xF_ are reward accounts, not addresses
    # (nor are the unassigned 0x9_..0xD_); an output can never pay one.
    require(kind <= 8, f"an output address cannot have header 0x{address[0]:02x} (reward account or unknown)")
    # The credentials are read exactly and every byte must be consumed: a base address is 57 bytes, an
    # enterprise one 29 (pointer addresses are variable; Byron ones are not checked).
    expected = 57 if kind <= 3 else 29 if kind in (6, 7) else None
    require(expected is None or len(address) == expected,
            f"a header-0x{address[0]:02x} address must be {expected} bytes, not {len(address)}")


def _output_fields(raw: bytes, obj: Any) -> tuple[Any, bytes | None, dict[int, Any]]:
    """(address, the value's original bytes or None when cbor2's reading of the whole output can be trusted
    (``strict.same_bytes``), datum/script fields) of an output."""
    if isinstance(obj, (list, tuple)):
        require(len(obj) in (2, 3), "a legacy output must be [address, value, datum hash?]")
        extra = {2: [0, obj[2]]} if len(obj) == 3 else {}
        return obj[0], None if same_bytes(obj, raw) else array_items(raw)[0][1], extra
    require(isinstance(obj, dict), "an output must be an array or a map")
    if 0 in obj and 1 in obj and set(obj) <= _OUTPUT_KEYS and same_bytes(obj, raw):
        return obj[0], None, {k: obj[k] for k in (2, 3) if k in obj}
    pairs = map_items(raw)[0]  # raw (key, value) spans: no decoder merges a repeated key here
    keys = [_small_key(key) for key, _ in pairs]
    unique(keys, "output map keys")
    require(0 in obj and 1 in obj and set(keys) <= _OUTPUT_KEYS, "an output map needs keys 0 and 1 only")
    value_raw = next(value_raw for key, value_raw in zip(keys, (v for _, v in pairs), strict=True) if key == 1)
    return obj[0], value_raw, {k: obj[k] for k in (2, 3) if k in obj}


def _small_key(raw: bytes) -> int:
    major, arg, end = head(raw, 0)
    require(major == 0 and arg is not None and end == len(raw), "an output map key must be an unsigned integer")
    assert arg is not None
    return arg


def decode_output(raw: bytes, obj: Any = None) -> TxOut:
    """One transaction output (legacy array or post-Alonzo map form); ``obj`` is ``raw`` decoded, if known."""
    if obj is None:
        obj = cbor2.loads(raw)
    address, value_raw, extra = _output_fields(raw, obj)
    datum_hash: str | None = None
    inline_datum: bytes | None = None
    script_ref: bytes | None = None
    if 2 in extra:
        option = extra[2]
        require(isinstance(option, (list, tuple)) and len(option) == 2 and option[0] in (0, 1),
                "a datum option must be [0, hash] or [1, data]")
        if option[0] == 0:
            require(isinstance(option[1], bytes) and len(option[1]) == 32, "a datum hash must be 32 bytes")
            datum_hash = option[1].hex()
        else:
            require(isinstance(option[1], cbor2.CBORTag) and option[1].tag == 24
                    and isinstance(option[1].value, bytes), "an inline datum must be tag 24 bytes")
            inline_datum = option[1].value
            datum_hash = _blake2b(inline_datum, 32)
    if 3 in extra:
        ref = extra[3]
        require(isinstance(ref, cbor2.CBORTag) and ref.tag == 24 and isinstance(ref.value, bytes),
                "a script reference must be tag 24 bytes")
        script_ref = ref.value
    _check_address(address)
    lovelace, assets = value_from_decoded(obj[1]) if value_raw is None else decode_value_raw(value_raw)
    try:
        text = address_to_text(address)
    except ValueError as exc:
        raise TxDecodeError(f"invalid address: {exc}") from exc
    return TxOut(text, address, lovelace, assets, datum_hash, inline_datum, script_ref, raw)


def _metadata(aux: Any, aux_raw: bytes) -> dict[int, Any] | None:
    """The metadata labels of Shelley (map), Allegra (``[metadata, scripts]``) or Alonzo (tag 259) auxiliary
    data, after checking the metadata's original bytes (``devnet.ledger.strict.check_metadata``)."""
    if isinstance(aux, dict):
        metadata, metadata_raw = aux, aux_raw
    elif isinstance(aux, (list, tuple)) and len(aux) == 2:
        metadata, metadata_raw = aux[0], array_items(aux_raw)[0][0]
    elif isinstance(aux, cbor2.CBORTag) and aux.tag == 259 and isinstance(aux.value, dict):
        triples = decode_map(aux_raw)[0]  # the tag's head is skipped
        unique([key for key, _, _ in triples], "auxiliary data keys")
        require({key for key, _, _ in triples} <= {0, 1, 2, 3, 4}, "unknown auxiliary data key")
        metadata = aux.value.get(0, {})
        metadata_raw = next((raw for key, _, raw in triples if key == 0), b"\xa0")
    else:
        raise TxDecodeError("malformed auxiliary data")
    require(isinstance(metadata, dict), "metadata must be a map")
    check_metadata(metadata_raw)
    return dict(metadata) if metadata else None


def _decoded_map(raw: bytes, what: str) -> tuple[dict[int, Any], dict[int, bytes]]:
    """A CBOR map with integer keys: decoded values and each value's original bytes."""
    triples, end = decode_map(raw)
    require(end == len(raw), f"trailing bytes after the {what}")
    values: dict[int, Any] = {}
    raws: dict[int, bytes] = {}
    for key, value, value_raw in triples:
        require(isinstance(key, int) and not isinstance(key, bool), f"{what} keys must be integers")
        require(key not in values, f"duplicate key {key} in the {what}")
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


def _check_body(body: dict[int, Any]) -> None:
    """Conway's body decoder: known keys only, non-empty guarded fields, sets without duplicates."""
    unknown = sorted(set(body) - _BODY_KEYS)
    require(not unknown, f"unknown transaction body key {unknown[0] if unknown else ''}")
    require(0 in body and 1 in body and 2 in body, "a transaction body needs inputs, outputs and a fee")
    for key, name in _NON_EMPTY.items():
        if key in body:
            require(bool(body[key]), f"TxBody: '{name}' must be non-empty when supplied")
    require(body.get(22, 1) != 0, "TxBody: 'Treasury Donation' must be non-zero when supplied")


def _body_set(body: dict[int, Any], raw_body: dict[int, bytes], key: int, convert: Any) -> list[Any]:
    if key not in raw_body:
        return []
    items = [convert(obj) for obj in _set_items(body[key], raw_body[key], _SETS[key])]
    unique(items, _SETS[key])
    return items


def _witnesses(witness: dict[int, Any], witness_raw: dict[int, bytes]) -> tuple[list[tuple[bytes, bytes]],
                                                                               list[NativeScript]]:
    """vkey witnesses and native scripts. Conway (PV 9-11) needs each present witness set non-empty and merges
    duplicates (``decodeNonEmptyList`` then ``Set.fromList``): a repeated witness is harmless."""
    unknown = sorted(set(witness) - _WITNESS_KEYS)
    require(not unknown, f"unknown witness set key {unknown[0] if unknown else ''}")
    for key, value in witness.items():
        if key != 5:  # redeemers (a map or a list) are refused as unsupported anyway
            require(bool(value), f"witness set key {key}: an empty set is not allowed")
    vkey_witnesses: list[tuple[bytes, bytes]] = []
    for item in _set_items(witness[0], witness_raw[0], "vkey witnesses") if 0 in witness_raw else []:
        require(isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, bytes) for x in item),
                "a vkey witness must be [vkey, signature]")
        vkey_witnesses.append((item[0], item[1]))
    native_scripts: list[NativeScript] = []
    if 1 in witness_raw:
        native_scripts = [NativeScript.from_decoded(obj, raw) for obj, raw in decode_array(witness_raw[1])[0]]
    return vkey_witnesses, native_scripts


def _decode(buf: bytes) -> Tx:
    parts, end = decode_array(buf)
    require(end == len(buf), "trailing bytes after the transaction")
    require(len(parts) == 4, "a Conway transaction is [body, witnesses, is_valid, auxiliary data]")
    (_, body_bytes), (_, witness_bytes), (is_valid, _), (aux, aux_bytes) = parts
    require(isinstance(is_valid, bool), "is_valid must be a boolean")
    body, raw_body = _decoded_map(body_bytes, "transaction body")
    _check_body(body)
    outputs = [decode_output(raw, obj) for obj, raw in decode_array(raw_body[1])[0]]
    witness, witness_raw = _decoded_map(witness_bytes, "witness set")
    vkey_witnesses, native_scripts = _witnesses(witness, witness_raw)
    aux_raw: bytes | None = None if aux_bytes == b"\xf6" else aux_bytes
    metadata = _metadata(aux, aux_bytes) if aux_raw is not None else None
    aux_hash = body.get(7)
    require(aux_hash is None or (isinstance(aux_hash, bytes) and len(aux_hash) == 32),
            "the auxiliary data hash must be 32 bytes")
    mint = decode_multiasset(raw_body[9], mint=True, decoded=body[9]) if 9 in raw_body else {}
    required = [h.hex() for h in _body_set(body, raw_body, 14, lambda h: _as_bytes(h, 28, "a required signer"))]
    network_id = body.get(15)
    require(network_id is None or network_id in (0, 1), "the network id must be 0 or 1")
    script_data_hash = body.get(11)
    return Tx(
        id=_blake2b(body_bytes, 32),
        cbor=buf,
        size=len(buf),
        ledger_size=1 + len(body_bytes) + len(witness_bytes) + len(aux_bytes),
        body=body,
        body_bytes=body_bytes,
        inputs=_body_set(body, raw_body, 0, _out_ref),
        reference_inputs=_body_set(body, raw_body, 18, _out_ref),
        collaterals=_body_set(body, raw_body, 13, _out_ref),
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
    require(isinstance(obj, bytes) and len(obj) == size, f"{what} must be {size} bytes")
    return bytes(obj)
