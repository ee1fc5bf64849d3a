"""Assemble and run the signer service from its settings (``python -m signer serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.grpcutil import GrpcServer, ServingStatus, TlsFiles, serve
from common.logging import get_logger
from common.observability import HealthServer
from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc
from signer.audit import AuditLog
from signer.batcher import Batcher
from signer.core import SignerCore
from signer.errors import SignerError
from signer.identity import build_identity, open_key_store
from signer.server import SignerServicer
from signer.settings import SignerSettings
from signer.state import StateStore

__all__ = ["SERVICE_NAME", "RunningSigner", "build_core", "run", "start"]

SERVICE_NAME = signer_pb2.DESCRIPTOR.services_by_name["SignerService"].full_name
log = get_logger("signer.app")


class DataDirLocked(SignerError):
    """Another signer process uses the same data directory."""


def lock_data_dir(data_dir: Path) -> int:
    """Hold an exclusive lock on DATA_DIR/signer.lock for the life of the process."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(data_dir / "signer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataDirLocked(f"another signer is using {data_dir}") from None
    return fd


def build_core(settings: SignerSettings, *, mint_ceremony: bool = False) -> SignerCore:
    keys = open_key_store(settings)
    identity = build_identity(settings, keys)
    state = StateStore(settings.data_dir / "state.sqlite3", fsync=settings.fsync)
    audit = AuditLog(settings.data_dir / "audit.jsonl", fsync=settings.fsync, anchor=state.audit_head())
    return SignerCore(identity, keys, state, audit,
                      mint_ceremony_enabled=mint_ceremony or settings.enable_mint_ceremony)


@dataclass
class RunningSigner:
    core: SignerCore
    batcher: Batcher
    server: GrpcServer
    health: HealthServer | None
    lock_fd: int

    async def stop(self, grace_s: float = 5.0) -> None:
        await self.server.stop(grace_s)
        await self.batcher.stop()
        if self.health:
            self.health.stop()
        self.core.state.close()
        self.core.audit.close()
        self.core.keys.close()
        os.close(self.lock_fd)


def _tls(settings: SignerSettings) -> TlsFiles | None:
    if settings.listen.startswith("unix:"):
        return None
    return TlsFiles(cert=settings.tls_cert, key=settings.tls_key, ca=settings.tls_ca)


async def start(settings: SignerSettings, *, mint_ceremony: bool = False) -> RunningSigner:
    lock_fd = lock_data_dir(settings.data_dir)
    try:
        core = build_core(settings, mint_ceremony=mint_ceremony)
    except BaseException:
        os.close(lock_fd)
        raise
    batcher = Batcher(core, batch_max=settings.batch_max, queue_limit=settings.queue_limit)
    batcher.start()
    tls = _tls(settings)
    servicer = SignerServicer(core, batcher, tls=tls is not None)
    server = await serve([(signer_pb2_grpc.add_SignerServiceServicer_to_server, servicer)], settings.listen,
                         service_names=[SERVICE_NAME], tls=tls, max_message_bytes=1024 * 1024)
    health = None
    if settings.metrics_listen:
        host, _, port = settings.metrics_listen.rpartition(":")

        def check() -> tuple[int, dict[str, Any]]:
            if batcher.broken:
                return 503, {"status": "broken", "detail": batcher.broken}
            return 200, {"status": "ok", "custodial_address": core.identity.custodial_address}

        health = HealthServer(host or "127.0.0.1", int(port), check).start()
    ident = core.identity
    log.info("signer_started", listen=server.target, key_store=ident.key_store, sink_mode=ident.policy.sink_mode,
             custodial_address=ident.custodial_address, policy_id=ident.policy_id_hex,
             network_id=ident.policy.network_id, mint_ceremony=core.mint_ceremony_enabled,
             metrics_port=health.port if health else None)
    if core.mint_ceremony_enabled:
        log.warning("mint_ceremony_enabled")
    return RunningSigner(core, batcher, server, health, lock_fd)


async def run(settings: SignerSettings, *, mint_ceremony: bool = False) -> None:
    """Serve until SIGTERM/SIGINT, then stop gracefully."""
    running = await start(settings, mint_ceremony=mint_ceremony)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = loop.create_task(_watch_broken(running))
    await stop.wait()
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    log.info("signer_stopping")
    await running.stop()


async def _watch_broken(running: RunningSigner) -> None:
    """Report NOT_SERVING on gRPC health once the batcher has stopped signing."""
    await running.batcher.broken_event.wait()
    await running.server.set_status(ServingStatus.NOT_SERVING)
