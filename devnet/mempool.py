"""The mempool as an overlay on the confirmed UTxO set: pending txs in order, what they spend and create."""

from __future__ import annotations

from collections.abc import Mapping

from devnet.ledger.types import OutRef, Tx, TxOut

__all__ = ["Mempool"]


class Mempool:
    def __init__(self) -> None:
        self.txs: list[Tx] = []
        self.ids: set[str] = set()
        self.size_bytes = 0
        self.spent: set[OutRef] = set()
        self.outputs: dict[OutRef, TxOut] = {}

    def add(self, tx: Tx) -> None:
        self.txs.append(tx)
        self.ids.add(tx.id)
        self.size_bytes += tx.size
        self.spent.update(tx.inputs)
        for index, out in enumerate(tx.outputs):
            self.outputs[OutRef(tx.id, index)] = out

    def lookup(self, ref: OutRef, utxo: Mapping[OutRef, TxOut]) -> TxOut | None:
        """An output as the mempool sees it: confirmed or pending, and not spent by a pending tx."""
        if ref in self.spent:
            return None
        out = self.outputs.get(ref)
        return out if out is not None else utxo.get(ref)

    def pending_at(self, address_bytes: bytes) -> list[tuple[OutRef, TxOut]]:
        """Outputs created by pending txs at an address and not spent by another pending tx."""
        return [(ref, out) for ref, out in self.outputs.items()
                if out.address_bytes == address_bytes and ref not in self.spent]

    def select_for_block(self, slot: int, budget_bytes: int) -> tuple[list[Tx], list[Tx]]:
        """(txs for a block at ``slot``, txs that stay): oldest first within the body size budget.

        Expired txs stay (the rebuild after the block drops them), as do not-yet-valid ones and every
        tx spending an output of a tx that stays; once one tx waits, all later ones wait (FIFO).
        """
        chosen: list[Tx] = []
        remaining: list[Tx] = []
        held_back: set[str] = set()
        used = 0
        full = False
        for tx in self.txs:
            expired = tx.ttl is not None and slot >= tx.ttl
            early = tx.validity_start is not None and slot < tx.validity_start
            full = full or early or used + tx.size > budget_bytes
            if expired or full or any(ref.tx_id in held_back for ref in tx.inputs):
                held_back.add(tx.id)
                remaining.append(tx)
                continue
            chosen.append(tx)
            used += tx.size
        return chosen, remaining
