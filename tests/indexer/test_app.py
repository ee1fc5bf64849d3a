"""The wired indexer in-process against the in-test Ogmios and Kupo: health semantics and a gRPC round trip."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from common.grpcutil import open_channel
from common.rpc.creatorpass.v1 import chain_pb2, chain_pb2_grpc
from indexer import app as app_module
from indexer.app import Indexer
from indexer.config import IndexerSettings
from tests.indexer.fakes import FakeKupo, FakeOgmios, make_tx
from tests.indexer.test_follower import until


@pytest.fixture
async def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Indexer, FakeOgmios,
                                                                                           FakeKupo]]:
    monkeypatch.setattr(app_module, "KUPO_PING_S", 0.05)
    ogmios, kupo = await FakeOgmios().start(), await FakeKupo().start()
    await ogmios.chain.add(count=5)
    settings = IndexerSettings(ogmios_url=ogmios.url, kupo_url=kupo.url, listen="127.0.0.1:0", health_port=0,
                               db_path=tmp_path / "i.db", reconnect_max_backoff_s=0.1, synced_lag_slots=4)
    settings.validate()
    indexer = Indexer(settings)
    await indexer.start()
    yield indexer, ogmios, kupo
    await indexer.stop()
    await ogmios.stop()
    await kupo.stop()


def _health(indexer: Indexer) -> tuple[int, dict[str, object]]:
    assert indexer.health_server is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{indexer.health_server.port}/health", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def test_health_follows_kupo_semantics(running: tuple[Indexer, FakeOgmios, FakeKupo]) -> None:
    indexer, ogmios, kupo = running
    await until(lambda: indexer.health()[0] == 200)
    status, body = await asyncio.to_thread(_health, indexer)
    assert status == 200 and body["status"] == "synced" and body["tip_height"] == 4
    kupo.health_status = 503
    await until(lambda: indexer.health()[0] == 503)
    kupo.health_status = 200
    await until(lambda: indexer.health()[0] == 200)
    ogmios.delay_s["nextBlock"] = 0.05  # a slow node: the indexer falls behind the tip it is told about
    await ogmios.chain.add(count=20)
    await until(lambda: indexer.health()[0] == 202)
    ogmios.delay_s.clear()
    await until(lambda: indexer.health()[0] == 200)
    await ogmios.stop()
    await ogmios.drop_connections()
    await until(lambda: indexer.health()[0] == 503)
    assert indexer.health()[1]["status"] == "disconnected"


async def test_grpc_round_trip_and_watch_of_a_foreign_mempool_tx(
        running: tuple[Indexer, FakeOgmios, FakeKupo]) -> None:
    indexer, ogmios, _ = running
    assert indexer.grpc is not None
    tx_id = "cd" * 32
    async with open_channel(indexer.grpc.target) as channel:
        stub = chain_pb2_grpc.ChainServiceStub(channel)
        await until(lambda: indexer.health()[0] == 200)
        tip = await stub.GetTip(chain_pb2.GetTipRequest())
        assert tip.indexer_tip.height == 4 and tip.connected
        stream = stub.WatchTransactions(chain_pb2.WatchTransactionsRequest(tx_ids=[tx_id], until_depth=2))
        seen = [await stream.read()]
        ogmios.set_mempool({tx_id})  # a wallet submitted it itself
        seen.append(await stream.read())
        ogmios.set_mempool(set())
        await ogmios.chain.add([make_tx(tx_id)])
        await ogmios.chain.add()
        while (status := await stream.read()) is not grpc.aio.EOF:
            seen.append(status)
    states = [(s.state, s.depth) for s in seen]
    State = chain_pb2.TransactionStatus.State
    assert states[:2] == [(State.STATE_UNKNOWN, 0), (State.STATE_MEMPOOL, 0)]
    assert states[-1] == (State.STATE_CONFIRMED, 2)
