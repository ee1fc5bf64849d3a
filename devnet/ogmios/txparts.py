"""Decoding a transaction's parts with their original bytes: body fields, witnesses, outputs, scripts,
auxiliary data. Hashes (tx id, script hashes, datum hashes) are always taken over the bytes as sent.
"""

from __future__ import annotations

import functools
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
    "metadata_values",
    "native_script_json",
    "script_hash",
    "split_transaction",
    "untag",
]

PLUTUS_LANGUAGES = {1: "plutus:v1", 2: "plutus:v2", 3: "plutus:v3"}


class TxDecodeError(ValueError):
    """The bytes are not a transaction this serializer understands."""


class TxParts:
    """A decoded transaction; original bytes of its parts are located only when asked for."""

    __slots__ = ("_raw_fields", "_raw_items", "auxiliary_value", "body", "cbor", "is_valid", "witnesses")

    def __init__(self, tx_cbor: bytes, items: list[Any], raw_items: list[bytes] | None = None) -> None:
        self.cbor = tx_cbor
        self.body: dict[Any, Any] = items[0]
        self.witnesses: dict[Any, Any] = items[1]
        self.is_valid: bool = items[2] is not False if len(items) == 4 else True
        self.auxiliary_value: Any = items[-1]
        self._raw_items = raw_items
        self._raw_fields: dict[Any, bytes] | None = None

    def _raw(self, index: int) -> bytes:
        if self._raw_items is None:
            self._raw_items = [raw for _, raw in cborraw.array_entries(self.cbor)]
        return self._raw_items[index]

    @property
    def body_raw(self) -> bytes:
        return self._raw(0)

    @property
    def witnesses_raw(self) -> bytes:
        return self._raw(1)

    @property
    def auxiliary(self) -> bytes | None:
        """Original bytes of the auxiliary data (None when the transaction has none)."""
        return None if self.auxiliary_value is None else self._raw(-1)

    def witness_raw(self, key: int) -> bytes:
        """Original bytes of one witness-set field (native scripts and datums are hashed as sent)."""
        if self._raw_fields is None:
            self._raw_fields = {k: raw for k, _, raw in cborraw.map_entries(self.witnesses_raw)}
        return self._raw_fields[key]


def split_transaction(tx_cbor: bytes, *, trusted: bool = False) -> TxParts:
    """``[body, witnesses, is_valid?, auxiliary_data]``, decoded once.

    ``trusted`` (a transaction the ledger already accepted) skips the structural checks and decodes with one
    C call; raw spans are then located lazily, only for what gets hashed or shown as CBOR.
    """
    try:
        if trusted:
            return TxParts(tx_cbor, cbor2.loads(tx_cbor))
        entries = cborraw.array_entries(tx_cbor)
        if len(entries) not in (3, 4) or sum(len(raw) for _, raw in entries) + _head_size(tx_cbor) != len(tx_cbor):
            raise TxDecodeError("a transaction is one array of 3 or 4 items")
        if not isinstance(entries[0][0], dict) or not isinstance(entries[1][0], dict):
            raise TxDecodeError("a transaction body and witness set are maps")
    except (cborraw.CborError, cbor2.CBORDecodeError) as exc:
        raise TxDecodeError(str(exc)) from exc
    return TxParts(tx_cbor, [value for value, _ in entries], [raw for _, raw in entries])


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


def metadata_values(aux_value: Any) -> tuple[dict[Any, Any], bool]:
    """Decoded auxiliary data → ({label: metadatum}, whether it also carries scripts)."""
    if isinstance(aux_value, cbor2.CBORTag):  # #6.259({0: metadata, 1..4: scripts})
        fields = aux_value.value if isinstance(aux_value.value, dict) else {}
        return dict(fields.get(0) or {}), any(fields.get(key) for key in (1, 2, 3, 4))
    if isinstance(aux_value, list | tuple):  # [metadata, [native scripts]]
        return dict(aux_value[0] or {}), len(aux_value) > 1 and bool(aux_value[1])
    return dict(aux_value), False


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
