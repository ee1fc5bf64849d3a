"""Sandbox settings: environment (``STRIPE_SANDBOX_*``) defaults, overridden by command-line flags."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from common.settings import BaseSettings, ConfigError, describe_settings, load_settings, secret_field, setting

__all__ = ["StripeSandboxSettings", "parse_args"]

PREFIX = "STRIPE_SANDBOX_"


@dataclass(frozen=True)
class StripeSandboxSettings(BaseSettings):
    env_prefix: ClassVar[str] = PREFIX

    host: str = setting("127.0.0.1", "Address to bind (0.0.0.0 in a container)")
    port: int = setting(12111, "Port of the API, the browser pages, Stripe.js and the controls; 0 = any free port")
    public_url: str = setting("", "Base URL browsers use to reach the sandbox (Checkout and 3-D Secure pages); "
                                  "default http://HOST:PORT")
    api_keys: tuple[str, ...] = setting((), "Accepted secret keys (comma-separated); empty accepts any sk_test_ key")
    webhook_url: tuple[str, ...] = setting((), "Webhook endpoints created at start (comma-separated URLs)")
    webhook_secret: str = secret_field("whsec_ signing secret of the endpoints from WEBHOOK_URL; default derived "
                                       "from SEED (shown by GET /_sandbox/info)")
    webhook_events: tuple[str, ...] = setting(("*",), "Events the WEBHOOK_URL endpoints receive ('*' = all)")
    webhook_timeout_s: float = setting(30.0, "A delivery not answered within this many seconds is a failure")
    webhook_retry_scale: float = setting(1.0, "Multiplier of Stripe's retry schedule (1 min ... 3 days); "
                                              "0.001 turns the first retry into 60 ms")
    webhook_concurrency: int = setting(8, "Deliveries in flight at once")
    chaos_seed: int | None = setting(None, "Seed of chaotic delivery (duplicates, reordering, delays); unset = off")
    chaos_duplicate_rate: float = setting(0.3, "Chance that a chaotic delivery is also sent a second time")
    chaos_max_delay_s: float = setting(0.5, "Chaotic deliveries wait a random 0..this many seconds")
    checkout_ttl_s: int = setting(86_400, "Default lifetime of a Checkout Session (Stripe: 24 h)")
    state_file: Path | None = setting(None, "JSON file the state is saved to (every second when changed, and at "
                                            "stop) and loaded from at start; unset keeps everything in memory")
    max_objects: int = setting(50_000, "Most API objects kept (oldest evicted first; webhook endpoints never)")
    max_events: int = setting(20_000, "Most events kept")
    max_idempotency_keys: int = setting(20_000, "Most idempotency keys kept (each for IDEMPOTENCY_TTL_S)")
    idempotency_ttl_s: float = setting(86_400.0, "How long an idempotency key replays its first answer (24 h)")
    max_delivery_attempts: int = setting(10_000, "Most delivery attempts listed by /_sandbox/deliveries")
    max_body_bytes: int = setting(256 * 1024, "Largest request body")
    seed: str = setting("creatorpass-stripe", "Seed of the derived webhook secret and settings endpoint ids")
    log_level: str = setting("INFO", "Log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_json: bool = setting(True, "JSON log lines (false: plain text)")

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"{PREFIX}PORT: port {self.port} is out of range")
        for key in self.api_keys:
            if not key.startswith("sk_test_"):
                raise ConfigError(f"{PREFIX}API_KEYS: every key must start with sk_test_")
        for url in self.webhook_url:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{PREFIX}WEBHOOK_URL: not an http(s) URL: {url[:200]!r}")
        if self.webhook_secret and not self.webhook_secret.startswith("whsec_"):
            raise ConfigError(f"{PREFIX}WEBHOOK_SECRET: must start with whsec_")
        checks = {
            "WEBHOOK_TIMEOUT_S": 0 < self.webhook_timeout_s <= 300,
            "WEBHOOK_RETRY_SCALE": 0 < self.webhook_retry_scale <= 10,
            "WEBHOOK_CONCURRENCY": 1 <= self.webhook_concurrency <= 256,
            "CHAOS_DUPLICATE_RATE": 0 <= self.chaos_duplicate_rate <= 1,
            "CHAOS_MAX_DELAY_S": 0 <= self.chaos_max_delay_s <= 60,
            "CHECKOUT_TTL_S": 1 <= self.checkout_ttl_s <= 30 * 86_400,
            "MAX_OBJECTS": 100 <= self.max_objects <= 10_000_000,
            "MAX_EVENTS": 100 <= self.max_events <= 10_000_000,
            "MAX_IDEMPOTENCY_KEYS": 100 <= self.max_idempotency_keys <= 10_000_000,
            "IDEMPOTENCY_TTL_S": 1 <= self.idempotency_ttl_s <= 30 * 86_400,
            "MAX_DELIVERY_ATTEMPTS": 10 <= self.max_delivery_attempts <= 1_000_000,
            "MAX_BODY_BYTES": 1024 <= self.max_body_bytes <= 16 * 1024 * 1024,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"{PREFIX}{name}: out of range (see devnet/stripe/README.md)")

    @property
    def signing_secret(self) -> str:
        """The settings endpoints' secret: the configured one, else ``whsec_`` + a digest of the seed."""
        if self.webhook_secret:
            return self.webhook_secret
        return "whsec_" + hashlib.sha256(f"{self.seed}:webhook-secret".encode()).hexdigest()[:32]


def parse_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> StripeSandboxSettings:
    """Flags (``--port 12111``) over environment (``STRIPE_SANDBOX_PORT``) over defaults."""
    source = os.environ if env is None else env
    base = load_settings(StripeSandboxSettings, source)
    docs = {var: doc for var, _, doc in describe_settings(StripeSandboxSettings)}
    parser = argparse.ArgumentParser(prog="python -m devnet.stripe",
                                     description="An offline Stripe sandbox the stripe library cannot tell apart.")
    names = []
    for f in dataclasses.fields(StripeSandboxSettings):
        if f.metadata.get("secret"):
            continue  # secrets come from the environment or *_FILE, never from argv
        names.append(f.name)
        var = f"{PREFIX}{f.name.upper()}"
        help_text = f"{docs[var]} (env {var}; default {getattr(base, f.name)!r})"
        if f.name in ("api_keys", "webhook_url", "webhook_events"):
            parser.add_argument("--" + f.name.replace("_", "-"), action="append", default=None, help=help_text)
        else:
            parser.add_argument("--" + f.name.replace("_", "-"), default=None, help=help_text)
    args = parser.parse_args(argv)
    merged = {k: v for k, v in source.items() if k.startswith(PREFIX)}
    for name in names:
        value = getattr(args, name)
        if value is not None:
            merged[f"{PREFIX}{name.upper()}"] = ",".join(value) if isinstance(value, list) else str(value)
    return load_settings(StripeSandboxSettings, merged)
