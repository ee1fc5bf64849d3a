"""Group commit: requests that arrive while a batch is being made durable go together in the next one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from signer.batcher import Batcher, QueueFull
from signer.core import BurnRequest, Failed, MintRequest, Outcome, Signed
from signer.errors import StateError


class FakeCore:
    """Records batch sizes and the thread of each commit; the first commit on the worker thread blocks until
    released, so the other requests queue up behind it."""

    durable = True
    decide_on_loop = True

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.commit_threads: list[str] = []
        self.overlaps: list[bool] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail = fail

    def decide(self, requests: Sequence[BurnRequest | MintRequest]) -> FakeCore:
        self.batches.append(len(requests))
        self._outcomes: list[Outcome] = [
            Signed(tx_id=getattr(r, "request_id", ""), witness_set_cbor=b"", audit_id="a") for r in requests]
        return self

    def commit(self, *, overlap: bool = True) -> list[Outcome]:
        self.overlaps.append(overlap)
        on_worker = threading.current_thread().name.startswith("signer-core")
        if on_worker and not any(t.startswith("signer-core") for t in self.commit_threads):
            self.entered.set()
            self.release.wait(timeout=10)
        self.commit_threads.append(threading.current_thread().name)
        if self.fail:
            raise StateError("disk full")
        return self._outcomes


def request(i: int) -> BurnRequest:
    return BurnRequest(tx_cbor=b"", purpose=1, generation_ids=(str(i),), request_id=str(i))


async def test_waiting_requests_share_a_batch() -> None:
    core = FakeCore()
    batcher = Batcher(core, batch_max=8, queue_limit=100)  # type: ignore[arg-type]
    batcher.start()
    first = [asyncio.create_task(batcher.submit(request(i))) for i in range(2)]
    await asyncio.to_thread(core.entered.wait, 10)  # a batch of two commits on the worker, and blocks there
    others = [asyncio.create_task(batcher.submit(request(i))) for i in range(2, 21)]
    await asyncio.sleep(0)
    core.release.set()
    results = await asyncio.gather(*first, *others)
    assert [r.tx_id for r in results] == [str(i) for i in range(21)]  # type: ignore[union-attr]
    assert core.batches == [2, 8, 8, 3]
    assert core.commit_threads[0].startswith("signer-core") and all(core.overlaps)
    await batcher.stop()


async def test_a_lone_request_commits_on_the_loop() -> None:
    core = FakeCore()
    batcher = Batcher(core, batch_max=8, queue_limit=100)  # type: ignore[arg-type]
    batcher.start()
    outcome = await batcher.submit(request(0))
    assert isinstance(outcome, Signed) and core.batches == [1]
    assert core.commit_threads == [threading.current_thread().name] and core.overlaps == [False]
    await batcher.stop()


async def test_full_queue_is_refused() -> None:
    core = FakeCore()
    batcher = Batcher(core, batch_max=2, queue_limit=2)  # type: ignore[arg-type]
    batcher.start()
    first = [asyncio.create_task(batcher.submit(request(i))) for i in range(2)]
    await asyncio.to_thread(core.entered.wait, 10)  # the worker took requests 0 and 1 and blocks
    queued = [asyncio.create_task(batcher.submit(request(i))) for i in (2, 3)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        await batcher.submit(request(4))
    core.release.set()
    await asyncio.gather(*first, *queued)
    await batcher.stop()


async def test_durability_failure_stops_signing() -> None:
    core = FakeCore(fail=True)
    core.release.set()
    batcher = Batcher(core, batch_max=4, queue_limit=10)  # type: ignore[arg-type]
    batcher.start()
    outcome = await batcher.submit(request(0))
    assert isinstance(outcome, Failed) and "disk full" in outcome.detail
    assert batcher.broken_event.is_set()
    again = await batcher.submit(request(1))
    assert isinstance(again, Failed) and core.batches == [1]
    await batcher.stop()


async def test_without_fsync_a_request_is_decided_in_its_handler() -> None:
    core = FakeCore()
    core.durable = False
    batcher = Batcher(core, batch_max=8, queue_limit=100)  # type: ignore[arg-type]
    batcher.start()
    outcomes = await asyncio.gather(*(batcher.submit(request(i)) for i in range(3)))
    assert [o.tx_id for o in outcomes] == ["0", "1", "2"]  # type: ignore[union-attr]
    assert core.batches == [1, 1, 1] and set(core.commit_threads) == {threading.current_thread().name}
    core.fail = True
    failed = await batcher.submit(request(3))
    assert isinstance(failed, Failed) and batcher.broken_event.is_set()
    await batcher.stop()
