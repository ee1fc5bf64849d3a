"""The chain follower against a fake Ogmios chain-sync server: catch-up, rollbacks, resume, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from indexer.chain import Relevance
from indexer.follower import Follower
from indexer.ogmios import OgmiosClient
from indexer.store import Store
from tests.indexer.fakes import FakeOgmios, make_tx


@pytest.fixture
async def ogmios() -> AsyncIterator[FakeOgmios]:
    server = await FakeOgmios().start()
    yield server
    await server.stop()


class Running:
    def __init__(self, follower: Follower, task: asyncio.Task[None]) -> None:
        self.follower, self.task = follower, task

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.follower.client.close()


async def start(url: str, store: Store, **kwargs: object) -> Running:
    client = OgmiosClient(url, name="chainsync", connect_timeout_s=1.0, max_backoff_s=0.1)
    follower = Follower(client, store, Relevance(frozenset()), start_point=kwargs.pop("start", "origin"),  # type: ignore[arg-type]
                        max_backoff_s=0.1, **kwargs)  # type: ignore[arg-type]
    return Running(follower, asyncio.create_task(follower.run()))


async def until(check: Callable[[], bool | Awaitable[bool]], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            result = check()
            if await result if not isinstance(result, bool) else result:
                return
            await asyncio.sleep(0.01)


async def test_catches_up_then_follows_the_tip(ogmios: FakeOgmios, tmp_path: Path) -> None:
    await ogmios.chain.add(count=300)
    store = Store.open(tmp_path / "i.db")
    running = await start(ogmios.url, store, pipeline_depth=20, batch_max_blocks=50)
    await until(lambda: running.follower.tip is not None and running.follower.tip.height == 299)
    assert running.follower.connected and running.follower.lag_slots == 0
    [block] = await ogmios.chain.add([make_tx("aa" * 32)])
    await until(lambda: running.follower.tip.height == 300)  # type: ignore[union-attr]
    assert store.locate(["aa" * 32])["aa" * 32].block_id == block["id"]
    await running.stop()
    store.close()


async def test_rollback_marks_txs_then_reinclusion_confirms(ogmios: FakeOgmios, tmp_path: Path) -> None:
    tx = "bb" * 32
    await ogmios.chain.add(count=5)
    await ogmios.chain.add([make_tx(tx)])
    await ogmios.chain.add(count=2)
    store = Store.open(tmp_path / "i.db")
    running = await start(ogmios.url, store)
    await until(lambda: running.follower.tip is not None and running.follower.tip.height == 7)
    await ogmios.chain.rollback(4)
    await ogmios.chain.add(count=1)
    await until(lambda: store.locate([tx])[tx].rolled_back and running.follower.tip.height == 4)  # type: ignore[union-attr]
    assert running.follower.rollbacks == 1
    await ogmios.chain.add([make_tx(tx)])
    await until(lambda: not store.locate([tx])[tx].rolled_back)
    assert store.locate([tx])[tx].height == 5
    await running.stop()
    store.close()


async def test_restart_resumes_from_stored_points(ogmios: FakeOgmios, tmp_path: Path) -> None:
    await ogmios.chain.add(count=40)
    store = Store.open(tmp_path / "i.db")
    running = await start(ogmios.url, store)
    await until(lambda: running.follower.tip is not None and running.follower.tip.height == 39)
    await running.stop()
    await ogmios.chain.rollback(3)  # a fork happened while we were away
    await ogmios.chain.add(count=10)
    ogmios.requests.clear()
    running = await start(ogmios.url, store)
    await until(lambda: running.follower.tip is not None and running.follower.tip.height == 46)
    finds = [p for m, p in ogmios.requests if m == "findIntersection"]
    assert finds[0]["points"][0]["slot"] == 39 * 2 + 1  # resumed at the stored tip, not origin
    assert running.follower.blocks_processed == 10
    assert [b.id for b in [store.tip()]] == [ogmios.chain.blocks[-1]["id"]]  # type: ignore[union-attr]
    await running.stop()
    store.close()


async def test_fork_deeper_than_kept_points_restarts_from_start_point(ogmios: FakeOgmios, tmp_path: Path) -> None:
    await ogmios.chain.add(count=30)
    store = Store.open(tmp_path / "i.db")
    running = await start(ogmios.url, store, keep_points=10)
    await until(lambda: running.follower.tip is not None and running.follower.tip.height == 29)
    await running.stop()
    await ogmios.chain.rollback(25)
    await ogmios.chain.add(count=30)
    running = await start(ogmios.url, store, keep_points=10)
    await until(lambda: running.follower.tip is not None and running.follower.tip.id == ogmios.chain.blocks[-1]["id"])
    await running.stop()
    store.close()


async def test_reconnects_after_the_connection_drops(ogmios: FakeOgmios, tmp_path: Path) -> None:
    await ogmios.chain.add(count=10)
    store = Store.open(tmp_path / "i.db")
    running = await start(ogmios.url, store)
    await until(lambda: running.follower.tip is not None and running.follower.tip.height == 9)
    await ogmios.drop_connections()
    await until(lambda: not running.follower.connected, 5)
    await ogmios.chain.add(count=5)
    await until(lambda: running.follower.tip.height == 14 and running.follower.connected)  # type: ignore[union-attr]
    assert running.follower.client.generation >= 2
    await running.stop()
    store.close()


async def test_start_at_tip_skips_history(ogmios: FakeOgmios, tmp_path: Path) -> None:
    await ogmios.chain.add(count=50)
    store = Store.open(tmp_path / "i.db")
    running = await start(ogmios.url, store, start="tip")
    await until(lambda: running.follower.connected)
    await ogmios.chain.add(count=2)
    await until(lambda: running.follower.tip is not None and running.follower.tip.height == 51)
    assert running.follower.blocks_processed == 2
    await running.stop()
    store.close()
