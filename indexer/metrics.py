"""Prometheus metrics of the indexer (names prefixed ``creatorpass_indexer_``), registered once at import."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BLOCKS",
    "BLOCKS_PER_SECOND",
    "CONNECTED",
    "GRPC_LATENCY",
    "KUPO_LATENCY",
    "LAG_SLOTS",
    "NODE_TIP_SLOT",
    "OGMIOS_LATENCY",
    "RECONNECTS",
    "ROLLBACKS",
    "TIP_HEIGHT",
    "TIP_SLOT",
    "WATCHERS",
]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

TIP_SLOT = Gauge("creatorpass_indexer_tip_slot", "Slot of the last block the chain follower processed")
TIP_HEIGHT = Gauge("creatorpass_indexer_tip_height", "Height of the last block the chain follower processed")
NODE_TIP_SLOT = Gauge("creatorpass_indexer_node_tip_slot", "Slot of the node's tip as last reported by Ogmios")
LAG_SLOTS = Gauge("creatorpass_indexer_lag_slots", "Node tip slot minus indexer tip slot")
BLOCKS = Counter("creatorpass_indexer_blocks", "Blocks processed by the chain follower")
BLOCKS_PER_SECOND = Gauge("creatorpass_indexer_blocks_per_second", "Blocks processed per second (last batch)")
ROLLBACKS = Counter("creatorpass_indexer_rollbacks", "Chain rollbacks applied")
RECONNECTS = Counter("creatorpass_indexer_reconnects", "Reconnections to an upstream", ["upstream"])
CONNECTED = Gauge("creatorpass_indexer_connected", "1 while the chain follower is connected to Ogmios")
WATCHERS = Gauge("creatorpass_indexer_watchers", "Open WatchTransactions streams")
OGMIOS_LATENCY = Histogram("creatorpass_indexer_ogmios_request_seconds", "Ogmios request latency", ["method"],
                           buckets=_LATENCY_BUCKETS)
KUPO_LATENCY = Histogram("creatorpass_indexer_kupo_request_seconds", "Kupo request latency", ["route"],
                         buckets=_LATENCY_BUCKETS)
GRPC_LATENCY = Histogram("creatorpass_indexer_grpc_request_seconds", "gRPC request latency", ["method", "code"],
                         buckets=_LATENCY_BUCKETS)
