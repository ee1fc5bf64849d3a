"""Wiring: clients, store, follower, mempool monitor, status tracker, gRPC server and health side-server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
from typing import Any

from common.grpcutil import GrpcServer, serve
from common.logging import get_logger
from common.observability import HealthServer
from common.rpc.creatorpass.v1 import chain_pb2, chain_pb2_grpc
from indexer.chain import Relevance
from indexer.config import IndexerSettings, parse_start_point
from indexer.errors import KupoError
from indexer.follower import Follower
from indexer.kupo import KupoClient
from indexer.mempool import MempoolMonitor, MempoolProbe
from indexer.ogmios import OgmiosClient
from indexer.queries import ChainQueries
from indexer.service import ChainServicer
from indexer.status import StatusTracker
from indexer.store import Store

__all__ = ["Indexer", "run_until_signal", "tune_gc"]

log = get_logger(__name__)
SERVICE_NAME = chain_pb2.DESCRIPTOR.services_by_name["ChainService"].full_name
KUPO_PING_S = 2.0


def tune_gc() -> None:
    """Catch-up parses thousands of JSON blocks a second; the default gen-0 threshold (700) makes the
    cyclic GC re-walk them constantly (about a fifth of the follower's CPU). Objects alive at start-up
    are frozen out of collection, and collections run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


class Indexer:
    """Build with settings, ``await start()``, then ``await wait()`` or ``await stop()``."""

    def __init__(self, settings: IndexerSettings) -> None:
        self.settings = s = settings

        def ogmios(name: str) -> OgmiosClient:
            return OgmiosClient(s.ogmios_url, name=name, request_timeout_s=s.request_timeout_s,
                                connect_timeout_s=s.connect_timeout_s, keepalive_s=s.keepalive_s,
                                max_message_bytes=s.max_response_bytes, max_backoff_s=s.reconnect_max_backoff_s)

        self.store = Store.open(s.db_path)
        self.kupo = KupoClient(s.kupo_url, timeout_s=s.request_timeout_s, connect_timeout_s=s.connect_timeout_s,
                               max_response_bytes=s.max_response_bytes)
        self.ogmios_queries = ogmios("queries")
        self.ogmios_chainsync = ogmios("chainsync")
        self.ogmios_probe = ogmios("mempool")
        self.ogmios_monitor = ogmios("mempool-monitor")
        relevance = Relevance(s.addresses_that_matter, s.policy_id)
        self.follower = Follower(self.ogmios_chainsync, self.store, relevance,
                                 start_point=parse_start_point(s.start_point), pipeline_depth=s.pipeline_depth,
                                 batch_max_blocks=s.batch_max_blocks, keep_points=s.keep_points,
                                 max_backoff_s=s.reconnect_max_backoff_s)
        self.tracker = StatusTracker(self.store, self.follower, MempoolProbe(self.ogmios_probe, s.request_timeout_s),
                                     max_watchers=s.max_watchers)
        self.follower.on_commit = self.tracker.chain_changed
        self.monitor = MempoolMonitor(self.ogmios_monitor, self.tracker.mempool_changed, s.reconnect_max_backoff_s)
        self.queries = ChainQueries(self.ogmios_queries, self.kupo, submit_timeout_s=s.submit_timeout_s,
                                    params_recheck_s=s.params_recheck_s)
        self.servicer = ChainServicer(store=self.store, follower=self.follower, tracker=self.tracker,
                                      queries=self.queries, network=s.network, max_ids=s.max_watch_ids,
                                      max_tx_bytes=s.max_tx_bytes)
        self.kupo_status: int | None = None
        self.grpc: GrpcServer | None = None
        self.health_server: HealthServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()

    def health(self) -> tuple[int, dict[str, Any]]:
        """Kupo-style: 200 synced, 202 catching up, 503 disconnected (from Ogmios or Kupo)."""
        body: dict[str, Any] = {**self.follower.status(), "kupo_status": self.kupo_status}
        lag = self.follower.lag_slots
        if not self.follower.connected or self.kupo_status not in (200, 202):
            status, body["status"] = 503, "disconnected"
        elif lag is None or lag > self.settings.synced_lag_slots or self.kupo_status == 202:
            status, body["status"] = 202, "syncing"
        else:
            status, body["status"] = 200, "synced"
        return status, body

    async def _ping_kupo(self) -> None:
        while True:
            try:
                self.kupo_status = (await self.kupo.health()).status
            except KupoError as exc:
                if self.kupo_status is not None:
                    log.warning("kupo_unreachable", error=str(exc))
                self.kupo_status = None
            await asyncio.sleep(KUPO_PING_S)

    async def start(self) -> None:
        s = self.settings
        self._tasks = [
            asyncio.create_task(self.follower.run(), name="follower"),
            asyncio.create_task(self.monitor.run(), name="mempool-monitor"),
            asyncio.create_task(self.tracker.run(), name="status-refresher"),
            asyncio.create_task(self._ping_kupo(), name="kupo-ping"),
        ]
        self.grpc = await serve([(chain_pb2_grpc.add_ChainServiceServicer_to_server, self.servicer)], s.listen,
                                service_names=[SERVICE_NAME], max_message_bytes=s.max_response_bytes)
        self.health_server = HealthServer(s.health_host, s.health_port, self.health).start()
        if s.ready_file is not None:
            s.ready_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = s.ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"grpc": self.grpc.target, "health_port": self.health_server.port,
                                       "pid": os.getpid()}))
            tmp.replace(s.ready_file)
        log.info("indexer_started", grpc=self.grpc.target, health_port=self.health_server.port,
                 tip_slot=self.follower.tip.slot if self.follower.tip else None)

    async def wait(self) -> None:
        await self._stopped.wait()

    async def stop(self, grace_s: float = 3.0) -> None:
        if self._stopped.is_set():
            return
        if self.grpc is not None:
            await self.grpc.stop(grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for client in (self.ogmios_chainsync, self.ogmios_queries, self.ogmios_probe, self.ogmios_monitor):
            await client.close()
        await self.kupo.close()
        if self.health_server is not None:
            self.health_server.stop()
        self.store.close()
        self._stopped.set()
        log.info("indexer_stopped")


async def run_until_signal(settings: IndexerSettings) -> None:
    indexer = Indexer(settings)
    tune_gc()
    await indexer.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await indexer.stop()
