"""Prometheus metrics of the inference service (default registry, ``creatorpass_inference_`` prefix)."""

from __future__ import annotations

import threading
import time
from collections import deque

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCH_IMAGES",
    "IMAGES",
    "IMAGES_PER_SECOND",
    "MODEL_READY",
    "PROVIDER",
    "QUEUE_DEPTH",
    "REQUESTS",
    "STAGE_SECONDS",
    "RateWindow",
    "image_rate",
]

_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

QUEUE_DEPTH = Gauge("creatorpass_inference_queue_depth", "Requests waiting for a batch")
BATCH_IMAGES = Histogram("creatorpass_inference_batch_images", "Images per batch run", ["model"],
                         buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64))
STAGE_SECONDS = Histogram(
    "creatorpass_inference_stage_seconds",
    "Seconds per stage: queue (per request), encode/denoise/decode/safety (per batch), png (per image), "
    "total (per request)",
    ["model", "stage"], buckets=_STAGE_BUCKETS)
IMAGES = Counter("creatorpass_inference_images_total", "Images by outcome (delivered, flagged, cancelled, failed)",
                 ["model", "outcome"])
REQUESTS = Counter("creatorpass_inference_requests_total", "Generate calls by final gRPC status code",
                   ["model", "code"])
IN_FLIGHT = Gauge("creatorpass_inference_requests_in_flight", "Generate calls admitted and not finished")
PROVIDER = Gauge("creatorpass_inference_provider_info", "1 for the execution provider running each model",
                 ["model", "provider"])
MODEL_READY = Gauge("creatorpass_inference_model_ready", "1 when the model is loaded and serving", ["model"])


class RateWindow:
    """Events per second over a sliding window (thread-safe)."""

    def __init__(self, window_s: float = 10.0, max_events: int = 100_000) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=max_events)
        self._lock = threading.Lock()

    def add(self, count: int = 1) -> None:
        now = time.monotonic()
        with self._lock:
            self._times.extend([now] * count)

    def rate(self) -> float:
        cutoff = time.monotonic() - self.window_s
        with self._lock:
            while self._times and self._times[0] < cutoff:
                self._times.popleft()
            return len(self._times) / self.window_s


image_rate = RateWindow()
IMAGES_PER_SECOND = Gauge("creatorpass_inference_images_per_second", "Images delivered per second, last 10 s")
IMAGES_PER_SECOND.set_function(image_rate.rate)
