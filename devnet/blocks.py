"""Block and output-history records of the devnet chain (re-exported by ``devnet.chain``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from devnet.ledger.types import OutRef, Tx, TxOut

__all__ = ["Block", "CreatedAt", "OutputObserver", "OutputObservers", "OutputRecord", "SpentAt", "Undo"]


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


class OutputObserver(Protocol):
    """Follows ``Chain.outputs`` (the history of every output) as blocks are applied and rolled back.

    Each call comes after the record changed. Observers must not raise (the chain is mid-update) and must
    not keep the chain busy: they run on the block path.
    """

    def output_created(self, record: OutputRecord) -> None: ...

    def output_spent(self, record: OutputRecord) -> None: ...

    def output_unspent(self, record: OutputRecord) -> None:
        """A rollback undid the spending (``record.spent`` is None again)."""

    def output_removed(self, record: OutputRecord) -> None:
        """A rollback undid the creation (the record left ``Chain.outputs``)."""


class OutputObservers:
    """The observers of one chain; every event goes to each of them, in the order they were added."""

    def __init__(self) -> None:
        self._observers: list[OutputObserver] = []

    def add(self, observer: OutputObserver, history: Iterable[OutputRecord]) -> None:
        """Replay ``history`` (the records so far, in chain order) to ``observer``, then keep it informed."""
        for record in history:
            observer.output_created(record)
            if record.spent is not None:
                observer.output_spent(record)
        self._observers.append(observer)

    def created(self, record: OutputRecord) -> None:
        for observer in self._observers:
            observer.output_created(record)

    def spent(self, record: OutputRecord) -> None:
        for observer in self._observers:
            observer.output_spent(record)

    def unspent(self, record: OutputRecord) -> None:
        for observer in self._observers:
            observer.output_unspent(record)

    def removed(self, record: OutputRecord) -> None:
        for observer in self._observers:
            observer.output_removed(record)
