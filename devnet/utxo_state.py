"""The devnet's confirmed UTxO set: unspent outputs indexed by address, every output's history (what
Kupo and Ogmios serve), and the undo record of each applied block, so a rollback restores it exactly.

Owned by :class:`devnet.chain.Chain`, which decides what goes into a block; this module applies blocks
to the set and takes them back off.
"""

from __future__ import annotations

from collections.abc import Iterable

from common.logging import get_logger
from devnet.blocks import Block, CreatedAt, OutputObserver, OutputObservers, OutputRecord, SpentAt, Undo
from devnet.ledger.types import LedgerError, OutRef, Tx, TxOut

__all__ = ["UtxoState"]

log = get_logger("devnet.chain")


class UtxoState:
    def __init__(self) -> None:
        self.utxo: dict[OutRef, TxOut] = {}
        self.outputs: dict[OutRef, OutputRecord] = {}
        self._by_address: dict[bytes, set[OutRef]] = {}
        self._observers = OutputObservers()
        self._undo: list[Undo] = []

    def refs_at(self, address_bytes: bytes) -> set[OutRef]:
        return self._by_address.get(address_bytes, set())

    def at(self, address_bytes: bytes) -> list[tuple[OutRef, TxOut]]:
        """Unspent outputs at an address, in (tx id, index) order."""
        refs = sorted(self.refs_at(address_bytes), key=lambda r: (r.tx_id, r.index))
        return [(ref, self.utxo[ref]) for ref in refs]

    def observe(self, observer: OutputObserver) -> None:
        """Have ``observer`` follow :attr:`outputs`: the records so far at once, then every block and rollback."""
        self._observers.add(observer, self.outputs.values())

    def add(self, ref: OutRef, out: TxOut) -> None:
        self.utxo[ref] = out
        self._by_address.setdefault(out.address_bytes, set()).add(ref)

    def _remove(self, ref: OutRef, out: TxOut) -> None:
        del self.utxo[ref]
        refs = self._by_address.get(out.address_bytes)
        if refs is not None:
            refs.discard(ref)
            if not refs:
                del self._by_address[out.address_bytes]

    def applicable(self, txs: Iterable[Tx], slot: int) -> list[Tx]:
        """The txs that still apply, in order, to this set at ``slot``; the others are dropped and logged.

        The mempool should only ever hold txs that apply, but a block is checked before it changes the UTxO
        set all the same: one bad tx must cost itself (and the txs spending its outputs), never the chain.
        """
        spent: set[OutRef] = set()
        created: set[OutRef] = set()
        kept: list[Tx] = []

        def known(ref: OutRef) -> bool:
            return ref not in spent and (ref in created or ref in self.utxo)

        for tx in txs:
            in_interval = (tx.validity_start is None or tx.validity_start <= slot) and (
                tx.ttl is None or slot < tx.ttl)
            if in_interval and all(map(known, tx.inputs)) and all(map(known, tx.reference_inputs)):
                spent.update(tx.inputs)
                created.update(OutRef(tx.id, i) for i in range(len(tx.outputs)))
                kept.append(tx)
            else:
                log.warning("tx dropped at block production: it no longer applies", tx_id=tx.id, slot=slot)
        return kept

    def apply(self, block: Block) -> None:
        """Spend the block's inputs and add its outputs, remembering how to undo it."""
        undo = Undo(spent=[], created=[])
        for tx_index, tx in enumerate(block.transactions):
            for input_index, ref in enumerate(tx.inputs):
                out = self.utxo.get(ref)
                if out is None:
                    raise LedgerError(f"block {block.height} spends unknown output {ref}")
                self._remove(ref, out)
                undo.spent.append((ref, out))
                record = self.outputs.get(ref)
                if record is not None:
                    record.spent = SpentAt(block.slot, block.id, tx.id, input_index)
                    self._observers.spent(record)
            created = CreatedAt(block.slot, block.id, tx_index)
            for index, out in enumerate(tx.outputs):
                ref = OutRef(tx.id, index)
                self.add(ref, out)
                self.outputs[ref] = record = OutputRecord(ref, out, created, None)
                self._observers.created(record)
                undo.created.append(ref)
        self._undo.append(undo)

    def undo_last(self) -> None:
        """Take the last applied block back off: its spent outputs unspent, its created ones gone."""
        undo = self._undo.pop()
        for ref, out in reversed(undo.spent):  # first, as outputs made and spent in-block are in both
            self.add(ref, out)
            record = self.outputs.get(ref)
            if record is not None:
                record.spent = None
                self._observers.unspent(record)
        for ref in reversed(undo.created):
            self._remove(ref, self.utxo[ref])
            if (record := self.outputs.pop(ref, None)) is not None:
                self._observers.removed(record)
