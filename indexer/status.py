"""Transaction status: unknown / in mempool / confirmed at depth d / rolled back, one-shot and as streams.

The store says where a tx landed (or was, before a rollback); for txs the store does not know, the
mempool probe asks Ogmios. A tx that left the mempool may sit in a block the follower has not read yet,
so after a "not in mempool" answer we wait (bounded) for the follower to reach the snapshot's slot and
look again. Watchers get the first status of each tx, then one message per change, computed by a single
refresher task on every follower commit and every mempool change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from common.logging import get_logger
from common.rpc.creatorpass.v1 import chain_pb2
from indexer import metrics
from indexer.errors import OgmiosError
from indexer.follower import Follower
from indexer.mempool import MempoolProbe
from indexer.store import Store

__all__ = ["State", "StatusTracker", "TxStatus"]

log = get_logger(__name__)
State = chain_pb2.TransactionStatus.State


@dataclass(frozen=True, slots=True)
class TxStatus:
    tx_id: str
    state: chain_pb2.TransactionStatus.State.ValueType
    depth: int = 0
    height: int = 0
    slot: int = 0
    block_id: str = ""

    @property
    def key(self) -> tuple[int, int, str]:
        return self.state, self.depth, self.block_id


@dataclass(eq=False)
class _Watcher:
    tx_ids: tuple[str, ...]
    until_depth: int
    last: dict[str, TxStatus] = field(default_factory=dict)
    pending: dict[str, TxStatus] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, status: TxStatus) -> None:
        previous = self.last.get(status.tx_id)
        if previous is None or previous.key != status.key:
            self.last[status.tx_id] = status
            self.pending[status.tx_id] = status
            self.wake.set()

    def finished(self) -> bool:
        return self.until_depth > 0 and len(self.last) == len(self.tx_ids) and all(
            s.state == State.STATE_CONFIRMED and s.depth >= self.until_depth for s in self.last.values())


class StatusTracker:
    def __init__(self, store: Store, follower: Follower, probe: MempoolProbe, *, settle_timeout_s: float = 2.0,
                 max_watchers: int = 1024) -> None:
        self.store = store
        self.follower = follower
        self.probe = probe
        self.settle_timeout_s = settle_timeout_s
        self.max_watchers = max_watchers
        self._watchers: set[_Watcher] = set()
        self._chain_dirty = asyncio.Event()
        self._mempool_dirty = False

    # --- notifications (called from the follower and the mempool monitor) --------------------------

    def chain_changed(self) -> None:
        if self._watchers:
            self._chain_dirty.set()

    def mempool_changed(self) -> None:
        if self._watchers:
            self._mempool_dirty = True
            self._chain_dirty.set()

    # --- one-shot ----------------------------------------------------------------------------------

    def _from_store(self, tx_ids: Sequence[str]) -> dict[str, TxStatus]:
        tip = self.follower.tip
        found = {}
        for tx_id, loc in self.store.locate(tx_ids).items():
            if loc.rolled_back:
                found[tx_id] = TxStatus(tx_id, State.STATE_ROLLED_BACK, 0, loc.height, loc.slot, loc.block_id)
            else:
                depth = max(1, (tip.height if tip else loc.height) - loc.height + 1)
                found[tx_id] = TxStatus(tx_id, State.STATE_CONFIRMED, depth, loc.height, loc.slot, loc.block_id)
        return found

    async def statuses(self, tx_ids: Sequence[str]) -> dict[str, TxStatus]:
        """Current status of each tx; raises OgmiosError when the mempool cannot be asked."""
        result = self._from_store(tx_ids)
        missing = [t for t in tx_ids if t not in result]
        if not missing:
            return result
        in_mempool, snapshot_slot = await self.probe.has(missing)
        for tx_id in in_mempool:
            result[tx_id] = TxStatus(tx_id, State.STATE_MEMPOOL)
        gone = [t for t in missing if t not in in_mempool]
        if gone:
            await self.follower.wait_for_slot(snapshot_slot, self.settle_timeout_s)
            result.update(self._from_store(gone))
            for tx_id in gone:
                result.setdefault(tx_id, TxStatus(tx_id, State.STATE_UNKNOWN))
        return result

    async def status(self, tx_id: str) -> TxStatus:
        return (await self.statuses([tx_id]))[tx_id]

    # --- streams -----------------------------------------------------------------------------------

    async def watch(self, tx_ids: Sequence[str], until_depth: int = 0) -> AsyncIterator[TxStatus]:
        """First the current status of every tx, then each change; ends when all reach ``until_depth``."""
        if len(self._watchers) >= self.max_watchers:
            raise OverflowError(f"too many open watch streams (limit {self.max_watchers})")
        watcher = _Watcher(tuple(dict.fromkeys(tx_ids)), until_depth)
        self._watchers.add(watcher)
        metrics.WATCHERS.set(len(self._watchers))
        try:
            for status in (await self.statuses(watcher.tx_ids)).values():
                watcher.offer(status)
            while True:
                await watcher.wake.wait()
                watcher.wake.clear()
                batch, watcher.pending = watcher.pending, {}
                for tx_id in watcher.tx_ids:
                    if tx_id in batch:
                        yield batch[tx_id]
                if watcher.finished():
                    return
        finally:
            self._watchers.discard(watcher)
            metrics.WATCHERS.set(len(self._watchers))

    async def run(self) -> None:
        """The refresher: recompute watched statuses after chain or mempool changes."""
        while True:
            await self._chain_dirty.wait()
            self._chain_dirty.clear()
            probe, self._mempool_dirty = self._mempool_dirty, False
            watchers = list(self._watchers)
            ids = list(dict.fromkeys(t for w in watchers for t in w.tx_ids))
            if not ids:
                continue
            try:
                await self._refresh(watchers, ids, probe)
            except OgmiosError as exc:
                log.warning("status_refresh_failed", error=str(exc))
                self._mempool_dirty = True  # ask again on the next change
            except Exception as exc:
                log.error("status_refresh_crashed", error=f"{type(exc).__name__}: {exc}", exc_info=True)

    async def _refresh(self, watchers: list[_Watcher], ids: list[str], probe: bool) -> None:
        # Without a mempool change, txs the store does not know keep their mempool/unknown state.
        known = await self.statuses(ids) if probe else self._from_store(ids)
        for watcher in watchers:
            for tx_id in watcher.tx_ids:
                status = known.get(tx_id)
                if status is not None:
                    watcher.offer(status)
