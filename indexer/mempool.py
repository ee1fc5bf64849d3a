"""Ogmios mempool monitoring: a probe (is this tx in the mempool now?) and a monitor (tell me when it changes).

Each needs its own connection: ``acquireMempool`` blocks while the connection holds an unchanged
snapshot, so the monitor parks one connection on it, and the probe acquires, asks, and releases on another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from common.logging import get_logger
from indexer.errors import OgmiosError
from indexer.ogmios import OgmiosClient

__all__ = ["MempoolMonitor", "MempoolProbe"]

log = get_logger(__name__)


class MempoolProbe:
    """``has(tx_ids)`` -> (ids in the mempool, snapshot slot); one snapshot per call, calls serialized."""

    def __init__(self, client: OgmiosClient, timeout_s: float = 10.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()

    async def has(self, tx_ids: Sequence[str]) -> tuple[set[str], int]:
        async with self._lock:
            try:
                return await self._has(tx_ids)
            except OgmiosError:
                await self.client.disconnect()  # never keep a connection whose snapshot state is unknown
                raise

    async def _has(self, tx_ids: Sequence[str]) -> tuple[set[str], int]:
        client = self.client
        await client.ensure_connected()
        acquired = await client.wait(await client.send("acquireMempool"), "acquireMempool", self.timeout_s)
        futures = [await client.send("hasTransaction", {"id": tx_id}) for tx_id in tx_ids]
        found = set()
        for tx_id, future in zip(tx_ids, futures, strict=True):
            if await client.wait(future, "hasTransaction", self.timeout_s) is True:
                found.add(tx_id)
        await client.wait(await client.send("releaseMempool"), "releaseMempool", self.timeout_s)
        slot = acquired.get("slot", 0) if isinstance(acquired, dict) else 0
        return found, int(slot)


class MempoolMonitor:
    """Parks on ``acquireMempool`` and calls ``on_change`` each time a new snapshot is acquired."""

    def __init__(self, client: OgmiosClient, on_change: Callable[[], None], max_backoff_s: float = 5.0) -> None:
        self.client = client
        self.on_change = on_change
        self.max_backoff_s = max_backoff_s
        self.snapshots = 0

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self.client.connect_with_backoff()
                while True:
                    await self.client.request("acquireMempool", timeout_s=0, idempotent=False)
                    self.snapshots += 1
                    failures = 0
                    self.on_change()
            except asyncio.CancelledError:
                raise
            except OgmiosError as exc:
                failures += 1
                log.warning("mempool_monitor_interrupted", error=str(exc))
            await self.client.disconnect()
            self.on_change()  # what we knew may be stale
            await asyncio.sleep(min(self.max_backoff_s, 0.1 * 2 ** min(failures, 6)))
