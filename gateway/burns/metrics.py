"""The burner's Prometheus metrics (default registry, served by the system domain's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["BATCHES", "ERRORS", "IN_FLIGHT", "LANES", "LANES_LEASED", "TOKENS_BURNED", "TREASURY_LOVELACE",
           "TREASURY_LOW", "TREASURY_TOKENS"]

BATCHES = Counter("gateway_burn_batches_total", "Burn batches reaching a state (built, signed, submitted, "
                  "confirmed, final, resubmitted, rebuilt)", ["state"])
TOKENS_BURNED = Counter("gateway_burn_tokens_final_total", "$CREATE burned in batches that reached final depth")
ERRORS = Counter("gateway_burn_errors_total", "Burner failures by step and kind (unavailable, refused, ledger, "
                 "not_buildable)", ["step", "kind"])
IN_FLIGHT = Gauge("gateway_burn_batches_in_flight", "Burn batches built but not yet final")
LANES = Gauge("gateway_burn_lanes", "Treasury lanes known to the burner")
LANES_LEASED = Gauge("gateway_burn_lanes_leased", "Burn lanes this replica holds the lease of (drives)")
TREASURY_TOKENS = Gauge("gateway_burn_treasury_tokens", "$CREATE at the custodial address not yet promised to a burn")
TREASURY_LOVELACE = Gauge("gateway_burn_treasury_lovelace", "Lovelace at the custodial address")
TREASURY_LOW = Gauge("gateway_burn_treasury_low",
                     "1 while the treasury is under a threshold (card generations get 503)")
