"""Block and output-history records of the devnet chain (re-exported by ``devnet.chain``)."""

from __future__ import annotations

from dataclasses import dataclass

from devnet.ledger.types import OutRef, Tx, TxOut

__all__ = ["Block", "CreatedAt", "OutputRecord", "SpentAt", "Undo"]


@dataclass(slots=True)
class Block:
    height: int
    slot: int
    id: str
    ancestor: str  # parent id, or "genesis"
    transactions: list[Tx]
    size: int
    issuer_vkey: str
    vrf_vkey: str
    body_hash: str = ""


@dataclass(frozen=True, slots=True)
class CreatedAt:
    slot: int
    block_id: str
    tx_index: int


@dataclass(frozen=True, slots=True)
class SpentAt:
    slot: int
    block_id: str
    tx_id: str
    input_index: int


@dataclass(slots=True)
class OutputRecord:
    out_ref: OutRef
    out: TxOut
    created: CreatedAt
    spent: SpentAt | None


@dataclass(slots=True)
class Undo:
    """What a block changed in the UTxO set, to roll it back."""

    spent: list[tuple[OutRef, TxOut]]
    created: list[OutRef]
