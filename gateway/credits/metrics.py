"""The ledger's Prometheus metrics (default registry, served by the system domain's /metrics)."""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge

__all__ = [
    "HOLDS",
    "OUTBOX_DEPTH",
    "POSTS",
    "PURCHASES",
    "RECONCILE_BREACHES",
    "VOIDS",
    "void_reason_label",
]

HOLDS = Counter(
    "gateway_credit_holds_total", "Credit holds by result (created, replayed, insufficient, frozen)", ["result"]
)
POSTS = Counter(
    "gateway_credit_posts_total", "Hold posts by result (posted, replayed, expired, resolved, not_found)", ["result"]
)
VOIDS = Counter("gateway_credit_voids_total", "Holds voided, by reason (expired = the sweeper or a late post)",
                ["reason"])
PURCHASES = Counter("gateway_credit_entries_total", "Purchase, reversal and burn-settle entries by kind and result",
                    ["kind", "result"])
OUTBOX_DEPTH = Gauge("gateway_credit_outbox_depth", "Burn intents written by posts and not yet settled on chain")
RECONCILE_BREACHES = Gauge("gateway_credit_reconcile_breaches", "Breaches found by the last reconcile run")

_REASON = re.compile(r"[a-z][a-z0-9_]{0,31}")


def void_reason_label(reason: str) -> str:
    """Callers pass short snake_case reasons; anything else is counted as ``other`` (bounded labels)."""
    return reason if _REASON.fullmatch(reason) else "other"
