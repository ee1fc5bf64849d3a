"""GPU check for the inference service: which execution provider really runs each model, and how fast.

    python tests/bench/gpu_check.py [--model-dir DIR] [--require-gpu] [--providers tensorrt,cuda,cpu]

Prints one JSON object on stdout: onnxruntime's version and available providers, then per model
(the built-in CPPN at 512×512, and an SD-Turbo layout — the one in --model-dir / INFERENCE_MODEL_DIR,
else tiny random graphs built on the spot) the provider in use and images/s at batch 1 and at a
larger batch, measured straight on the model classes the server uses, and one request through the
real gRPC server per model (the provider its Done event names). Installs nothing; runs in well under
3 minutes (each measurement is bounded by --seconds) — except that TensorRT builds engines for a real
UNet on first use, which takes minutes: pass --providers cuda,cpu for a quick look, or --data-dir to
keep the engines. --require-gpu exits 1, loudly, when any model ended up on the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import onnxruntime as ort

from common.logging import configure_logging
from inference.cppn_model import CppnModel
from inference.model import ImageJob, Model
from inference.runtime import RuntimeConfig
from inference.sd_turbo import SdTurboModel

GPU_PROVIDERS = {"cuda", "tensorrt"}


def _gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _images_per_s(model: Model, side: int, steps: int, batch: int, seconds: float) -> float:
    jobs = [ImageJob(f"gpu check prompt {i}", "", side, side, steps, i) for i in range(batch)]
    model.generate(jobs, lambda *_: None, lambda: False)  # warm-up: kernels, autotuning, engine builds
    made, started = 0, time.perf_counter()
    while True:
        model.generate(jobs, lambda *_: None, lambda: False)
        made += batch
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return made / elapsed


def _measure(label: str, load: Any, side: int, steps: int, batches: tuple[int, ...], seconds: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        model = load()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
    row: dict[str, Any] = {"name": model.name, "provider": model.provider, "side": side, "steps": steps,
                           "load_s": round(time.perf_counter() - started, 2), "images_per_s": {}}
    for batch in batches:
        try:
            row["images_per_s"][str(batch)] = round(_images_per_s(model, side, steps, batch, seconds), 2)
        except Exception as exc:
            row["images_per_s"][str(batch)] = f"error: {type(exc).__name__}: {exc}"[:300]
    print(f"[gpu_check] {label}: {row}", file=sys.stderr, flush=True)
    return row


async def _served(model_dir: Path, providers: tuple[str, ...], data_dir: Path, side: int) -> dict[str, Any]:
    """One request per model through the real gRPC server; the provider its Done event names."""
    import grpc

    from common.rpc.creatorpass.v1 import inference_pb2, inference_pb2_grpc
    from inference.server import InferenceServer
    from inference.settings import InferenceSettings

    settings = InferenceSettings(listen="127.0.0.1:0", health_port=0, providers=providers, model_dir=model_dir,
                                 data_dir=data_dir, log_level="WARNING")
    server = await InferenceServer(settings).start()
    result: dict[str, Any] = {}
    try:
        await server.wait_loaded()
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            for info in (await stub.ListModels(inference_pb2.ListModelsRequest())).models:
                if not info.ready:
                    result[info.name] = {"ready": False, "error": info.error}
                    continue
                size = side if info.kind == "cppn" else info.default_width
                request = inference_pb2.GenerateRequest(prompt="gpu check", model=info.name, seed=1, width=size,
                                                        height=size)
                started = time.perf_counter()
                done = None
                async for event in stub.Generate(request, timeout=600):
                    if event.WhichOneof("event") == "done":
                        done = event.done
                result[info.name] = {"ready": True, "provider": done.provider if done else None,
                                     "seconds": round(time.perf_counter() - started, 3)}
    finally:
        await server.stop(grace_s=1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=os.environ.get("INFERENCE_MODEL_DIR") or None,
                        help="an SD-Turbo-layout model directory (default: tiny random graphs)")
    parser.add_argument("--providers", default=os.environ.get("INFERENCE_PROVIDERS", "tensorrt,cuda,cpu"))
    parser.add_argument("--require-gpu", action="store_true", help="exit 1 unless every model runs on the GPU")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput measurement")
    parser.add_argument("--data-dir", type=Path, default=None, help="keeps TensorRT engines between runs")
    parser.add_argument("--no-served", action="store_true", help="skip the request through the gRPC server")
    args = parser.parse_args()
    configure_logging("gpu_check", "INFO", json=False, stream=sys.stderr)  # stdout carries only the JSON
    providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    data_dir = args.data_dir or scratch / "data"
    config = RuntimeConfig(providers=providers, trt_cache_dir=data_dir / "tensorrt")
    report: dict[str, Any] = {"onnxruntime": ort.__version__, "available_providers": ort.get_available_providers(),
                              "requested_providers": list(providers), "gpu": _gpu_name(), "models": {}}
    try:
        report["models"]["cppn"] = _measure("cppn", lambda: CppnModel(config), 512, 4, (1, 8), args.seconds)
        if args.model_dir is not None:
            sd_dir, sd_side, sd_label = args.model_dir, 512, "sd-turbo"
        else:
            from tests.support.tiny_sd import build_tiny_sd

            sd_dir, sd_side, sd_label = build_tiny_sd(scratch / "tiny-sd"), 512, "tiny-sd (random weights)"
        report["models"]["sd"] = {"kind": sd_label, **_measure(
            sd_label, lambda: SdTurboModel(sd_dir, config), sd_side, 1, (1, 4), args.seconds)}
        if not args.no_served:
            try:
                report["served"] = asyncio.run(_served(sd_dir.parent if args.model_dir is None else sd_dir,
                                                       providers, data_dir, 512))
            except Exception as exc:
                report["served"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    used = {m.get("provider") for m in report["models"].values()}
    on_gpu = bool(used) and used <= GPU_PROVIDERS
    report["all_on_gpu"] = on_gpu
    print(json.dumps(report, indent=2))
    if args.require_gpu and not on_gpu:
        print(f"GPU CHECK FAILED: providers in use {sorted(str(u) for u in used)}; available "
              f"{report['available_providers']}. Is onnxruntime-gpu (not onnxruntime) installed, with CUDA 12 "
              "and cuDNN 9 libraries on the loader path?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
