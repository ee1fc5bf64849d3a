"""Signer benchmark (``make bench BENCH=signer``).

Policy-checked signatures per second over gRPC (unix socket) from a real ``python -m signer serve``
process (file key store, default durability: SQLite ``synchronous=FULL`` plus an audit-log fsync before
every reply), with 1 and with 8 concurrent clients, beside raw in-process Ed25519 signing of a 32-byte
body hash in this process (the baseline: what a blind signer would do, measured in the same run).
Every request is a distinct burn batch (fresh generation ids), so each one is decoded, checked,
recorded and audited. The same runs are repeated with ``SIGNER_FSYNC=false`` and the disk's fsync
latency is measured, because with one client the default's rate is bounded by the disk, not by the
signer. Goal from DESIGN §10: ≥ 1,000/s with one client on a 2-core machine; each figure's ratio is
against the raw rate, the absolute rate is in its note.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc
from tests.signer.helpers import CURRENT_SLOT, BurnTx, SignerProcess, provision, short_tmp
from tests.signer.test_server import policy_of

if TYPE_CHECKING:
    from tests.bench.harness import Reporter

GOAL_PER_S = 1_000
IDS_PER_TX = 4
RUN_S = 3.0
CLIENTS = 8


def raw_rate(seconds: float = 1.5) -> float:
    key = Ed25519PrivateKey.generate()
    message = bytes(range(32))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            key.sign(message)
        count += 200
    return count / (time.perf_counter() - start)


class Requests:
    """Distinct, valid burn requests, built ahead of time off the clock."""

    def __init__(self, cfg: object, count: int, tag: str) -> None:
        self.items = []
        for i in range(count):
            ids = [f"{tag}-{i}-{j}" for j in range(IDS_PER_TX)]
            tx = BurnTx(cfg, ids).encode()  # type: ignore[arg-type]
            self.items.append(signer_pb2.SignTransactionRequest(
                tx_cbor=tx, purpose=signer_pb2.PURPOSE_BURN_BATCH, generation_ids=ids, request_id=f"{tag}-{i}",
                current_slot=CURRENT_SLOT))
        self.next = 0

    def take(self) -> signer_pb2.SignTransactionRequest:
        item = self.items[self.next]
        self.next += 1
        return item


async def grpc_rate(target: str, requests: Requests, clients: int, seconds: float) -> float:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        await stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=5)  # connect before timing
        done = 0
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await stub.SignTransaction(requests.take(), timeout=10)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return done / (time.perf_counter() - start)


def fsync_latency_s(directory: Path, count: int = 50) -> float:
    """Median time of a small append + fsync in ``directory`` (what durability costs on this disk)."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    samples = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            os.write(fd, b"x" * 300)
            os.fsync(fd)
            samples.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(samples)


def measure(fsync: bool) -> tuple[float, float]:
    """(1-client rate, 8-client rate) against a fresh signer process."""
    workdir = short_tmp()
    try:
        prov = provision("file", workdir, "mint", extra={
            "SIGNER_MAX_TOKENS_PER_DAY": "1000000000", "SIGNER_LOG_LEVEL": "WARNING",
            "SIGNER_FSYNC": "true" if fsync else "false"})
        proc = SignerProcess(prov.env, workdir)
        try:
            proc.wait_ready()
            with grpc.insecure_channel(proc.target) as channel:
                cfg = policy_of(signer_pb2_grpc.SignerServiceStub(channel).GetIdentity(
                    signer_pb2.GetIdentityRequest(), timeout=5))
            budget = int(RUN_S * 5_000)
            asyncio.run(grpc_rate(proc.target, Requests(cfg, 300, "warm"), 1, 0.5))
            one = asyncio.run(grpc_rate(proc.target, Requests(cfg, budget, "one"), 1, RUN_S))
            many = asyncio.run(grpc_rate(proc.target, Requests(cfg, budget, "many"), CLIENTS, RUN_S))
        finally:
            proc.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return one, many


def run(report: Reporter) -> None:
    probe_dir = short_tmp()
    try:
        fsync_ms = fsync_latency_s(probe_dir) * 1e3
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    baseline = raw_rate()
    one, many = measure(fsync=True)
    one_nosync, many_nosync = measure(fsync=False)
    baseline = (baseline + raw_rate()) / 2  # before and after, against drift on a shared machine
    disk = f"this disk's fsync ≈ {fsync_ms:.2f} ms (median of 50)"
    for label, value, clients, durable in (("1_client", one, 1, True), (f"{CLIENTS}_clients", many, CLIENTS, True),
                                           ("1_client_no_fsync", one_nosync, 1, False),
                                           (f"{CLIENTS}_clients_no_fsync", many_nosync, CLIENTS, False)):
        goal_note = ""
        if clients == 1:
            verdict = "meets" if value >= GOAL_PER_S else "misses"
            goal_note = f" ({verdict} the {GOAL_PER_S:,}/s one-client goal)"
        mode = ("default durability: SQLite FULL commit + audit fsync, overlapped, per batch" if durable else
                "SIGNER_FSYNC=false: survives kill -9, not power loss")
        report.figure(metric=f"grpc_signatures_per_s_{label}", value=value, unit="sig/s", baseline=baseline,
                      note=f"{value:,.0f}/s absolute{goal_note}; {mode}; {disk}; baseline = raw in-process "
                           f"Ed25519 {baseline:,.0f}/s; {IDS_PER_TX} generation ids per request")
