"""Devnet settings: environment (``DEVNET_*``) defaults, overridden by command-line flags."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from common.settings import BaseSettings, ConfigError, describe_settings, load_settings, setting
from devnet.ledger.address import AddressError, address_from_text, address_network
from devnet.ledger.params import ProtocolParameters

__all__ = ["DevnetSettings", "parse_args"]

_INT_PARAMS = {f.name for f in dataclasses.fields(ProtocolParameters) if f.type in ("int", int)}


@dataclass(frozen=True)
class DevnetSettings(BaseSettings):
    env_prefix: ClassVar[str] = "DEVNET_"

    host: str = setting("127.0.0.1", "Address the three servers bind to (0.0.0.0 in a container)")
    ogmios_port: int = setting(1337, "Ogmios v6 JSON-RPC port (WebSocket and HTTP)")
    kupo_port: int = setting(1442, "Kupo v2 HTTP port")
    control_port: int = setting(10000, "Devnet control API port (fund, blocks, rollback, info)")
    block_time: float = setting(1.0, "Seconds between blocks; 0 produces blocks only on demand")
    state_dir: Path | None = setting(None, "Directory persisting genesis and blocks; unset keeps all in memory")
    seed: str = setting("creatorpass-devnet", "Seed of the deterministic genesis, faucet and pool keys")
    genesis_keys: int = setting(3, "How many seeded genesis keys to fund")
    genesis_key_lovelace: int = setting(100_000_000_000, "Lovelace given to each seeded genesis key")
    genesis_fund: tuple[str, ...] = setting((), "Extra genesis funds, ADDRESS=LOVELACE (comma-separated in env)")
    network: str = setting("testnet", "Network discriminant of addresses", choices=("testnet", "mainnet"))
    network_magic: int = setting(42, "Network magic reported to clients")
    system_start: str = setting("", "System start, UTC ISO-8601 (default: now, or the state dir's)")
    system_start_offset: int = setting(0, "Start the clock this many seconds in the past (room for big chains)")
    protocol_param: tuple[str, ...] = setting(
        (), "Protocol parameter overrides NAME=INT, e.g. max_transaction_size_bytes=16384"
    )
    log_level: str = setting("INFO", "Log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_json: bool = setting(True, "JSON log lines (false: plain text)")

    def validate(self) -> None:
        for name in ("ogmios_port", "kupo_port", "control_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"DEVNET_{name.upper()}: port {port} is out of range")
        if not 0 <= self.block_time <= 3600:
            raise ConfigError("DEVNET_BLOCK_TIME: must be between 0 and 3600 seconds")
        if not 0 <= self.genesis_keys <= 100:
            raise ConfigError("DEVNET_GENESIS_KEYS: must be between 0 and 100")
        if self.system_start_offset < 0:
            raise ConfigError("DEVNET_SYSTEM_START_OFFSET: must be >= 0")
        self.genesis_funds()
        self.protocol_parameters()
        self.start_time()

    @property
    def network_id(self) -> int:
        return 1 if self.network == "mainnet" else 0

    def genesis_funds(self) -> list[tuple[str, int]]:
        funds = []
        for item in self.genesis_fund:
            address, sep, amount = item.partition("=")
            try:
                raw = address_from_text(address)
                lovelace = int(amount.replace("_", ""))
            except (AddressError, ValueError):
                raise ConfigError(f"DEVNET_GENESIS_FUND: expected ADDRESS=LOVELACE, got {item[:140]!r}") from None
            if not sep or lovelace < 1_000_000:
                raise ConfigError(f"DEVNET_GENESIS_FUND: {item[:140]!r} needs at least 1000000 lovelace")
            if address_network(raw) not in (None, self.network_id):
                raise ConfigError(f"DEVNET_GENESIS_FUND: {address[:120]!r} is not a {self.network} address")
            funds.append((address, lovelace))
        return funds

    def protocol_parameters(self) -> ProtocolParameters:
        changes: dict[str, Any] = {}
        for item in self.protocol_param:
            name, _, value = item.partition("=")
            if name not in _INT_PARAMS:
                raise ConfigError(f"DEVNET_PROTOCOL_PARAM: unknown parameter {name!r}; known: {sorted(_INT_PARAMS)}")
            try:
                changes[name] = int(value)
            except ValueError:
                raise ConfigError(f"DEVNET_PROTOCOL_PARAM: {name} needs an integer, got {value!r}") from None
        return ProtocolParameters().replace(**changes)

    def start_time(self) -> datetime:
        if self.system_start:
            try:
                start = datetime.fromisoformat(self.system_start.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(f"DEVNET_SYSTEM_START: not an ISO-8601 time: {self.system_start!r}") from None
            return start if start.tzinfo else start.replace(tzinfo=UTC)
        return datetime.now(UTC) - timedelta(seconds=self.system_start_offset)


def parse_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> DevnetSettings:
    """Flags (``--block-time 0``) over environment (``DEVNET_BLOCK_TIME=0``) over defaults."""
    base = load_settings(DevnetSettings, os.environ if env is None else env)
    docs = {var: doc for var, _, doc in describe_settings(DevnetSettings)}
    parser = argparse.ArgumentParser(
        prog="python -m devnet",
        description="An offline Cardano devnet speaking Ogmios v6 and Kupo v2, with a control API.",
    )
    for f in dataclasses.fields(DevnetSettings):
        flag = "--" + f.name.replace("_", "-")
        var = f"DEVNET_{f.name.upper()}"
        help_text = f"{docs[var]} (env {var}; default {getattr(base, f.name)!r})"
        if f.name in ("genesis_fund", "protocol_param"):
            parser.add_argument(flag, action="append", default=None, help=help_text)
        else:
            parser.add_argument(flag, default=None, help=help_text)
    args = parser.parse_args(argv)
    overrides = {name: value for name, value in vars(args).items() if value is not None}
    flat_env = {f"DEVNET_{name.upper()}": (",".join(value) if isinstance(value, list) else str(value))
                for name, value in overrides.items()}
    merged = {k: v for k, v in (os.environ if env is None else env).items() if k.startswith("DEVNET_")}
    if "genesis_fund" in overrides and "DEVNET_GENESIS_FUND" in merged:
        flat_env["DEVNET_GENESIS_FUND"] = merged["DEVNET_GENESIS_FUND"] + "," + flat_env["DEVNET_GENESIS_FUND"]
    merged.update(flat_env)
    return load_settings(DevnetSettings, merged)
