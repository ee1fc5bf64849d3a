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
import re
import shutil
import statistics
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc
from tests.signer.helpers import CURRENT_SLOT, BurnTx, SignerProcess, provision, short_tmp
from tests.signer.test_server import policy_of
from tests.support.devnet_fixture import free_ports

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

    def take(self) -> signer_pb2.SignTransactionRequest | None:
        """The next unused request; None once all are used (the run then ends early)."""
        if self.next >= len(self.items):
            return None
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
            while time.perf_counter() < deadline and (request := requests.take()) is not None:
                await stub.SignTransaction(request, timeout=10)
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


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_sizes(metrics_url: str) -> tuple[float, float]:
    """(batches, requests) from the signer's creatorpass_signer_batch_size histogram."""
    with urllib.request.urlopen(metrics_url, timeout=5) as reply:
        text = reply.read().decode()
    count = float(re.search(r"^creatorpass_signer_batch_size_count (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    total = float(re.search(r"^creatorpass_signer_batch_size_sum (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    return count, total


@dataclass
class Run:
    one: float
    many: float
    server_cpu_us: float  # per signature, one-client run
    mean_batch_many: float


def measure(fsync: bool) -> Run:
    """Rates with 1 and 8 clients against a fresh signer process, plus its CPU and batch sizes."""
    workdir = short_tmp()
    [metrics_port] = free_ports(1)
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        prov = provision("file", workdir, "mint", extra={
            "SIGNER_MAX_TOKENS_PER_DAY": "1000000000", "SIGNER_LOG_LEVEL": "WARNING",
            "SIGNER_FSYNC": "true" if fsync else "false", "SIGNER_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"})
        proc = SignerProcess(prov.env, workdir)
        try:
            proc.wait_ready()
            with grpc.insecure_channel(proc.target) as channel:
                cfg = policy_of(signer_pb2_grpc.SignerServiceStub(channel).GetIdentity(
                    signer_pb2.GetIdentityRequest(), timeout=5))
            budget = int(RUN_S * 8_000)
            asyncio.run(grpc_rate(proc.target, Requests(cfg, 3_000, "warm"), 1, 0.5))
            cpu_before = process_cpu_s(proc.proc.pid)
            requests_one = Requests(cfg, budget, "one")
            one = asyncio.run(grpc_rate(proc.target, requests_one, 1, RUN_S))
            server_cpu_us = (process_cpu_s(proc.proc.pid) - cpu_before) / requests_one.next * 1e6
            batches_before = batch_sizes(metrics)
            many = asyncio.run(grpc_rate(proc.target, Requests(cfg, budget, "many"), CLIENTS, RUN_S))
            batches_after = batch_sizes(metrics)
        finally:
            proc.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    mean_batch = (batches_after[1] - batches_before[1]) / max(1.0, batches_after[0] - batches_before[0])
    return Run(one, many, server_cpu_us, mean_batch)


def run(report: Reporter) -> None:
    probe_dir = short_tmp()
    try:
        fsync_ms = fsync_latency_s(probe_dir) * 1e3
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)
    baseline = raw_rate()
    durable = measure(fsync=True)
    relaxed = measure(fsync=False)
    baseline = (baseline + raw_rate()) / 2  # before and after, against drift on a shared machine
    disk = f"this disk's fsync ≈ {fsync_ms:.2f} ms (median of 50)"
    for run_, fsync in ((durable, True), (relaxed, False)):
        suffix = "" if fsync else "_no_fsync"
        mode = ("default durability: SQLite FULL commit + audit fsync, overlapped, per batch" if fsync else
                "SIGNER_FSYNC=false: survives kill -9, not power loss")
        verdict = "meets" if run_.one >= GOAL_PER_S else "misses"
        report.figure(metric=f"grpc_signatures_per_s_1_client{suffix}", value=run_.one, unit="sig/s",
                      baseline=baseline,
                      note=f"{run_.one:,.0f}/s absolute ({verdict} the {GOAL_PER_S:,}/s one-client goal); {mode}; "
                           f"{disk}; baseline = raw in-process Ed25519 {baseline:,.0f}/s; {IDS_PER_TX} ids/request")
        report.figure(metric=f"grpc_signatures_per_s_{CLIENTS}_clients{suffix}", value=run_.many, unit="sig/s",
                      baseline=baseline,
                      note=f"{run_.many:,.0f}/s absolute; {mode}; mean group-commit batch {run_.mean_batch_many:.1f}")
        report.figure(metric=f"server_cpu_us_per_signature{suffix}", value=run_.server_cpu_us, unit="us",
                      baseline=1e6 / baseline, higher_is_better=False,
                      note=f"signer process CPU per policy-checked signature (1 client), all threads, vs one raw "
                           f"Ed25519 sign; {2e6 / run_.server_cpu_us:,.0f}/s is the 2-core ceiling this implies "
                           f"for the server side alone")
