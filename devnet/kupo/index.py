"""What Kupo derives from the chain besides matches: datums and scripts seen in transactions, and the
match JSON itself. The index follows the chain incrementally and rebuilds itself after a rollback.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import cbor2

from devnet.ogmios import cborraw
from devnet.ogmios.encoding import address_to_text, blake2b_256
from devnet.ogmios.txparts import (
    TxDecodeError,
    decode_output,
    metadata_parts,
    script_hash,
    split_transaction,
    untag,
)

__all__ = ["KupoIndex", "match_json", "metadata_json", "script_json"]

_LANGUAGES: Final = {0: "native", 1: "plutus:v1", 2: "plutus:v2", 3: "plutus:v3"}
_WITNESS_PLUTUS: Final = {3: 1, 6: 2, 7: 3}


def script_json(language: int, script: bytes) -> dict[str, str]:
    return {"language": _LANGUAGES[language], "script": script.hex()}


@functools.lru_cache(maxsize=65_536)
def _output_extras(raw: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    """(datum_hash, datum_type, inline datum hex, script hash) of an output."""
    out = decode_output(raw)
    datum_hash: str | None
    datum_type: str | None
    if out.inline_datum is not None:
        datum_hash, datum_type = blake2b_256(out.inline_datum).hex(), "inline"
    elif out.datum_hash is not None:
        datum_hash, datum_type = out.datum_hash.hex(), "hash"
    else:
        datum_hash = datum_type = None
    inline = out.inline_datum.hex() if out.inline_datum is not None else None
    hash_of_script = script_hash(*out.script) if out.script is not None else None
    return datum_hash, datum_type, inline, hash_of_script


class KupoIndex:
    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self.datums: dict[str, str] = {}
        self.scripts: dict[str, tuple[int, bytes]] = {}
        self._height = 0
        self._block_id = ""

    def refresh(self) -> None:
        chain = self.chain
        if self._height and ((block := chain.block_at_height(self._height)) is None or block.id != self._block_id):
            self.datums.clear()
            self.scripts.clear()
            self._height, self._block_id = 0, ""
        while (block := chain.block_at_height(self._height + 1)) is not None:
            for tx in block.transactions:
                self._ingest(tx)
            self._height, self._block_id = block.height, block.id

    def _ingest(self, tx: Any) -> None:
        try:
            parts = split_transaction(tx.cbor)
            witnesses = parts.witnesses
            for _, datum in cborraw.array_entries(parts.witness_raw(4)) if 4 in witnesses else []:
                self.datums[blake2b_256(datum).hex()] = datum.hex()
            for _, script in cborraw.array_entries(parts.witness_raw(1)) if 1 in witnesses else []:
                self._add_script(0, script)
            for key, language in _WITNESS_PLUTUS.items():
                for script in untag(witnesses[key]) if key in witnesses else []:
                    self._add_script(language, bytes(script))
            if parts.auxiliary is not None:
                for language, script in metadata_parts(parts.auxiliary)[1]:
                    self._add_script(language, script)
            for out in tx.outputs:
                decoded = decode_output(out.raw)
                if decoded.inline_datum is not None:
                    self.datums[blake2b_256(decoded.inline_datum).hex()] = decoded.inline_datum.hex()
                if decoded.script is not None:
                    self._add_script(*decoded.script)
        except (TxDecodeError, cborraw.CborError, cbor2.CBORDecodeError, TypeError, ValueError):
            return

    def _add_script(self, language: int, script: bytes) -> None:
        self.scripts[script_hash(language, script)] = (language, script)

    def script_by_hash(self, hash_hex: str) -> dict[str, str] | None:
        self.refresh()
        found = self.scripts.get(hash_hex)
        return script_json(*found) if found is not None else None

    def datum_by_hash(self, hash_hex: str) -> str | None:
        self.refresh()
        return self.datums.get(hash_hex)


def _quantity(value: int, as_string: bool) -> int | str:
    return str(value) if as_string else value


def match_json(record: Any, index: KupoIndex, *, resolve: bool, quantities_as_string: bool) -> dict[str, Any]:
    out = record.out
    datum_hash, datum_type, inline, hash_of_script = _output_extras(out.raw)
    assets: dict[str, int | str] = {}
    for policy in sorted(out.assets):
        for name, qty in sorted(out.assets[policy].items()):
            assets[f"{policy}.{name}" if name else policy] = _quantity(qty, quantities_as_string)
    obj: dict[str, Any] = {
        "transaction_index": record.created.tx_index,
        "transaction_id": record.out_ref.tx_id,
        "output_index": record.out_ref.index,
        "address": out.address or address_to_text(out.address_bytes),
        "value": {"coins": _quantity(out.lovelace, quantities_as_string), "assets": assets},
        "datum_hash": datum_hash,
    }
    if resolve:
        obj["datum"] = inline if inline is not None else (index.datums.get(datum_hash) if datum_hash else None)
    if datum_type is not None:
        obj["datum_type"] = datum_type
    obj["script_hash"] = hash_of_script
    if resolve:
        obj["script"] = index.script_by_hash(hash_of_script) if hash_of_script else None
    obj["created_at"] = {"slot_no": record.created.slot, "header_hash": record.created.block_id}
    spent = record.spent
    obj["spent_at"] = (
        None
        if spent is None
        else {
            "slot_no": spent.slot,
            "header_hash": spent.block_id,
            "transaction_id": spent.tx_id,
            "input_index": spent.input_index,
            "redeemer": None,
        }
    )
    return obj


def _detailed(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        raise ValueError("not a metadatum")
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, str):
        return {"string": value}
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, list | tuple):
        return {"list": [_detailed(v) for v in value]}
    if isinstance(value, dict):
        return {"map": [{"k": _detailed(k), "v": _detailed(v)} for k, v in value.items()]}
    raise ValueError("not a metadatum")


def metadata_json(tx: Any) -> dict[str, Any] | None:
    """Kupo's ``Metadata`` object for a transaction carrying auxiliary data (None when it has none)."""
    try:
        parts = split_transaction(tx.cbor)
        if parts.auxiliary is None:
            return None
        labels, _ = metadata_parts(parts.auxiliary)
        schema = {str(label): _detailed(value) for label, value, _ in sorted(labels, key=lambda e: e[0])}
    except (TxDecodeError, cborraw.CborError, cbor2.CBORDecodeError, ValueError):
        return None
    return {"hash": blake2b_256(parts.auxiliary).hex(), "raw": parts.auxiliary.hex(), "schema": schema}
