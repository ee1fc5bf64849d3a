"""HTTP metrics (domains define their own next to their code, on the same default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["HTTP_LATENCY", "HTTP_REQUESTS"]

HTTP_REQUESTS = Counter(
    "gateway_http_requests_total", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "gateway_http_request_seconds", "HTTP request latency by route template", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
