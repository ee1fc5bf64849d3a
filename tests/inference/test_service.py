"""InferenceService over real gRPC on loopback: streaming, determinism, bad requests, ListModels, health."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from common.rpc.creatorpass.v1 import inference_pb2
from inference.server import INFERENCE_SERVICE, model_health_name
from tests.inference.conftest import ServerFactory, collect, request
from tests.support.tiny_sd import build_brightness_classifier

Stage = inference_pb2.Progress.Stage


def images_of(events: list[inference_pb2.GenerateEvent]) -> list[inference_pb2.Image]:
    return [e.image for e in events if e.WhichOneof("event") == "image"]


async def test_generate_streams_progress_then_images_then_done(start_server: ServerFactory) -> None:
    running = await start_server()
    events = await collect(running.stub.Generate(request(num_images=2, seed=5, steps=3, request_id="gen-1")))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-3:] == ["image", "image", "done"]
    assert set(kinds[:-3]) == {"progress"}
    stages = [e.progress.stage for e in events if e.WhichOneof("event") == "progress"]
    assert stages[0] == Stage.STAGE_QUEUED and stages[-1] == Stage.STAGE_POSTPROCESSING
    assert Stage.STAGE_DENOISING in stages and Stage.STAGE_ENCODING in stages
    denoise = next(e.progress for e in events if e.progress.stage == Stage.STAGE_DENOISING)
    assert (denoise.step, denoise.total_steps) == (3, 3)
    images = images_of(events)
    assert [i.index for i in images] == [0, 1] and [i.seed for i in images] == [5, 6]
    for image in images:
        assert (image.width, image.height, image.model) == (64, 64, "cppn")
        assert Image.open(io.BytesIO(image.png)).size == (64, 64)
        assert not image.safety.checked and not image.safety.flagged
        assert image.timings.total_ms >= image.timings.inference_ms > 0
    assert images[0].png != images[1].png
    done = events[-1].done
    assert (done.images, done.flagged, done.provider) == (2, 0, "cpu")


async def test_same_prompt_and_seed_give_the_same_bytes(start_server: ServerFactory) -> None:
    running = await start_server()
    first = images_of(await collect(running.stub.Generate(request(seed=1234))))[0]
    again = images_of(await collect(running.stub.Generate(request(seed=1234))))[0]
    other_seed = images_of(await collect(running.stub.Generate(request(seed=1235))))[0]
    other_prompt = images_of(await collect(running.stub.Generate(request("sunset over a calm sea", seed=1234))))[0]
    assert first.png == again.png
    assert first.png != other_seed.png and first.png != other_prompt.png


async def test_unset_seed_is_random_and_reported_so_it_replays(start_server: ServerFactory) -> None:
    running = await start_server()
    a = images_of(await collect(running.stub.Generate(request())))[0]
    b = images_of(await collect(running.stub.Generate(request())))[0]
    assert a.seed != b.seed
    replay = images_of(await collect(running.stub.Generate(request(seed=a.seed))))[0]
    assert replay.png == a.png


@pytest.mark.parametrize(("fields", "message"), [
    ({"prompt": ""}, "prompt is empty"),
    ({"prompt": "   \n"}, "prompt is empty"),
    ({"prompt": "x" * 2001}, "at most 2000"),
    ({"negative_prompt": "y" * 2001}, "negative_prompt"),
    ({"model": "no-such-model"}, "unknown model"),
    ({"width": 4096}, "width 4096 is out of range"),
    ({"height": 8}, "height 8 is out of range"),
    ({"width": 100}, "not a multiple of 8"),
    ({"steps": 50}, "steps 50 is out of range"),
    ({"num_images": 9}, "num_images 9"),
    ({"request_id": "r" * 500}, "request_id"),
])
async def test_bad_requests_are_invalid_argument_with_a_message(
        start_server: ServerFactory, fields: dict[str, object], message: str) -> None:
    running = await start_server()
    body = {"prompt": "a cat", **fields}
    prompt = body.pop("prompt")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(running.stub.Generate(request(str(prompt), **body)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (err.value.details() or "")


async def test_list_models_and_per_model_health(start_server: ServerFactory, tiny_sd_dir: Path) -> None:
    running = await start_server(model_dir=tiny_sd_dir.parent)
    listed = {m.name: m for m in (await running.stub.ListModels(inference_pb2.ListModelsRequest())).models}
    assert set(listed) == {"cppn", "tiny-sd"}
    cppn, sd = listed["cppn"], listed["tiny-sd"]
    assert cppn.ready and cppn.is_default and cppn.kind == "cppn" and cppn.provider == "cpu"
    assert (cppn.default_width, cppn.default_height, cppn.max_steps) == (512, 512, 4)
    assert sd.ready and sd.kind == "sd-turbo" and (sd.default_steps, sd.max_steps) == (1, 4)
    health = health_pb2_grpc.HealthStub(running.channel)
    for service in ("", INFERENCE_SERVICE, model_health_name("cppn"), model_health_name("tiny-sd")):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_sd_turbo_model_streams_each_denoising_step(start_server: ServerFactory, tiny_sd_dir: Path) -> None:
    running = await start_server(model_dir=tiny_sd_dir)
    events = await collect(running.stub.Generate(request(model="tiny-sd", steps=4, seed=3, num_images=2)))
    steps = [e.progress.step for e in events if e.progress.stage == Stage.STAGE_DENOISING]
    assert steps == [1, 2, 3, 4]
    assert Stage.STAGE_DECODING in [e.progress.stage for e in events]
    images = images_of(events)
    assert [Image.open(io.BytesIO(i.png)).size for i in images] == [(64, 64), (64, 64)]
    again = images_of(await collect(running.stub.Generate(request(model="tiny-sd", steps=4, seed=3))))
    assert again[0].png == images[0].png
    with pytest.raises(grpc.aio.AioRpcError) as err:  # SD sizes come in multiples of 64
        await collect(running.stub.Generate(request(model="tiny-sd", width=72)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(("threshold", "flagged"), [(0.0, True), (1.01, False)])
async def test_safety_checker_verdict_is_reported_per_image(
        start_server: ServerFactory, tmp_path: Path, threshold: float, flagged: bool) -> None:
    checker = build_brightness_classifier(tmp_path / "safety.onnx", size=32)
    running = await start_server(safety_checker=checker, safety_threshold=threshold)
    events = await collect(running.stub.Generate(request(num_images=2, seed=9)))
    images = images_of(events)
    assert all(i.safety.checked and i.safety.flagged == flagged for i in images)
    assert all(0.0 < i.safety.score < 1.0 for i in images)
    assert all((i.png == b"") == flagged for i in images)
    assert events[-1].done.flagged == (2 if flagged else 0)
    assert events[-1].done.images == 2


async def test_a_broken_safety_checker_fails_closed(start_server: ServerFactory, tmp_path: Path) -> None:
    broken = tmp_path / "safety.onnx"
    broken.write_bytes(b"not a model")
    running = await start_server(safety_checker=broken)
    listed = (await running.stub.ListModels(inference_pb2.ListModelsRequest())).models
    assert not listed[0].ready and "safety checker" in listed[0].error
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(running.stub.Generate(request()))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
