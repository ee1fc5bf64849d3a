"""Settings of the inference service, read from ``INFERENCE_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from common.settings import BaseSettings, ConfigError, setting

__all__ = ["GPU_PROVIDERS", "PROVIDER_NAMES", "InferenceSettings"]

# Short names accepted in INFERENCE_PROVIDERS → onnxruntime execution provider names.
PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
# Short names of the providers that run on a GPU.
GPU_PROVIDERS = frozenset({"tensorrt", "cuda"})


@dataclass(frozen=True)
class InferenceSettings(BaseSettings):
    env_prefix: ClassVar[str] = "INFERENCE_"

    # gRPC and health
    listen: str = setting("127.0.0.1:50053", "gRPC listen address (host:port or unix:/path)")
    health_host: str = setting("127.0.0.1", "Host of the /health and /metrics HTTP side-server")
    health_port: int = setting(9103, "Port of the /health and /metrics side-server (0 = ephemeral)")
    tls_cert: Path | None = setting(None, "Server certificate (PEM); unset = plaintext gRPC")
    tls_key: Path | None = setting(None, "Server private key (PEM); needed with INFERENCE_TLS_CERT")
    tls_ca: Path | None = setting(None, "CA that client certificates must chain to (mTLS); unused without TLS")
    log_level: str = setting("INFO", "Log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_json: bool = setting(True, "JSON log lines (false: console text)")

    # models
    model_dir: Path | None = setting(
        None, "SD-Turbo-style model directory, or a directory of them (one per subdirectory); unset = built-in only")
    default_model: str = setting("cppn", "Model used when a request names none")
    data_dir: Path = setting(Path("var/inference"), "Writable directory for caches (TensorRT engines)")
    providers: tuple[str, ...] = setting(
        ("tensorrt", "cuda", "cpu"), "Execution providers tried in order (tensorrt, cuda, cpu), comma-separated")
    device_id: int = setting(0, "GPU index for the CUDA and TensorRT providers")
    require_gpu: bool = setting(
        False, "A GPU deployment: /health answers 503 'degraded' while any ready model runs on the CPU provider "
        "(e.g. the CUDA libraries did not load); the GPU image sets it true")
    trt_fp16: bool = setting(True, "Let TensorRT build float16 engines")
    intra_op_threads: int = setting(0, "onnxruntime intra-op threads per session (0 = one per physical core)")
    safety_checker: Path | None = setting(
        None, "ONNX safety classifier (image [B,3,H,W] in 0..1 → score [B,1]); unset = no check")
    safety_threshold: float = setting(0.5, "Images scoring at or above this are withheld (flagged)")

    # queue and batching
    queue_max: int = setting(64, "Most requests waiting in the queue; beyond it → RESOURCE_EXHAUSTED")
    max_batch: int = setting(8, "Most images run together in one batch")
    max_wait_ms: float = setting(5.0, "Longest a request waits for others to fill its batch")
    workers: int = setting(1, "Batches run at the same time (1 suits one GPU)")
    png_workers: int = setting(2, "Threads encoding PNGs")
    png_compress_level: int = setting(1, "zlib level of the PNGs (0-9; low is fast)")

    # connections: clients balancing over a DNS name (a headless Service) resolve it again only when a
    # connection closes, so a server that ages its connections out lets them find pods added since
    max_connection_age_s: float = setting(300.0, "Close each client connection after this long (GOAWAY; the "
                                                 "client reconnects and re-resolves); 0 = never")
    max_connection_age_grace_s: float = setting(300.0, "How long calls in flight on an aged-out connection "
                                                       "may still run (longer than a generation's deadline)")

    # request limits
    max_prompt_chars: int = setting(2000, "Longest prompt (and negative prompt) accepted")
    max_images: int = setting(4, "Most images one request may ask for")
    min_side_px: int = setting(64, "Smallest width/height accepted")
    max_side_px: int = setting(1024, "Largest width/height accepted")

    def validate(self) -> None:
        unknown = [p for p in self.providers if p not in PROVIDER_NAMES]
        if unknown or not self.providers:
            raise ConfigError(f"INFERENCE_PROVIDERS: use some of {', '.join(PROVIDER_NAMES)}; got {unknown or '()'}")
        if self.require_gpu and not GPU_PROVIDERS.intersection(self.providers):
            raise ConfigError("INFERENCE_REQUIRE_GPU: true, but INFERENCE_PROVIDERS names no GPU provider "
                              f"({', '.join(sorted(GPU_PROVIDERS))}); got {', '.join(self.providers)}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("INFERENCE_TLS_CERT and INFERENCE_TLS_KEY must be set together")
        checks = [
            ("INFERENCE_QUEUE_MAX", self.queue_max, 1, 100_000),
            ("INFERENCE_MAX_BATCH", self.max_batch, 1, 256),
            ("INFERENCE_WORKERS", self.workers, 1, 64),
            ("INFERENCE_PNG_WORKERS", self.png_workers, 1, 64),
            ("INFERENCE_PNG_COMPRESS_LEVEL", self.png_compress_level, 0, 9),
            ("INFERENCE_INTRA_OP_THREADS", self.intra_op_threads, 0, 1024),
            ("INFERENCE_MAX_PROMPT_CHARS", self.max_prompt_chars, 1, 100_000),
            ("INFERENCE_MAX_IMAGES", self.max_images, 1, 64),
            ("INFERENCE_MIN_SIDE_PX", self.min_side_px, 8, 8192),
            ("INFERENCE_MAX_SIDE_PX", self.max_side_px, self.min_side_px, 8192),
        ]
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise ConfigError(f"{name}: must be between {low} and {high}; got {value}")
        for name, seconds in (("INFERENCE_MAX_CONNECTION_AGE_S", self.max_connection_age_s),
                              ("INFERENCE_MAX_CONNECTION_AGE_GRACE_S", self.max_connection_age_grace_s)):
            if not 0.0 <= seconds <= 86_400:
                raise ConfigError(f"{name}: must be between 0 and 86400 seconds; got {seconds}")
        if 0 < self.max_connection_age_s < 1:
            raise ConfigError("INFERENCE_MAX_CONNECTION_AGE_S: 0 (never) or at least 1 second; "
                              f"got {self.max_connection_age_s}")
        if not 0.0 <= self.max_wait_ms <= 10_000:
            raise ConfigError(f"INFERENCE_MAX_WAIT_MS: must be between 0 and 10000; got {self.max_wait_ms}")
