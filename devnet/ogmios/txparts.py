"""Decoding a transaction's parts with their original bytes: body fields, witnesses, outputs, scripts,
auxiliary data. Hashes (tx id, script hashes, datum hashes) are always taken over the bytes as sent.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import cbor2

from devnet.ogmios import cborraw
from devnet.ogmios.encoding import blake2b_224

__all__ = [
    "DecodedOutput",
    "TxDecodeError",
    "TxParts",
    "decode_output",
    "decode_output_value",
    "metadata_parts",
    "native_script_json",
    "script_hash",
    "split_transaction",
    "untag",
]

PLUTUS_LANGUAGES = {1: "plutus:v1", 2: "plutus:v2", 3: "plutus:v3"}


class TxDecodeError(ValueError):
    """The bytes are not a transaction this serializer understands."""


@dataclass(slots=True)
class TxParts:
    body_raw: bytes
    body: dict[Any, Any]  # decoded body fields
    witnesses: dict[Any, Any]  # decoded witness-set fields
    witnesses_raw: bytes
    is_valid: bool
    auxiliary: bytes | None  # original bytes of the auxiliary data
    _witness_raw_fields: dict[Any, bytes] | None = None

    def witness_raw(self, key: int) -> bytes:
        """Original bytes of one witness-set field (native scripts and datums are hashed as sent)."""
        if self._witness_raw_fields is None:
            self._witness_raw_fields = {k: raw for k, _, raw in cborraw.map_entries(self.witnesses_raw)}
        return self._witness_raw_fields[key]


def split_transaction(tx_cbor: bytes) -> TxParts:
    """``[body, witnesses, is_valid?, auxiliary_data]``: decoded once, original bytes kept for hashing."""
    try:
        items = cborraw.array_entries(tx_cbor)
        if len(items) not in (3, 4) or sum(len(raw) for _, raw in items) + _head_size(tx_cbor) != len(tx_cbor):
            raise TxDecodeError("a transaction is one array of 3 or 4 items")
        (body, body_raw), (witnesses, witnesses_raw) = items[0], items[1]
        if not isinstance(body, dict) or not isinstance(witnesses, dict):
            raise TxDecodeError("a transaction body and witness set are maps")
    except cborraw.CborError as exc:
        raise TxDecodeError(str(exc)) from exc
    return TxParts(
        body_raw=body_raw,
        body=body,
        witnesses=witnesses,
        witnesses_raw=witnesses_raw,
        is_valid=items[2][0] is not False if len(items) == 4 else True,
        auxiliary=None if items[-1][0] is None else items[-1][1],
    )


def _head_size(data: bytes) -> int:
    _, arg, after = cborraw.read_head(data, 0)
    return after + (1 if arg is None else 0)  # an indefinite array also ends with a break byte


def untag(value: Any) -> Any:
    while isinstance(value, cbor2.CBORTag):
        value = value.value
    return value


def native_script_json(script: Any) -> dict[str, Any]:
    kind = int(script[0])
    if kind == 0:
        return {"clause": "signature", "from": bytes(script[1]).hex()}
    if kind in (1, 2):
        return {"clause": "all" if kind == 1 else "any", "from": [native_script_json(s) for s in script[1]]}
    if kind == 3:
        return {"clause": "some", "atLeast": int(script[1]), "from": [native_script_json(s) for s in script[2]]}
    if kind == 4:
        return {"clause": "after", "slot": int(script[1])}
    if kind == 5:
        return {"clause": "before", "slot": int(script[1])}
    raise TxDecodeError(f"unknown native script constructor {kind}")


def script_hash(language: int, script_bytes: bytes) -> str:
    """``language`` 0 = native (``script_bytes`` = script CBOR), 1..3 = Plutus (the flat-in-CBOR bytes)."""
    return blake2b_224(bytes([language]) + script_bytes).hex()


class DecodedOutput(NamedTuple):
    address_bytes: bytes
    value: Any
    datum_hash: bytes | None
    inline_datum: bytes | None
    script: tuple[int, bytes] | None  # (language, script bytes) of a reference script


def _script_ref(tag24: Any) -> tuple[int, bytes]:
    """``#6.24(bytes .cbor [language, script])`` → (language, script bytes)."""
    inner = bytes(untag(tag24))
    (language, _), (script, script_raw) = cborraw.array_entries(inner)
    if language == 0:
        return 0, script_raw
    return int(language), bytes(script)


def decode_output_value(output: Any) -> DecodedOutput:
    """An output from its decoded form: legacy ``[address, value, datum_hash?]`` or the Babbage map."""
    if isinstance(output, list | tuple):
        datum_hash = bytes(output[2]) if len(output) > 2 and output[2] is not None else None
        return DecodedOutput(bytes(output[0]), output[1], datum_hash, None, None)
    datum_hash = inline = None
    option = output.get(2)
    if option is not None:
        if int(option[0]) == 0:
            datum_hash = bytes(option[1])
        else:
            inline = bytes(untag(option[1]))
    script = _script_ref(output[3]) if output.get(3) is not None else None
    return DecodedOutput(bytes(output[0]), output[1], datum_hash, inline, script)


@functools.lru_cache(maxsize=65_536)
def decode_output(raw: bytes) -> DecodedOutput:
    try:
        return decode_output_value(cbor2.loads(raw))
    except (cbor2.CBORDecodeError, cborraw.CborError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise TxDecodeError(f"malformed output: {exc}") from exc


def _fields(data: bytes) -> dict[Any, tuple[Any, bytes]]:
    return {key: (value, raw) for key, value, raw in cborraw.map_entries(data)}


def metadata_parts(aux_raw: bytes) -> tuple[list[tuple[int, Any, bytes]], list[tuple[int, bytes]]]:
    """Auxiliary data → ([(label, metadatum, raw metadatum)], [(language, script bytes)])."""
    scripts: list[tuple[int, bytes]] = []
    metadata_raw: bytes | None
    major = aux_raw[0] >> 5
    if major == 6:  # Alonzo and later: #6.259({0: metadata, 1: native, 2..4: plutus v1..v3})
        fields = _fields(aux_raw[cborraw.read_head(aux_raw, 0)[2] :])
        metadata_raw = fields[0][1] if 0 in fields else None
        if 1 in fields:
            scripts += [(0, raw) for _, raw in cborraw.array_entries(fields[1][1])]
        for key, language in ((2, 1), (3, 2), (4, 3)):
            if key in fields:
                scripts += [(language, bytes(script)) for script in untag(fields[key][0])]
    elif major == 4:  # Allegra and Mary: [metadata, [native scripts]]
        (_, metadata_raw), *rest = cborraw.array_entries(aux_raw)
        if rest:
            scripts += [(0, raw) for _, raw in cborraw.array_entries(rest[0][1])]
    else:
        metadata_raw = aux_raw
    labels = [(int(k), v, raw) for k, v, raw in cborraw.map_entries(metadata_raw)] if metadata_raw else []
    return labels, scripts
