"""The devnet chain: genesis, blocks, the mempool, rollbacks and change notification; the UTxO set it
applies blocks to is ``devnet.utxo_state``.

The chain is single-threaded: it is mutated only from the event loop (or from a synchronous caller that
owns it, like a test).  The Ogmios and Kupo servers read its public attributes and methods directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import cbor2

from common.logging import get_logger
from devnet import faucet as faucet_builder
from devnet.blocks import Block, CreatedAt, OutputObserver, OutputRecord, SpentAt
from devnet.genesis import FAUCET_LOVELACE, Genesis, derive_key
from devnet.ledger.address import address_from_text
from devnet.ledger.decode import decode_tx
from devnet.ledger.params import ProtocolParameters
from devnet.ledger.rules import LedgerContext, UtxoLookup, evaluate_tx, validate_tx
from devnet.ledger.types import LedgerError, LedgerRejection, OutRef, Tx, TxOut
from devnet.mempool import Mempool
from devnet.store import ChainStore
from devnet.utxo_state import UtxoState

__all__ = [
    "Block",
    "Chain",
    "CreatedAt",
    "Genesis",
    "LedgerError",
    "LedgerRejection",
    "OutRef",
    "OutputObserver",
    "OutputRecord",
    "ProtocolParameters",
    "SpentAt",
    "Tx",
    "TxOut",
]

MEMPOOL_BLOCKS = 2  # mempool capacity, in max-size block bodies (the node's default)
log = get_logger("devnet.chain")


def _blake2b_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


class Chain:
    """Blocks, UTxO and mempool of one devnet.  Use :meth:`create` to build one (replays a store)."""

    def __init__(
        self,
        genesis: Genesis,
        params: ProtocolParameters | None = None,
        *,
        store: ChainStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.genesis = genesis
        self.params = params or ProtocolParameters()
        self.store = store
        self.clock = clock
        self.blocks: list[Block] = []
        self.state = UtxoState()
        self._pending = Mempool()
        self.version = 0
        self.rollbacks = 0  # how many rollbacks happened (chain-sync cursors may watch it)
        self._block_index: dict[str, Block] = {}
        self._changed = asyncio.Event()
        issuer = derive_key(genesis.seed, "pool-issuer", genesis.network_id)
        vrf = derive_key(genesis.seed, "pool-vrf", genesis.network_id)
        self.issuer_vkey = issuer.vkey.hex()
        self.vrf_vkey = vrf.vkey.hex()
        self.faucet_genesis_ref = OutRef(_blake2b_256(genesis.faucet.address_bytes).hex(), 0)
        self.state.add(self.faucet_genesis_ref, faucet_builder.plain_output(genesis.faucet.address_bytes,
                                                                            FAUCET_LOVELACE))

    # -- construction ---------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        genesis: Genesis,
        params: ProtocolParameters | None = None,
        *,
        store: ChainStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Chain:
        """A chain replayed from ``store`` if it holds blocks, else a fresh one with its distribution block."""
        chain = cls(genesis, params, store=store, clock=clock)
        records = store.load_blocks() if store is not None else []
        if records:
            for height, slot, txs in records:
                chain._append_block(slot, txs, persist=False)
                if chain.blocks[-1].height != height:
                    raise LedgerError(f"state log out of order at height {height}")
        else:
            distribution = faucet_builder.build_distribution(chain, genesis.initial_funds())
            tx = decode_tx(distribution)
            tx.faucet = True
            chain._validate(tx, chain._lookup_confirmed, privileged=True)
            chain._append_block(0, [tx], persist=True)  # the genesis distribution opens the chain
            chain.sync()
        return chain

    # -- reading --------------------------------------------------------------------------------------

    @property
    def utxo(self) -> dict[OutRef, TxOut]:
        """The confirmed unspent outputs (read-only for callers)."""
        return self.state.utxo

    @property
    def outputs(self) -> dict[OutRef, OutputRecord]:
        """Every output of the chain with where it was created and spent (read-only for callers)."""
        return self.state.outputs

    @property
    def tip(self) -> Block | None:
        return self.blocks[-1] if self.blocks else None

    def tip_point(self) -> dict[str, Any] | str:
        tip = self.tip
        return {"slot": tip.slot, "id": tip.id} if tip else "origin"

    def tip_json(self) -> dict[str, Any] | str:
        tip = self.tip
        return {"slot": tip.slot, "id": tip.id, "height": tip.height} if tip else "origin"

    def block_by_id(self, block_id: str) -> Block | None:
        return self._block_index.get(block_id)

    def block_at_height(self, height: int) -> Block | None:
        return self.blocks[height - 1] if 1 <= height <= len(self.blocks) else None

    def wall_slot(self) -> int:
        return max(0, int((self.clock() - self.genesis.system_start_s) // self.genesis.slot_length_s))

    def current_slot(self) -> int:
        """Wall-clock slot since system start (never behind the tip, which may run ahead of the clock)."""
        tip = self.tip
        return max(self.wall_slot(), tip.slot if tip else 0)

    def next_slot(self) -> int:
        """The slot the next block will get (strictly after the tip)."""
        tip = self.tip
        return max(self.wall_slot(), tip.slot + 1 if tip else 0)

    def mempool_slot(self) -> int:
        """The slot the mempool validates against: the tip's + 1, as the node's mempool ticks its ledger state
        (never the wall clock). A block forged later at slot S takes only the txs valid at S."""
        tip = self.tip
        return tip.slot + 1 if tip else 0

    def epoch(self) -> int:
        return self.current_slot() // self.genesis.epoch_length

    def utxos_at(self, address_bytes: bytes) -> list[tuple[OutRef, TxOut]]:
        """Confirmed unspent outputs at an address."""
        return self.state.at(address_bytes)

    def observe_outputs(self, observer: OutputObserver) -> None:
        """Have ``observer`` follow :attr:`outputs`: the records so far at once, then every block and rollback."""
        self.state.observe(observer)

    def mempool_size_bytes(self) -> int:
        return self._pending.size_bytes

    def mempool_capacity_bytes(self) -> int:
        return MEMPOOL_BLOCKS * self.params.max_block_body_size_bytes

    @property
    def mempool(self) -> list[Tx]:
        """Pending transactions, oldest first (read-only: use submit/fund to add)."""
        return self._pending.txs

    def has_mempool_tx(self, tx_id: str) -> bool:
        return tx_id in self._pending.ids

    # -- change notification --------------------------------------------------------------------------

    def _bump(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for_change(self, since_version: int, timeout_s: float | None = None) -> int:
        """Wait until :attr:`version` differs from ``since_version`` (or the timeout); return the version."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.version == since_version:
            event = self._changed
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                break
        return self.version

    # -- validation and the mempool -------------------------------------------------------------------

    def lookup(self, ref: OutRef) -> TxOut | None:
        """An unspent output as the mempool sees it (confirmed or pending, not spent by a pending tx)."""
        return self._lookup_mempool(ref)

    def _lookup_confirmed(self, ref: OutRef) -> TxOut | None:
        return self.utxo.get(ref)

    def _lookup_mempool(self, ref: OutRef) -> TxOut | None:
        return self._pending.lookup(ref, self.utxo)

    def _context(self) -> LedgerContext:
        return LedgerContext(params=self.params, network_id=self.genesis.network_id, slot=self.mempool_slot())

    def _validate(self, tx: Tx, lookup: UtxoLookup, *, privileged: bool = False) -> None:
        validate_tx(tx, lookup, self._context(), privileged=privileged)

    def validate(self, tx_cbor: bytes) -> Tx:
        """Decode and check a transaction against the mempool's view; raises LedgerRejection."""
        tx = decode_tx(tx_cbor)
        self._validate(tx, self._lookup_mempool)
        return tx

    def submit(self, tx_cbor: bytes) -> Tx:
        """Validate and add to the mempool; raises LedgerRejection."""
        tx = self.validate(tx_cbor)
        self._admit(tx)
        return tx

    def submit_decoded(self, tx: Tx, *, trusted: bool = False) -> Tx:
        """Like :meth:`submit` for an already decoded transaction.

        ``trusted`` (the devnet's own generated traffic, signed a moment ago) skips verifying signatures;
        every other rule still runs.
        """
        validate_tx(tx, self._lookup_mempool, self._context(), privileged=tx.faucet, verify_signatures=not trusted)
        self._admit(tx)
        return tx

    def _admit(self, tx: Tx, *, notify: bool = True) -> None:
        if self._pending.size_bytes + tx.size > self.mempool_capacity_bytes():
            raise LedgerRejection(3997, "The mempool is full; try again after the next block.",
                                  {"error": "MempoolFull"})
        self._pending.add(tx)
        if notify:
            self._bump()

    def _rebuild_mempool(self, txs: Iterable[Tx], *, revalidate: bool = True) -> list[Tx]:
        """Re-admit ``txs`` in order against the current UTxO; return those now invalid (discarded).

        Without ``revalidate`` (after a block took a prefix of the mempool) only what a new block can
        change is checked again: the validity interval and that every input still exists.
        """
        self._pending = Mempool()
        discarded: list[Tx] = []
        slot = self.mempool_slot()
        for tx in txs:
            try:
                if revalidate:
                    self._validate(tx, self._lookup_mempool, privileged=tx.faucet)
                elif (tx.ttl is not None and slot >= tx.ttl) or any(
                    self._lookup_mempool(ref) is None for ref in tx.inputs
                ):
                    discarded.append(tx)
                    continue
                self._admit(tx, notify=False)
            except LedgerRejection:
                discarded.append(tx)
        self._bump()
        return discarded

    def evaluate(self, tx_cbor: bytes, additional_utxo: Iterable[OutRef] = ()) -> list[Any]:
        """Script evaluation: the devnet has no Plutus, so a decodable script-free tx evaluates to []."""
        return evaluate_tx(decode_tx(tx_cbor), self.utxo, additional_utxo)

    # -- blocks ---------------------------------------------------------------------------------------

    def produce_blocks(
        self, count: int = 1, fill: str | None = None, txs_per_block: int = 4, *, followed_by: int = 0
    ) -> list[Block]:
        """Produce ``count`` blocks now from the mempool.

        Slots are one apart and end at the wall-clock slot when the chain has room behind it (a big run
        on a devnet started with ``--system-start-offset`` fills the past), else they run ahead of the
        clock.  ``followed_by`` says how many more blocks the same run will ask for next (the control API
        produces big runs in slices).  ``fill="typical"`` first adds ``txs_per_block`` generated txs to
        each block (payments among the genesis keys; one in four mints a token with metadata).
        """
        if count < 0 or followed_by < 0:
            raise ValueError("count and followed_by must be >= 0")
        if fill not in (None, "", "none", "typical"):
            raise ValueError(f"unknown fill {fill!r} (use 'typical' or omit it)")
        produced: list[Block] = []
        filler = faucet_builder.TypicalFiller(self, txs_per_block) if fill == "typical" else None
        for i in range(count):
            if filler is not None:
                filler.fill_mempool()
            produced.append(self._produce_one(blocks_left=count - i + followed_by))
        if produced:
            self.sync()
        return produced

    def _produce_one(self, blocks_left: int = 1) -> Block:
        tip = self.tip
        slot = max(self.wall_slot() - (blocks_left - 1), tip.slot + 1 if tip else 0)
        chosen, remaining = self._pending.select_for_block(slot, self.params.max_block_body_size_bytes)
        chosen = self.state.applicable(chosen, slot)
        block = self._append_block(slot, chosen, persist=True)
        self._rebuild_mempool(remaining, revalidate=False)
        return block

    def _append_block(self, slot: int, txs: list[Tx], *, persist: bool) -> Block:
        parent = self.tip
        height = parent.height + 1 if parent else 1
        body_hash = _blake2b_256(b"".join(bytes.fromhex(tx.id) for tx in txs))
        header = cbor2.dumps([
            height, slot, bytes.fromhex(parent.id) if parent else None, body_hash,
            bytes.fromhex(self.issuer_vkey),
        ])
        block = Block(
            height=height,
            slot=slot,
            id=_blake2b_256(header).hex(),
            ancestor=parent.id if parent else "genesis",
            transactions=txs,
            size=len(header) + 90 + sum(tx.size for tx in txs),
            issuer_vkey=self.issuer_vkey,
            vrf_vkey=self.vrf_vkey,
            body_hash=body_hash.hex(),
        )
        self.state.apply(block)
        self.blocks.append(block)
        self._block_index[block.id] = block
        if persist and self.store is not None:
            self.store.append_block(height, slot, txs)
        self._bump()
        return block

    def rollback(self, blocks: int, drop_transactions: bool = True) -> list[Tx]:
        """Drop the last ``blocks`` blocks and their txs, as a node does on a fork switch: only what was in the
        mempool is re-validated and stays (the submitter must resubmit the rest). ``drop_transactions=False``
        puts the dropped blocks' txs back into the mempool first (re-validated, in order): a devnet option.

        Returns the transactions discarded (the dropped blocks' txs, or those no longer valid).
        """
        if blocks < 0 or blocks > len(self.blocks):
            raise ValueError(f"cannot roll back {blocks} blocks: the chain has {len(self.blocks)}")
        if blocks == 0:
            return []
        dropped: list[Tx] = []
        for _ in range(blocks):
            block = self.blocks.pop()
            del self._block_index[block.id]
            self.state.undo_last()
            dropped = block.transactions + dropped
        if self.store is not None:
            self.store.truncate(len(self.blocks))
        self.rollbacks += 1
        pending = list(self.mempool)
        requeue = [] if drop_transactions else dropped
        discarded = self._rebuild_mempool(requeue + pending)
        return (dropped if drop_transactions else []) + discarded

    # -- the faucet -----------------------------------------------------------------------------------

    def fund(self, address: str, lovelace: int, assets: dict[str, int] | None = None) -> str:
        """Pay ``lovelace`` (and mint any ``{"<policy>.<namehex>": qty}``) to ``address`` via the mempool.

        The faucet tx is a real, signed transaction from the genesis faucet key; its mint of arbitrary
        policies is privileged (no minting script), which only the control API can do.
        """
        address_bytes = address_from_text(address)
        tx_cbor = faucet_builder.build_fund(self, address_bytes, lovelace, assets or {})
        tx = decode_tx(tx_cbor)
        tx.faucet = True
        self._validate(tx, self._lookup_mempool, privileged=True)
        self._admit(tx)
        return tx.id

    def spendable_at(self, address_bytes: bytes) -> list[tuple[OutRef, TxOut]]:
        """Unspent outputs at an address as the mempool sees them (confirmed + pending, minus spent)."""
        found = self._pending.pending_at(address_bytes)
        found += [(ref, self.utxo[ref]) for ref in self.state.refs_at(address_bytes)
                  if ref not in self._pending.spent]
        return found

    def sync(self) -> None:
        """Flush the state log (one fsync per produce/rollback call, not per block)."""
        if self.store is not None:
            self.store.sync()
