"""Billing's Prometheus metrics (the default registry, served by the system domain's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["PURCHASES", "WEBHOOK_EVENTS"]

PURCHASES = Counter(
    "gateway_billing_purchases_total", "Purchase attempts by flow (card, elements, checkout) and outcome",
    ["flow", "result"],
)
WEBHOOK_EVENTS = Counter(
    "gateway_billing_webhook_events_total",
    "Stripe webhook deliveries by event type (unhandled types count as 'other') and outcome"
    " (credited, reversed, frozen, unfrozen, recorded, ignored, duplicate, rejected, error, …)",
    ["type", "result"],
)
