"""Assemble and run the signer service from its settings (``python -m signer serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.grpcutil import GrpcServer, ServingStatus, TlsFiles, serve
from common.logging import get_logger
from common.observability import HealthServer
from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc
from signer.audit import AuditLog
from signer.batcher import Batcher
from signer.core import CEREMONY_ENDPOINT, MAIN_ENDPOINT, SignerCore
from signer.errors import SignerError
from signer.identity import build_identity, open_key_store
from signer.server import SignerServicer
from signer.settings import SignerSettings
from signer.state import StateStore
from signer.transport import PeerCredRelay

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


def build_core(settings: SignerSettings, *, mint_ceremony_quantity: int = 0,
               clock: Callable[[], float] = time.time) -> SignerCore:
    settings.slot_zero_time  # noqa: B018  (ConfigError unless the network's clock is configured)
    keys = open_key_store(settings)
    identity = build_identity(settings, keys)
    state = StateStore(settings.data_dir / "state.sqlite3", fsync=settings.fsync)
    audit = AuditLog(settings.data_dir / "audit.jsonl", fsync=settings.fsync, anchor=state.audit_head(),
                     max_file_bytes=settings.audit_max_file_bytes, keep_files=settings.audit_keep_files)
    quantity = mint_ceremony_quantity or settings.mint_ceremony_quantity
    return SignerCore(identity, keys, state, audit, mint_ceremony_quantity=quantity or None, clock=clock)


@dataclass
class RunningSigner:
    core: SignerCore
    batcher: Batcher
    server: GrpcServer
    health: HealthServer | None
    lock_fd: int
    relay: PeerCredRelay | None = None

    async def stop(self, grace_s: float = 5.0) -> None:
        if self.relay is not None:
            await self.relay.close()  # no new callers; the calls in flight finish on the gRPC server
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


def disk_status(path: Path, min_free_bytes: int) -> dict[str, Any]:
    """Free space where the state and audit log live, and whether it is nearly full."""
    usage = shutil.disk_usage(path)
    return {"free_bytes": usage.free, "total_bytes": usage.total, "min_free_bytes": min_free_bytes,
            "nearly_full": usage.free < min_free_bytes}


def _health_check(settings: SignerSettings, core: SignerCore, batcher: Batcher) -> Callable[[], tuple[int, Any]]:
    def check() -> tuple[int, dict[str, Any]]:
        if batcher.broken:
            return 503, {"status": "broken", "detail": batcher.broken}
        disk = disk_status(settings.data_dir, settings.disk_min_free_bytes)
        body = {"status": "degraded" if disk["nearly_full"] else "ok",
                "custodial_address": core.identity.custodial_address, "disk": disk, "audit": core.audit.status()}
        if disk["nearly_full"]:
            body["detail"] = (f"the data directory's disk has {disk['free_bytes']} bytes free, under "
                              f"{settings.disk_min_free_bytes}: signing stops when the audit log cannot be written")
        return 200, body

    return check


async def _serve_grpc(settings: SignerSettings, core: SignerCore,
                      batcher: Batcher) -> tuple[GrpcServer, PeerCredRelay | None]:
    tls = _tls(settings)
    socket_path = settings.socket_path
    relay = None if socket_path is None else PeerCredRelay(socket_path.parent)
    servicer = SignerServicer(core, batcher, relay=relay, allowed_clients=settings.tls_allowed_clients)
    handlers = [(signer_pb2_grpc.add_SignerServiceServicer_to_server, servicer)]
    if relay is None:
        server = await serve(handlers, settings.listen, service_names=[SERVICE_NAME], tls=tls,
                             max_message_bytes=1024 * 1024)
        return server, None
    assert socket_path is not None
    relay.prepare()
    server = await serve(handlers, relay.grpc_listen, service_names=[SERVICE_NAME], max_message_bytes=1024 * 1024,
                         unix_mode=0o600, unix_dir_mode=0o700)
    try:
        await relay.listen(socket_path, MAIN_ENDPOINT)
        if core.mint_ceremony_enabled:
            # 0600: only the signer's own user (the operator running the ceremony) may connect, never the
            # gateway, which has the directory's group.
            await relay.listen(socket_path.parent / settings.mint_ceremony_socket, CEREMONY_ENDPOINT, 0o600)
    except BaseException:
        await relay.close()
        await server.stop(0)
        raise
    return server, relay


async def start(settings: SignerSettings, *, mint_ceremony_quantity: int = 0) -> RunningSigner:
    lock_fd = lock_data_dir(settings.data_dir)
    try:
        core = build_core(settings, mint_ceremony_quantity=mint_ceremony_quantity)
    except BaseException:
        os.close(lock_fd)
        raise
    batcher = Batcher(core, batch_max=settings.batch_max, queue_limit=settings.queue_limit)
    batcher.start()
    try:
        server, relay = await _serve_grpc(settings, core, batcher)
    except BaseException:
        await batcher.stop()
        core.state.close()
        core.audit.close()
        core.keys.close()
        os.close(lock_fd)
        raise
    health = None
    if settings.metrics_listen:
        host, _, port = settings.metrics_listen.rpartition(":")
        health = HealthServer(host or "127.0.0.1", int(port), _health_check(settings, core, batcher)).start()
    ident = core.identity
    log.info("signer_started", listen=settings.listen, key_store=ident.key_store, sink_mode=ident.policy.sink_mode,
             custodial_address=ident.custodial_address, policy_id=ident.policy_id_hex,
             network_id=ident.policy.network_id, mint_ceremony=core.mint_ceremony_enabled,
             metrics_port=health.port if health else None, clock_slot=core.clock_slot())
    if core.mint_ceremony_enabled:
        log.warning("mint_ceremony_enabled", quantity=core.mint_ceremony_quantity,
                    socket=str(settings.socket_path.parent / settings.mint_ceremony_socket)
                    if settings.socket_path else "")
    return RunningSigner(core, batcher, server, health, lock_fd, relay)


async def run(settings: SignerSettings, *, mint_ceremony_quantity: int = 0) -> None:
    """Serve until SIGTERM/SIGINT, then stop gracefully."""
    running = await start(settings, mint_ceremony_quantity=mint_ceremony_quantity)
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
    log.info("signer_stopped")


async def _watch_broken(running: RunningSigner) -> None:
    """Report NOT_SERVING on gRPC health once the batcher has stopped signing."""
    await running.batcher.broken_event.wait()
    await running.server.set_status(ServingStatus.NOT_SERVING)
