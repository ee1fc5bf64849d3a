"""Queue, batching and cancellation, over real gRPC, with the worker held by a gate (no timing guesses)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from common.rpc.creatorpass.v1 import inference_pb2
from inference.registry import ModelRegistry
from tests.inference.conftest import GatedModel, Running, ServerFactory, collect, request

Stage = inference_pb2.Progress.Stage


async def queued(running: Running, **fields: Any) -> Any:
    """Start a call and read events until it is in the queue (its QUEUED event)."""
    call = running.stub.Generate(request(**fields))
    first = await call.read()
    assert first.progress.stage == Stage.STAGE_QUEUED
    return call


async def until_queue_depth(running: Running, depth: int) -> None:
    for _ in range(500):
        if running.server.engine.queue_depth == depth:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"queue depth stayed {running.server.engine.queue_depth}, expected {depth}")


async def test_full_queue_is_resource_exhausted_and_cancelling_frees_the_slot(
        start_server: ServerFactory, gated_registry: tuple[ModelRegistry, GatedModel]) -> None:
    registry, gated = gated_registry
    running = await start_server(registry, queue_max=1, max_batch=1, max_wait_ms=0)
    holder = await queued(running, seed=1)
    await gated.wait_entered()  # the worker is busy with `holder`; the queue is empty
    waiting = await queued(running, seed=2)
    assert waiting is not None
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(running.stub.Generate(request(seed=3)))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue is full" in (err.value.details() or "")

    waiting.cancel()
    await until_queue_depth(running, 0)
    replacement = await queued(running, seed=4)
    gated.gate.set()
    done_holder = (await collect(holder))[-1]
    done_replacement = (await collect(replacement))[-1]
    assert done_holder.done.images == 1 and done_replacement.done.images == 1
    assert gated.batches == [1, 1]  # the cancelled request never ran


async def test_a_passed_deadline_frees_the_slot(
        start_server: ServerFactory, gated_registry: tuple[ModelRegistry, GatedModel]) -> None:
    registry, gated = gated_registry
    running = await start_server(registry, queue_max=1, max_batch=1, max_wait_ms=0)
    holder = await queued(running, seed=1)
    await gated.wait_entered()
    impatient = running.stub.Generate(request(seed=2), timeout=0.5)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(impatient)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await until_queue_depth(running, 0)
    after = await queued(running, seed=3)
    gated.gate.set()
    assert (await collect(holder))[-1].done.images == 1
    assert (await collect(after))[-1].done.images == 1


async def test_a_caller_leaving_a_running_batch_frees_the_worker(
        start_server: ServerFactory, gated_registry: tuple[ModelRegistry, GatedModel]) -> None:
    registry, gated = gated_registry
    running = await start_server(registry, queue_max=4, max_batch=1, max_wait_ms=0)
    leaver = await queued(running, seed=1)
    await gated.wait_entered()
    leaver.cancel()
    gated.gate.set()
    follower = await collect(running.stub.Generate(request(seed=2)))
    assert follower[-1].done.images == 1


async def test_queued_compatible_requests_share_one_batch(
        start_server: ServerFactory, gated_registry: tuple[ModelRegistry, GatedModel]) -> None:
    registry, gated = gated_registry
    running = await start_server(registry, queue_max=16, max_batch=4, max_wait_ms=0)
    holder = await queued(running, seed=0)
    await gated.wait_entered()
    # Queued while the worker is busy: three 64×64 requests (4 images), one 128×128, one more 64×64.
    calls = [await queued(running, seed=10, num_images=2), await queued(running, seed=20),
             await queued(running, seed=30, width=128, height=128), await queued(running, seed=40),
             await queued(running, seed=50)]
    gated.gate.set()
    results = [await collect(c) for c in [holder, *calls]]
    assert all(r[-1].done.images >= 1 for r in results)
    # holder alone; then the 64×64 ones up to 4 images (2 + 1 + 1); then the 128×128 one; then the rest.
    assert gated.batches == [1, 4, 1, 1]


async def test_a_lone_request_waits_at_most_max_wait_for_company(
        start_server: ServerFactory, gated_registry: tuple[ModelRegistry, GatedModel]) -> None:
    registry, gated = gated_registry
    gated.gate.set()
    running = await start_server(registry, max_batch=8, max_wait_ms=20)
    events = await collect(running.stub.Generate(request(seed=1)))
    assert events[-1].done.images == 1 and gated.batches == [1]


async def test_batched_images_equal_images_made_alone(start_server: ServerFactory) -> None:
    running = await start_server(max_batch=8, max_wait_ms=200)
    together = await asyncio.gather(*(collect(running.stub.Generate(request(f"prompt number {i}", seed=i)))
                                      for i in range(4)))
    for i, events in enumerate(together):
        alone = await collect(running.stub.Generate(request(f"prompt number {i}", seed=i)))
        assert events[-2].image.png == alone[-2].image.png

