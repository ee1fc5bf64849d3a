"""``python -m inference`` as a real process: readiness, a corrupt model, health-check, graceful stop."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.rpc.creatorpass.v1 import inference_pb2, inference_pb2_grpc
from inference.server import model_health_name
from tests.inference.conftest import collect, request
from tests.support.devnet_fixture import free_ports
from tests.support.tiny_sd import corrupt_file

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def inference_process(tmp_path: Path, tiny_sd_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    models = tmp_path / "models"
    shutil.copytree(tiny_sd_dir, models / "tiny-sd")
    shutil.copytree(tiny_sd_dir, models / "broken-sd")
    (models / "broken-sd" / "model.json").write_text('{"default_width": 64, "default_height": 64}')
    corrupt_file(models / "broken-sd" / "unet" / "model.onnx")
    grpc_port, health_port = free_ports(2)
    env = {**os.environ, "INFERENCE_LISTEN": f"127.0.0.1:{grpc_port}", "INFERENCE_HEALTH_PORT": str(health_port),
           "INFERENCE_MODEL_DIR": str(models), "INFERENCE_PROVIDERS": "tensorrt,cuda,cpu",
           "INFERENCE_INTRA_OP_THREADS": "1", "INFERENCE_DATA_DIR": str(tmp_path / "data")}
    log = (tmp_path / "inference.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "inference"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp_path / "inference.log").read_text()
        try:
            if health(health_port)[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "inference never became healthy"
        time.sleep(0.05)
    yield proc, env
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    log.close()


async def test_corrupt_model_fails_readiness_not_the_process(
        inference_process: tuple[subprocess.Popen[bytes], dict[str, str]]) -> None:
    proc, env = inference_process
    async with grpc.aio.insecure_channel(env["INFERENCE_LISTEN"]) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        hstub = health_pb2_grpc.HealthStub(channel)
        for _ in range(600):  # the SD models load after the built-in one; wait until every one settled
            listed = {m.name: m for m in (await stub.ListModels(inference_pb2.ListModelsRequest())).models}
            if all(m.ready or m.error for m in listed.values()):
                break
            await asyncio.sleep(0.05)
        assert listed["cppn"].ready and listed["tiny-sd"].ready and listed["cppn"].provider == "cpu"
        broken = listed["broken-sd"]
        assert not broken.ready and "unet" in broken.error
        answer = await hstub.Check(health_pb2.HealthCheckRequest(service=model_health_name("broken-sd")))
        assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
        answer = await hstub.Check(health_pb2.HealthCheckRequest(service=model_health_name("tiny-sd")))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(stub.Generate(request(model="broken-sd")))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "unet" in (err.value.details() or "")
        for model in ("", "tiny-sd"):
            events = await collect(stub.Generate(request(model=model, seed=1)))
            assert events[-1].done.images == 1
    status, body = health(int(env["INFERENCE_HEALTH_PORT"]))
    assert status == 200 and body["models"]["broken-sd"]["state"] == "failed"  # type: ignore[index]
    with urllib.request.urlopen(f"http://127.0.0.1:{env['INFERENCE_HEALTH_PORT']}/metrics", timeout=2) as resp:
        metrics = resp.read().decode()
    assert 'creatorpass_inference_provider_info{model="cppn",provider="cpu"} 1.0' in metrics
    assert "creatorpass_inference_batch_images_bucket" in metrics
    assert "creatorpass_inference_queue_depth" in metrics
    check = subprocess.run([sys.executable, "-m", "inference", "health-check"], cwd=REPO, env=env,
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def test_bad_configuration_exits_2_naming_the_variable() -> None:
    env = {**os.environ, "INFERENCE_PROVIDERS": "gpu"}
    result = subprocess.run([sys.executable, "-m", "inference"], cwd=REPO, env=env, capture_output=True,
                            timeout=30)
    assert result.returncode == 2
    assert b"INFERENCE_PROVIDERS" in result.stderr


def test_export_cppn_writes_the_builtin_graph(tmp_path: Path) -> None:
    from inference.cppn import cppn_model_bytes

    out = tmp_path / "cppn.onnx"
    result = subprocess.run([sys.executable, "-m", "inference", "export-cppn", str(out)], cwd=REPO,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == cppn_model_bytes()
