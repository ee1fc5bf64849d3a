"""Indexer settings, read from ``INDEXER_*`` environment variables (see indexer/README.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from common.cardano import is_hex
from common.settings import BaseSettings, ConfigError, setting

__all__ = ["IndexerSettings", "StartPoint", "parse_start_point"]

_POINT_RE = re.compile(r"^(\d+)\.([0-9a-f]{64})$")

# "origin", "tip" or (slot, header hash)
StartPoint = str | tuple[int, str]


def parse_start_point(text: str) -> StartPoint:
    """``origin`` | ``tip`` | ``<slot>.<64-hex header hash>``; raise ValueError otherwise."""
    text = text.strip().lower()
    if text in ("origin", "tip"):
        return text
    match = _POINT_RE.match(text)
    if not match:
        raise ValueError(f"start point must be origin, tip or <slot>.<64-hex block hash>, got {text!r:.100}")
    return int(match.group(1)), match.group(2)


@dataclass(frozen=True)
class IndexerSettings(BaseSettings):
    env_prefix: ClassVar[str] = "INDEXER_"

    # upstreams
    ogmios_url: str = setting("ws://127.0.0.1:1337", "Ogmios v6 WebSocket URL")
    kupo_url: str = setting("http://127.0.0.1:1442", "Kupo v2 HTTP URL")
    request_timeout_s: float = setting(10.0, "Timeout of one Ogmios query or Kupo request")
    submit_timeout_s: float = setting(30.0, "Timeout of one transaction submission")
    connect_timeout_s: float = setting(5.0, "Timeout of one WebSocket/HTTP connection attempt")
    reconnect_max_backoff_s: float = setting(5.0, "Longest wait between two reconnection attempts")
    keepalive_s: float = setting(10.0, "WebSocket ping interval; a connection silent for twice this is dead")
    max_response_bytes: int = setting(64 * 1024 * 1024, "Largest Ogmios message or Kupo response accepted")

    # gRPC and health
    listen: str = setting("127.0.0.1:50052", "gRPC listen address (host:port or unix:/path)")
    health_host: str = setting("127.0.0.1", "Host of the /health and /metrics HTTP side-server")
    health_port: int = setting(1443, "Port of the /health and /metrics side-server (0 = ephemeral)")
    ready_file: Path | None = setting(None, "When set, a JSON file written once serving: gRPC target, health port")
    synced_lag_slots: int = setting(120, "Health says synced (200) while the indexer is at most this far behind")

    # chain following
    db_path: Path = setting(Path("var/indexer/indexer.sqlite3"), "SQLite store (cursor, points, tx records)")
    start_point: str = setting("origin", "Where to start on an empty store: origin | tip | <slot>.<block hash>")
    network: str = setting("testnet", "Address network (mainnet: addr1..., testnet: addr_test1...)",
                           choices=("mainnet", "testnet"))
    pipeline_depth: int = setting(100, "nextBlock requests kept in flight by the chain follower")
    batch_max_blocks: int = setting(500, "Most blocks written in one SQLite transaction")
    keep_points: int = setting(2160, "Recent block points kept for intersection after a fork (k)")

    # what matters
    treasury_address: str = setting("", "Treasury / custodial address (bech32); its activity is recorded")
    sink_address: str = setting("", "Sink address (bech32); payments to it are recorded")
    watched_addresses: tuple[str, ...] = setting((), "More addresses to record, comma-separated")
    policy_id: str = setting("", "The $CREATE policy id (56 hex); its mints and burns are recorded")
    asset_name: str = setting("", "The $CREATE asset name (hex)")

    # limits
    max_watch_ids: int = setting(256, "Most transaction ids in one WatchTransactions / out-refs in GetUtxos")
    max_tx_bytes: int = setting(16 * 1024, "Largest transaction SubmitTransaction accepts")
    max_watchers: int = setting(1024, "Most concurrent WatchTransactions streams")
    params_recheck_s: float = setting(10.0, "How often the cached protocol parameters' epoch is re-checked")

    log_level: str = setting("INFO", "Log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_json: bool = setting(True, "Log JSON lines (false: console text)")

    def validate(self) -> None:
        try:
            parse_start_point(self.start_point)
        except ValueError as exc:
            raise ConfigError(f"INDEXER_START_POINT: {exc}") from None
        if not self.ogmios_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"INDEXER_OGMIOS_URL: must start with ws:// or wss://, got {self.ogmios_url!r}")
        if not self.kupo_url.startswith(("http://", "https://")):
            raise ConfigError(f"INDEXER_KUPO_URL: must start with http:// or https://, got {self.kupo_url!r}")
        if self.policy_id and not is_hex(self.policy_id, 56):
            raise ConfigError("INDEXER_POLICY_ID: must be 56 lowercase hex characters")
        if self.asset_name and (not is_hex(self.asset_name) or len(self.asset_name) > 64):
            raise ConfigError("INDEXER_ASSET_NAME: must be hex of at most 32 bytes")
        for name, low, high in (("pipeline_depth", 1, 1000), ("batch_max_blocks", 1, 100_000),
                                ("keep_points", 10, 1_000_000), ("max_watch_ids", 1, 10_000)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"INDEXER_{name.upper()}: must be between {low} and {high}, got {value}")
        for name in ("request_timeout_s", "submit_timeout_s", "connect_timeout_s", "keepalive_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"INDEXER_{name.upper()}: must be positive")
        from indexer.address import validate_address  # late import: address imports nothing from here

        for var, value in (("TREASURY_ADDRESS", self.treasury_address), ("SINK_ADDRESS", self.sink_address),
                           *(("WATCHED_ADDRESSES", a) for a in self.watched_addresses)):
            if value:
                try:
                    validate_address(value, self.network)
                except ValueError as exc:
                    raise ConfigError(f"INDEXER_{var}: {exc}") from None

    @property
    def addresses_that_matter(self) -> frozenset[str]:
        return frozenset(a for a in (self.treasury_address, self.sink_address, *self.watched_addresses) if a)
