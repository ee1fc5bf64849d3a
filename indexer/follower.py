"""The chain follower: Ogmios chain-sync into the store, pipelined, batched, rollback-aware, resumable.

On every (re)connection it intersects at the newest stored points (dense near the tip, sparse back to
``keep_points`` blocks, so a fork up to that deep still intersects), or at the configured start point on an
empty store. It keeps ``pipeline_depth`` ``nextBlock`` requests in flight, turns ready answers into
block records and writes them in batches, one SQLite transaction each, on the store's thread while the
next batch is read. A backward answer is a batch boundary: blocks before it are committed, then the
rollback, then the in-memory relevance state is reloaded from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from common.logging import get_logger
from indexer import metrics
from indexer.blocks import NextBlock, decode_next_block, extract
from indexer.chain import ORIGIN, BlockRecord, Point, Relevance, Tip, parse_point, parse_tip
from indexer.config import StartPoint
from indexer.errors import OgmiosError, OgmiosRpcError, StoreError
from indexer.ogmios import OgmiosClient
from indexer.store import Batch, Rollback, Store

__all__ = ["Follower"]

log = get_logger(__name__)
NO_INTERSECTION = 1000


class Follower:
    """Runs chain-sync on its own Ogmios connection until cancelled; see :meth:`run`."""

    def __init__(self, client: OgmiosClient, store: Store, relevance: Relevance, *, start_point: StartPoint,
                 pipeline_depth: int = 100, batch_max_blocks: int = 500, keep_points: int = 2160,
                 max_backoff_s: float = 5.0, max_batch_delay_s: float = 0.2,
                 on_commit: Callable[[], None] | None = None) -> None:
        self.client = client
        self.store = store
        self.relevance = relevance
        self.start_point = start_point
        self.pipeline_depth = pipeline_depth
        self.batch_max_blocks = batch_max_blocks
        self.keep_points = keep_points
        self.max_backoff_s = max_backoff_s
        self.max_batch_delay_s = max_batch_delay_s
        self.on_commit = on_commit
        self.tip: Tip | None = store.tip()
        self._node_tip: Tip | None = None
        self._node_tip_raw: Any = None  # the last "tip" Ogmios sent, parsed lazily (it comes with every block)
        self._node_tip_from: Any = None
        self.synchronizing = False  # True once intersected on the current connection
        self.blocks_processed = 0
        self.rollbacks = 0
        self._progress = asyncio.Condition()
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=64)

    @property
    def connected(self) -> bool:
        return self.client.connected and self.synchronizing

    @property
    def node_tip(self) -> Tip | None:
        raw = self._node_tip_raw
        if raw is not self._node_tip_from:
            self._node_tip_from = raw
            self._node_tip = parse_tip(raw) or self._node_tip
        return self._node_tip

    @property
    def lag_slots(self) -> int | None:
        node_tip = self.node_tip
        if node_tip is None:
            return None
        if self.tip is None:  # nothing processed yet: behind by the whole chain
            return node_tip.slot + 1
        return max(0, node_tip.slot - self.tip.slot)

    async def run(self) -> None:
        """Follow forever: connect, intersect, sync; on any failure back off and start over."""
        failures = 0
        while True:
            try:
                await self.client.connect_with_backoff()
                await self._session()
            except asyncio.CancelledError:
                raise
            except (OgmiosError, StoreError) as exc:
                failures = 1 if self.synchronizing else failures + 1
                log.warning("follower_interrupted", error=str(exc), failures=failures)
            except Exception as exc:  # keep following; a bug must not silently stop the indexer
                failures = 1 if self.synchronizing else failures + 1
                log.error("follower_crashed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            finally:
                self.synchronizing = False
                metrics.CONNECTED.set(0)
            await self.client.disconnect()
            await asyncio.sleep(min(self.max_backoff_s, 0.1 * 2 ** min(failures, 6)))

    async def wait_for_slot(self, slot: int, timeout_s: float) -> bool:
        """Wait until the follower has processed a block at ``slot`` or later (False on timeout)."""
        def reached() -> bool:
            return self.tip is not None and self.tip.slot >= slot

        if reached():
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self._progress:
                await self._progress.wait_for(reached)
        return reached()

    async def _start_points(self) -> list[Point]:
        points = self.store.intersection_points(self.keep_points)
        if points:
            return points
        if self.start_point == "origin":
            return [ORIGIN]
        if self.start_point == "tip":
            return [parse_point(await self.client.request("queryNetwork/tip"))]
        assert isinstance(self.start_point, tuple)
        return [Point(*self.start_point)]

    async def _intersect(self) -> None:
        points = await self._start_points()
        try:
            result = await self.client.request("findIntersection", {"points": [p.to_ogmios() for p in points]})
        except OgmiosRpcError as exc:
            if exc.code != NO_INTERSECTION or self.tip is None:
                raise
            # The chain forked deeper than the points we keep (or it was reset): start over from the
            # configured start point, keeping what was rolled back marked as such.
            log.error("no_intersection", stored_tip_slot=self.tip.slot, points=len(points))
            await self._commit([Rollback(ORIGIN)])
            self.tip = None
            points = await self._start_points()
            result = await self.client.request("findIntersection", {"points": [p.to_ogmios() for p in points]})
        self._node_tip_raw = result.get("tip")
        log.info("chain_sync_intersected", intersection=result.get("intersection"),
                 node_tip_slot=self.node_tip.slot if self.node_tip else None)

    async def _session(self) -> None:
        self.relevance.unspent = await self.store.write(self.store.load_unspent_watched)
        self.relevance.submitted |= await self.store.write(self.store.load_submitted)
        await self._intersect()
        self.synchronizing = True
        metrics.CONNECTED.set(1)
        client = self.client
        depth = self.pipeline_depth
        refill = max(1, depth // 4)  # top the pipeline up in groups: one socket write per group
        inflight = deque(await client.send_repeated("nextBlock", depth, decode_next_block))
        self._commit_failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pending: asyncio.Future[None] | None = None
        batch: list[BlockRecord] = []
        batch_started = 0.0
        try:
            while True:
                if not inflight[0].done():
                    # Nothing more is ready. At the tip, or when the batch is old enough, write it now
                    # (while waiting); while catching up, keep filling it: fewer, bigger transactions.
                    wait_s = None
                    if batch:
                        wait_s = self.max_batch_delay_s - (time.monotonic() - batch_started)
                        raw_tip = self._node_tip_raw
                        at_tip = not isinstance(raw_tip, dict) or batch[-1].slot >= raw_tip["slot"]
                        if at_tip or wait_s <= 0:
                            pending, batch, wait_s = await self._flush(batch, pending), [], None
                    await asyncio.wait((inflight[0], self._commit_failed), timeout=wait_s,
                                       return_when=asyncio.FIRST_COMPLETED)
                    if self._commit_failed.done():
                        self._commit_failed.result()
                    if not inflight[0].done():
                        continue
                result: NextBlock = await inflight.popleft()
                if depth - len(inflight) >= refill:
                    inflight.extend(await client.send_repeated("nextBlock", depth - len(inflight), decode_next_block))
                if isinstance(result.tip, dict):
                    self._node_tip_raw = result.tip
                if result.direction == "backward":
                    await self._flush(batch, pending, wait=True)
                    batch, pending = [], None
                    await self._rollback(parse_point(result.point))
                    continue
                if not batch:
                    batch_started = time.monotonic()
                record = extract(result, self.relevance)
                if record.slot < 0:  # an epoch-boundary block: it shares the slot of its neighbour
                    record.slot = batch[-1].slot if batch else (self.tip.slot if self.tip else 0)
                batch.append(record)
                if len(batch) >= self.batch_max_blocks:
                    pending, batch = await self._flush(batch, pending), []
        finally:
            for future in inflight:
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: the connection's failure is reported once, above
                future.cancel()
            if pending is not None and not pending.done():
                with contextlib.suppress(Exception):
                    await pending

    async def _flush(self, batch: list[BlockRecord], previous: asyncio.Future[None] | None,
                     wait: bool = False) -> asyncio.Future[None] | None:
        """Wait for the previous commit, then start (or, with ``wait``, finish) committing ``batch``."""
        if previous is not None:
            await previous
        if not batch:
            return None
        future = asyncio.ensure_future(self._commit(batch))
        if wait:
            await future
            return None
        future.add_done_callback(self._check_commit)
        return future

    def _check_commit(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None and not self._commit_failed.done():
            self._commit_failed.set_exception(future.exception())  # type: ignore[arg-type]

    async def _commit(self, batch: Batch) -> None:
        started = time.perf_counter()
        tip = self.tip
        prune = tip.height - self.keep_points if tip is not None else None
        await self.store.write(self.store.apply, batch, prune)
        blocks = [b for b in batch if isinstance(b, BlockRecord)]
        if blocks:
            last = blocks[-1]
            self.tip = Tip(last.slot, last.id, last.height)
            self._count(len(blocks))
        else:
            self.tip = self.store.tip()
        self._publish()
        log.debug("batch_committed", blocks=len(blocks), seconds=round(time.perf_counter() - started, 4))
        async with self._progress:
            self._progress.notify_all()
        if self.on_commit is not None:
            self.on_commit()

    def _count(self, blocks: int) -> None:
        self.blocks_processed += blocks
        metrics.BLOCKS.inc(blocks)
        now = time.monotonic()
        self._rate_window.append((now, self.blocks_processed))
        first_t, first_n = self._rate_window[0]
        if now > first_t:
            metrics.BLOCKS_PER_SECOND.set((self.blocks_processed - first_n) / (now - first_t))

    async def _rollback(self, point: Point) -> None:
        tip = self.tip
        if tip is not None and (point.is_origin or point.slot < tip.slot):
            self.rollbacks += 1
            metrics.ROLLBACKS.inc()
            log.info("rollback", to_slot=point.slot, from_slot=tip.slot)
        await self._commit([Rollback(point)])
        self.relevance.unspent = await self.store.write(self.store.load_unspent_watched)

    def _publish(self) -> None:
        if self.tip is not None:
            metrics.TIP_SLOT.set(self.tip.slot)
            metrics.TIP_HEIGHT.set(self.tip.height)
        if self.node_tip is not None:
            metrics.NODE_TIP_SLOT.set(self.node_tip.slot)
            metrics.LAG_SLOTS.set(self.lag_slots or 0)

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "tip_slot": self.tip.slot if self.tip else None,
            "tip_height": self.tip.height if self.tip else None,
            "node_tip_slot": self.node_tip.slot if self.node_tip else None,
            "lag_slots": self.lag_slots,
            "blocks_processed": self.blocks_processed,
            "rollbacks": self.rollbacks,
        }
