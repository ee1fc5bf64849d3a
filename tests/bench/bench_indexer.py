"""Indexer benchmark: chain-sync catch-up and gRPC query latency (``make bench BENCH=indexer``).

A devnet process produces a chain of ``CHAIN_BLOCKS`` typical blocks (4 txs each: payments among the
genesis keys, one in four minting a token with metadata). Then, interleaved, best of ``ROUNDS`` (the box
is shared; best-of is the stable statistic):

- baseline: a bare client (the ``websockets`` library the indexer uses, ``WINDOW`` pipelined ``nextBlock``,
  every frame parsed with orjson) syncing from origin to the tip;
- value: the indexer's chain follower (its Ogmios client, block extraction, SQLite store with batched
  commits, GC tuned as ``python -m indexer`` does) catching up from origin into an empty store, configured
  like an appliance: treasury and sink addresses of its own and the policy of genesis key 0's mints, so
  one tx in twelve is recorded in full and every tx id is indexed.

Figures: follower blocks/s against the bare client (goal >= 0.5), the same rate against DESIGN's 1,000
blocks/s target, and p50/p99 latency of GetTip, GetTransactionStatus and GetAssetBalance over gRPC on a
running ``python -m indexer`` against a bare ``grpc.health.v1`` Check round-trip on the same server,
measured on the same ``CHAIN_BLOCKS``-block chain once the indexer has caught up with it. (Until the
devnet's Kupo kept indexes it scanned every output per ``/matches`` query, ~100 ms at this length, so this
was measured on a 20-block chain instead.)
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cbor2
import orjson

if TYPE_CHECKING:
    from tests.bench.harness import Reporter

CHAIN_BLOCKS = 10_000
WINDOW = 100
ROUNDS = 3
LATENCY_CALLS = 400
SINK = "addr_test1vpd4kk6mtdd4kk6mtdd4kk6mtdd4kk6mtdd4kk6mtdd4kkc555e07"
TREASURY = "addr_test1vpl8uln70el8uln70el8uln70el8uln70el8uln70el8ulsg8h5yh"


def _sig_policy(key_hash_hex: str) -> str:
    """Policy id of the native script ``sig(key_hash)``: blake2b-224 of 0x00 || CBOR([0, key hash])."""
    script = cbor2.dumps([0, bytes.fromhex(key_hash_hex)])
    return hashlib.blake2b(b"\x00" + script, digest_size=28).hexdigest()


async def bare_sync(url: str) -> tuple[int, float]:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=64 * 1024 * 1024, compression=None, proxy=None) as ws:
        await ws.send('{"jsonrpc":"2.0","method":"findIntersection","params":{"points":["origin"]},"id":0}')
        tip_height = orjson.loads(await ws.recv(decode=False))["result"]["tip"]["height"]
        request = '{"jsonrpc":"2.0","method":"nextBlock","id":1}'
        started = time.perf_counter()
        for _ in range(WINDOW):
            await ws.send(request)
        blocks = 0
        while True:
            result = orjson.loads(await ws.recv(decode=False))["result"]
            if result["direction"] == "forward":
                blocks += 1
                if result["block"]["height"] >= tip_height:
                    return blocks, time.perf_counter() - started
            await ws.send(request)


async def follower_sync(url: str, treasury: str, policy_id: str, db_dir: Path) -> tuple[int, float]:
    from indexer.chain import Relevance
    from indexer.follower import Follower
    from indexer.ogmios import OgmiosClient
    from indexer.store import Store

    store = Store.open(db_dir / "bench.sqlite3")
    client = OgmiosClient(url, name="chainsync")
    await client.connect()
    tip_height = int(await client.request("queryNetwork/blockHeight"))
    follower = Follower(client, store, Relevance(frozenset({treasury, SINK}), policy_id), start_point="origin")
    reached = asyncio.Event()
    follower.on_commit = lambda: reached.set() if follower.tip and follower.tip.height >= tip_height else None
    started = time.perf_counter()
    task = asyncio.create_task(follower.run())
    await asyncio.wait_for(reached.wait(), 300)
    seconds = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    store.close()
    return follower.blocks_processed, seconds


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _latencies(target: str, tx_id: str) -> dict[str, list[float]]:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from common.grpcutil import open_channel
    from common.rpc.creatorpass.v1 import chain_pb2, chain_pb2_grpc

    calls: dict[str, Any] = {}
    async with open_channel(target) as channel:
        chain = chain_pb2_grpc.ChainServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        calls = {
            "health Check": lambda: health.Check(health_pb2.HealthCheckRequest()),
            "GetTip": lambda: chain.GetTip(chain_pb2.GetTipRequest()),
            "GetTransactionStatus": lambda: chain.GetTransactionStatus(
                chain_pb2.GetTransactionStatusRequest(tx_id=tx_id)),
            "GetAssetBalance": lambda: chain.GetAssetBalance(chain_pb2.GetAssetBalanceRequest(address=SINK)),
        }
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():  # warm-up
            for _ in range(20):
                await call()
        for _ in range(LATENCY_CALLS):  # interleaved, so drift hits every call alike
            for name, call in calls.items():
                started = time.perf_counter()
                await call()
                samples[name].append(time.perf_counter() - started)
    return samples


def _catch_up(report: Reporter, dev: Any, treasury: str, policy_id: str) -> None:
    from indexer.app import tune_gc

    asyncio.run(bare_sync(dev.ogmios_url))  # warm the devnet's block JSON cache
    thresholds = gc.get_threshold()
    bare_runs, follower_runs = [], []
    try:
        tune_gc()
        for _ in range(ROUNDS):
            blocks, seconds = asyncio.run(bare_sync(dev.ogmios_url))
            bare_runs.append(blocks / seconds)
            with tempfile.TemporaryDirectory(prefix="bench-indexer-") as tmp:
                blocks, seconds = asyncio.run(follower_sync(dev.ogmios_url, treasury, policy_id, Path(tmp)))
            follower_runs.append(blocks / seconds)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    bare, follower = max(bare_runs), max(follower_runs)
    runs = (f"follower runs {', '.join(f'{r:,.0f}' for r in follower_runs)}; bare runs "
            f"{', '.join(f'{r:,.0f}' for r in bare_runs)}")
    report.figure(metric="catch-up blocks/s vs bare client", value=follower, unit="blocks/s", baseline=bare,
                  goal=0.5, note=f"{CHAIN_BLOCKS:,} typical blocks from origin, best of {ROUNDS} interleaved; "
                  f"baseline = bare pipelined chain-sync client parsing every frame; {runs}")
    report.figure(metric="catch-up blocks/s vs 1,000/s target", value=follower, unit="blocks/s", baseline=1000.0,
                  goal=1.0, note="DESIGN §10 target (a constant, not measured): >= 1,000 blocks/s of devnet "
                  "blocks with typical txs")


def _query_latency(report: Reporter, dev: Any, env: dict[str, str], tx_id: str, db_dir: Path) -> None:
    from tests.support.indexer_fixture import IndexerProcess

    idx = IndexerProcess(ogmios_url=dev.ogmios_url, kupo_url=dev.kupo_url, db_path=db_dir / "i.sqlite3", env=env)
    try:
        idx.start()
        idx.wait_health({200}, timeout_s=120)
        samples = asyncio.run(_latencies(idx.grpc_target, tx_id))
    finally:
        idx.close()
    base = samples.pop("health Check")
    for name, values in samples.items():
        for label, q in (("p50", 0.5), ("p99", 0.99)):
            report.figure(metric=f"{name} latency {label}", value=_percentile(values, q) * 1e3, unit="ms",
                          baseline=_percentile(base, q) * 1e3, goal=None, higher_is_better=False,
                          note=f"{LATENCY_CALLS} sequential calls, one client, on the {CHAIN_BLOCKS:,}-block "
                          f"chain; baseline = grpc.health.v1 Check {label} on the same server (mean "
                          f"{statistics.fmean(values) * 1e3:.2f} ms)")


def run(report: Reporter) -> None:
    from common.logging import configure_logging
    from tests.support.devnet_fixture import DevnetProcess

    configure_logging("bench-indexer", "WARNING", json=False)
    with DevnetProcess(block_time=0, seed="bench-indexer",
                       extra_args=["--system-start-offset", str(CHAIN_BLOCKS * 2)]) as dev:
        keys = dev.info()["genesis"]["keys"]
        policy_id = _sig_policy(keys[0]["key_hash"])
        dev.fund(SINK, 5_000_000)
        tx_id = dev.fund(SINK, 7_000_000)
        dev.blocks(CHAIN_BLOCKS, fill="typical")
        _catch_up(report, dev, TREASURY, policy_id)
        # Query latency on the long chain: the devnet's Kupo answers /matches from its indexes, as Kupo does.
        env = {"INDEXER_TREASURY_ADDRESS": TREASURY, "INDEXER_SINK_ADDRESS": SINK, "INDEXER_POLICY_ID": policy_id}
        with tempfile.TemporaryDirectory(prefix="bench-indexer-") as tmp:
            _query_latency(report, dev, env, tx_id, Path(tmp))
