"""onnxruntime sessions: execution providers tried in order (TensorRT → CUDA → CPU), one log line and
one metric naming the provider that actually runs each model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime as ort

from common.logging import get_logger
from inference.errors import ModelLoadError
from inference.settings import PROVIDER_NAMES

__all__ = ["RuntimeConfig", "create_session", "short_provider_name", "usable_providers"]

log = get_logger(__name__)
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class RuntimeConfig:
    """How sessions are made. ``providers`` are short names (tensorrt, cuda, cpu) in preference order."""

    providers: tuple[str, ...] = ("tensorrt", "cuda", "cpu")
    intra_op_threads: int = 0
    device_id: int = 0
    trt_fp16: bool = True
    trt_cache_dir: Path | None = None
    # Spinning worker threads cut latency a little but steal the cores PNG encoding and gRPC need.
    allow_spinning: bool = False
    extra_session_config: dict[str, str] = field(default_factory=dict)


def short_provider_name(ort_name: str) -> str:
    for short, full in PROVIDER_NAMES.items():
        if full == ort_name:
            return short
    return ort_name


def usable_providers(config: RuntimeConfig, available: Sequence[str] | None = None) -> list[str]:
    """The configured providers this onnxruntime build offers, in preference order; CPU always last."""
    offered = set(ort.get_available_providers() if available is None else available)
    chain = [PROVIDER_NAMES[p] for p in config.providers if PROVIDER_NAMES[p] in offered]
    return chain or [CPU]


def _provider_options(name: str, config: RuntimeConfig) -> dict[str, Any]:
    if name == "TensorrtExecutionProvider":
        opts: dict[str, Any] = {"device_id": config.device_id, "trt_fp16_enable": config.trt_fp16}
        if config.trt_cache_dir is not None:
            config.trt_cache_dir.mkdir(parents=True, exist_ok=True)
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(config.trt_cache_dir),
                        trt_timing_cache_enable=True, trt_timing_cache_path=str(config.trt_cache_dir))
        return opts
    if name == "CUDAExecutionProvider":
        return {"device_id": config.device_id}
    return {}


def _session_options(config: RuntimeConfig) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = config.intra_op_threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only; we log the outcome ourselves
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if config.allow_spinning else "0")
    for key, value in config.extra_session_config.items():
        so.add_session_config_entry(key, value)
    return so


def create_session(model: bytes | Path, config: RuntimeConfig, *, label: str) -> tuple[ort.InferenceSession, str]:
    """Open ``model`` with the first provider that works; returns the session and the provider in use.

    A provider that fails to initialise is dropped and the next is tried; a model that even the CPU
    provider cannot load raises :class:`ModelLoadError`.
    """
    if isinstance(model, Path) and not model.is_file():
        raise ModelLoadError(f"{label}: {model} does not exist")
    source = str(model) if isinstance(model, Path) else model
    chain = usable_providers(config)
    last_error: Exception | None = None
    for start in range(len(chain)):
        providers = chain[start:]
        try:
            session = ort.InferenceSession(
                source, sess_options=_session_options(config),
                providers=[(p, _provider_options(p, config)) for p in providers])
        except Exception as exc:  # onnxruntime raises its own hierarchy and plain RuntimeError
            last_error = exc
            if providers[0] != CPU:
                log.warning("provider_failed", model=label, provider=short_provider_name(providers[0]),
                            error=str(exc)[:300])
            continue
        in_use = session.get_providers()[0]
        log.info("session_created", model=label, provider=short_provider_name(in_use),
                 requested=[short_provider_name(p) for p in chain])
        return session, short_provider_name(in_use)
    raise ModelLoadError(f"{label}: onnxruntime cannot load the model: {str(last_error)[:300]}")
