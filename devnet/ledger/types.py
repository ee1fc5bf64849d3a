"""Ledger data types: output references, outputs, decoded transactions, rejections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LedgerError", "LedgerRejection", "OutRef", "Tx", "TxOut"]


class LedgerError(Exception):
    """Root exception of the devnet ledger."""


class LedgerRejection(LedgerError):
    """A transaction refused by the ledger, already in Ogmios' error shape (code, message, data)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` object (``data`` omitted when the code has none)."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass(frozen=True, slots=True)
class OutRef:
    tx_id: str  # hex
    index: int

    def __str__(self) -> str:
        return f"{self.index}@{self.tx_id}"


@dataclass(frozen=True, slots=True)
class TxOut:
    address: str  # bech32 (addr_test1... / addr1...), base58 for Byron
    address_bytes: bytes
    lovelace: int
    assets: dict[str, dict[str, int]]  # policy hex -> asset name hex -> qty
    datum_hash: str | None
    inline_datum: bytes | None  # CBOR
    script_ref: bytes | None  # CBOR of the script ([lang, bytes] as in script_ref's inner item)
    raw: bytes  # original CBOR of this output


@dataclass(slots=True)
class Tx:
    id: str
    cbor: bytes
    size: int  # of the CBOR as submitted (what a block body and the mempool hold)
    # What Conway's fee and maxTransactionSize measure: [body, witnesses, auxiliary data] without the
    # is_valid flag (Cardano.Ledger.Alonzo.Tx toCBORForSizeComputation), one byte less than ``size``.
    ledger_size: int
    body: dict[int, Any]  # cbor2-decoded body map (original key numbers)
    body_bytes: bytes  # original body bytes (id = blake2b-256 of these)
    inputs: list[OutRef]
    reference_inputs: list[OutRef]
    collaterals: list[OutRef]
    outputs: list[TxOut]
    fee: int
    ttl: int | None  # invalid_hereafter (exclusive upper bound)
    validity_start: int | None  # invalid_before (inclusive lower bound)
    mint: dict[str, dict[str, int]]  # signed quantities
    network_id: int | None
    required_signers: list[str]  # key hashes hex
    vkey_witnesses: list[tuple[bytes, bytes]]  # (vkey, signature)
    native_scripts: list[Any]  # decoded native scripts (devnet.ledger.native.NativeScript)
    metadata: dict[int, Any] | None  # decoded metadata labels
    auxiliary_data_raw: bytes | None
    auxiliary_data_hash: str | None  # as declared in the body (key 7)
    script_data_hash: str | None
    is_valid: bool = True
    witness_set: dict[int, Any] = field(default_factory=dict)
    # Devnet-only: a faucet transaction created by the control API; its mint needs no script.
    faucet: bool = False
