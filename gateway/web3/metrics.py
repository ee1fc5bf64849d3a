"""The wallet path's Prometheus metrics: quotes built, payments by outcome, time from claim to images."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["PAYMENTS", "PAYMENT_SECONDS", "QUOTES", "QUOTES_WAITING", "SIGN_INS"]

QUOTES = Counter("gateway_web3_quotes_total", "Quote requests by outcome (built, insufficient, not_coverable, error)",
                 ["outcome"])
PAYMENTS = Counter("gateway_web3_payments_total", "Claimed quotes finished, by outcome (delivered, failed, expired)",
                   ["outcome"])
PAYMENT_SECONDS = Histogram(
    "gateway_web3_payment_seconds", "From the claim (submit or confirm) to the quote's end, by outcome", ["outcome"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200),
)
QUOTES_WAITING = Gauge("gateway_web3_quotes_waiting", "Quotes this process follows on chain right now")
SIGN_INS = Counter("gateway_web3_sign_ins_total", "Wallet sign-ins by outcome (ok, refused)", ["outcome"])
