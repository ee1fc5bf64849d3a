"""Assembles the service: registry (models loading in the background), engine, gRPC, /health + /metrics."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from common.grpcutil import GrpcServer, ServingStatus, TlsFiles, serve
from common.logging import get_logger
from common.observability import HealthServer
from common.rpc.creatorpass.v1 import inference_pb2_grpc
from inference.engine import Engine
from inference.registry import ModelEntry, ModelRegistry
from inference.runtime import RuntimeConfig
from inference.service import InferenceServicer, RequestLimits
from inference.settings import GPU_PROVIDERS, InferenceSettings

__all__ = ["INFERENCE_SERVICE", "InferenceServer", "cpu_bound_models", "model_health_name", "runtime_config"]

log = get_logger(__name__)
INFERENCE_SERVICE = "creatorpass.v1.InferenceService"


def model_health_name(model: str) -> str:
    """The grpc.health.v1 service name carrying one model's readiness."""
    return f"{INFERENCE_SERVICE}/{model}"


def runtime_config(settings: InferenceSettings) -> RuntimeConfig:
    return RuntimeConfig(providers=settings.providers, intra_op_threads=settings.intra_op_threads,
                         device_id=settings.device_id, trt_fp16=settings.trt_fp16,
                         trt_cache_dir=settings.data_dir / "tensorrt")


def cpu_bound_models(entries: list[ModelEntry]) -> list[str]:
    """Names of the ready models whose session runs on no GPU provider."""
    return [e.name for e in entries if e.ready and e.model is not None and e.model.provider not in GPU_PROVIDERS]


def registry_from(settings: InferenceSettings) -> ModelRegistry:
    return ModelRegistry(runtime_config(settings), default_model=settings.default_model,
                         model_dir=settings.model_dir, max_batch=settings.max_batch,
                         safety_checker=settings.safety_checker, safety_threshold=settings.safety_threshold)


class InferenceServer:
    """``await start()`` serves at once; models turn ready (health SERVING) as they finish loading."""

    def __init__(self, settings: InferenceSettings, registry: ModelRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else registry_from(settings)
        self.engine = Engine(queue_max=settings.queue_max, max_batch=settings.max_batch,
                             max_wait_s=settings.max_wait_ms / 1000, workers=settings.workers,
                             png_workers=settings.png_workers, png_compress_level=settings.png_compress_level,
                             safety=self.registry.safety)
        self.grpc: GrpcServer | None = None
        self.health_http: HealthServer | None = None
        self._loader: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def target(self) -> str:
        assert self.grpc is not None, "server not started"
        return self.grpc.target

    async def start(self) -> InferenceServer:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        default = self.registry.entries.get(self.registry.default_model)
        if default is None:
            log.warning("default_model_unknown", model=self.registry.default_model, models=self.registry.names())
        tls = TlsFiles(s.tls_cert, s.tls_key, s.tls_ca) if s.tls_cert is not None else None
        servicer = InferenceServicer(self.engine, self.registry, RequestLimits(
            max_prompt_chars=s.max_prompt_chars, max_images=s.max_images, min_side_px=s.min_side_px,
            max_side_px=s.max_side_px))
        names = [INFERENCE_SERVICE, *(model_health_name(n) for n in self.registry.names())]
        aging = [("grpc.max_connection_age_ms", int(s.max_connection_age_s * 1000)),
                 ("grpc.max_connection_age_grace_ms", int(s.max_connection_age_grace_s * 1000))]
        self.grpc = await serve([(inference_pb2_grpc.add_InferenceServiceServicer_to_server, servicer)],
                                s.listen, service_names=names, tls=tls,
                                options=aging if s.max_connection_age_s > 0 else ())
        for name in names:  # the process ("") serves; the service and each model once loaded
            await self.grpc.health.set(name, ServingStatus.NOT_SERVING)
        self.health_http = HealthServer(s.health_host, s.health_port, self.check).start()
        self.engine.start()
        self._loader = asyncio.ensure_future(self._load())
        log.info("inference_started", listen=self.grpc.target, health_port=self.health_http.port,
                 models=self.registry.names(), default_model=self.registry.default_model)
        return self

    async def _load(self) -> None:
        await asyncio.to_thread(self.registry.load_all, self._entry_settled)
        for entry in list(self.registry.entries.values()):  # settle every status before wait_loaded returns
            await self._apply_health(entry)

    def _entry_settled(self, entry: ModelEntry) -> None:
        """Called from the loader thread after each model loads or fails."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._apply_health(entry)))

    async def _apply_health(self, entry: ModelEntry) -> None:
        self.engine.safety = self.registry.safety
        if self.grpc is None:
            return
        status = ServingStatus.SERVING if entry.ready else ServingStatus.NOT_SERVING
        await self.grpc.health.set(model_health_name(entry.name), status)
        if entry.name == self.registry.default_model:
            await self.grpc.health.set(INFERENCE_SERVICE, status)

    async def wait_loaded(self) -> None:
        if self._loader is not None:
            await self._loader

    def check(self) -> tuple[int, dict[str, Any]]:
        """/health: 200 when the default model serves, 202 while it loads, 503 when it failed, or
        503 "degraded" when a GPU is required (INFERENCE_REQUIRE_GPU) and a ready model runs on the CPU."""
        entries = list(self.registry.entries.values())
        models = {e.name: {"kind": e.kind, "state": e.state, "error": e.error,
                           "provider": e.model.provider if e.model is not None else ""} for e in entries}
        default = self.registry.entries.get(self.registry.default_model)
        state = default.state if default is not None else "failed"
        status = {"ready": 200, "loading": 202}.get(state, 503)
        body: dict[str, Any] = {"status": {200: "ready", 202: "loading", 503: "down"}[status],
                                "default_model": self.registry.default_model,
                                "queue_depth": self.engine.queue_depth, "models": models}
        off_gpu = cpu_bound_models(entries) if self.settings.require_gpu else []
        if off_gpu and status != 503:
            status = 503
            body["status"] = "degraded"
            body["reason"] = (f"INFERENCE_REQUIRE_GPU is set but {', '.join(off_gpu)} run on the CPU provider: "
                              "no GPU provider is active (see the provider_failed log lines)")
        return status, body

    async def stop(self, grace_s: float = 5.0) -> None:
        if self.grpc is not None:
            await self.grpc.stop(grace_s)
        await self.engine.close()
        if self.health_http is not None:
            self.health_http.stop()
        if self._loader is not None and not self._loader.done():
            self._loader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._loader), 1)
