"""Signer benchmark (``make bench BENCH=signer``).

Policy-checked signatures per second over gRPC (unix socket) from a real ``python -m signer serve``
process (file key store, default durability: SQLite ``synchronous=FULL`` plus an audit-log fsync before
every reply), with 1 and with 8 concurrent clients, beside raw in-process Ed25519 signing of a 32-byte
body hash in this process (the baseline: what a blind signer would do, measured in the same run).
Every request is a distinct burn batch (fresh generation ids), so each one is decoded, checked,
recorded and audited. Goal from DESIGN §10: ≥ 1,000/s with one client on a 2-core machine; the figure's
ratio is against the raw rate, the absolute rate is in the note.
"""

from __future__ import annotations

import asyncio
import shutil
import time
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
RUN_S = 4.0
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


def run(report: Reporter) -> None:
    workdir = short_tmp()
    try:
        prov = provision("file", workdir, "mint", extra={
            "SIGNER_MAX_TOKENS_PER_DAY": "1000000000", "SIGNER_LOG_LEVEL": "WARNING"})
        proc = SignerProcess(prov.env, workdir)
        try:
            proc.wait_ready()
            with grpc.insecure_channel(proc.target) as channel:
                cfg = policy_of(signer_pb2_grpc.SignerServiceStub(channel).GetIdentity(
                    signer_pb2.GetIdentityRequest(), timeout=5))
            budget = int(RUN_S * 6_000)
            single, multi = Requests(cfg, budget, "one"), Requests(cfg, budget, "many")
            asyncio.run(grpc_rate(proc.target, Requests(cfg, 300, "warm"), 1, 0.5))
            baseline = raw_rate()
            one = asyncio.run(grpc_rate(proc.target, single, 1, RUN_S))
            many = asyncio.run(grpc_rate(proc.target, multi, CLIENTS, RUN_S))
        finally:
            proc.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    verdict = "meets" if one >= GOAL_PER_S else "misses"
    report.figure(metric="grpc_signatures_per_s_1_client", value=one, unit="sig/s", baseline=baseline,
                  note=f"{one:,.0f}/s absolute with one client ({verdict} the {GOAL_PER_S:,}/s goal); baseline = raw "
                       f"in-process Ed25519 sign {baseline:,.0f}/s; each request: strict decode, policy, SQLite "
                       f"FULL commit + audit fsync, {IDS_PER_TX} generation ids")
    report.figure(metric=f"grpc_signatures_per_s_{CLIENTS}_clients", value=many, unit="sig/s", baseline=baseline,
                  note=f"{many:,.0f}/s absolute with {CLIENTS} concurrent clients (group commit: one fsync per batch)")
