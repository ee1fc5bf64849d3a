"""Generation outcomes and latency (holds/posts/voids are the credits domain's metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["GENERATIONS", "GENERATIONS_IN_FLIGHT", "GENERATION_SECONDS", "IMAGES"]

GENERATIONS = Counter("gateway_generations_total", "Finished generations by payment kind and outcome",
                      ["payment", "outcome"])
IMAGES = Counter("gateway_generation_images_total", "Images by outcome (delivered, flagged)", ["outcome"])
GENERATIONS_IN_FLIGHT = Gauge("gateway_generations_in_flight", "Generations running in this process")
GENERATION_SECONDS = Histogram(
    "gateway_generation_seconds", "Time from accepted to finished, by outcome", ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
