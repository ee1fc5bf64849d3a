"""The gateway's one settings object, grouped by concern, read once from ``GATEWAY_*``.

Secrets (JWT key, Stripe keys, webhook secret, image URL key) come from ``GATEWAY_<NAME>_FILE``; a
missing one is either generated into the state directory (embedded default, development only) or
refused at start-up when ``GATEWAY_REQUIRE_SECRETS`` is on (production). Invalid values exit 2 with
a message naming the variable (``common.settings.run_main``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from common.settings import BaseSettings, ConfigError, secret_field, setting

__all__ = ["CreditPack", "GatewaySettings", "parse_packs"]


@dataclass(frozen=True)
class CreditPack:
    """A server-side credit pack: the client names a pack, never an amount."""

    id: str
    credits: int
    amount: int  # in the currency's smallest unit (cents)
    currency: str
    label: str


def parse_packs(raw: str) -> tuple[CreditPack, ...]:
    """``id:credits:amount:currency[:label];…`` → packs; raises ConfigError on any malformed entry."""
    packs: list[CreditPack] = []
    for item in (part.strip() for part in raw.split(";")):
        if not item:
            continue
        fields = item.split(":", 4)
        if len(fields) < 4:
            raise ConfigError(f"GATEWAY_CREDIT_PACKS: {item!r} is not id:credits:amount:currency[:label]")
        pack_id, credits_raw, amount_raw, currency = (f.strip() for f in fields[:4])
        if not pack_id.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"GATEWAY_CREDIT_PACKS: pack id {pack_id!r} must be letters, digits, - or _")
        try:
            credits, amount = int(credits_raw), int(amount_raw)
        except ValueError:
            raise ConfigError(f"GATEWAY_CREDIT_PACKS: {item!r}: credits and amount must be integers") from None
        if credits <= 0 or amount < 50:
            raise ConfigError(f"GATEWAY_CREDIT_PACKS: {item!r}: credits > 0 and amount >= 50 (Stripe's minimum)")
        if len(currency) != 3 or not currency.isalpha():
            raise ConfigError(f"GATEWAY_CREDIT_PACKS: {item!r}: currency must be an ISO code such as usd")
        label = fields[4].strip() if len(fields) > 4 else f"{credits} credits"
        if any(p.id == pack_id for p in packs):
            raise ConfigError(f"GATEWAY_CREDIT_PACKS: pack id {pack_id!r} appears twice")
        packs.append(CreditPack(pack_id, credits, amount, currency.lower(), label))
    return tuple(packs)


@dataclass(frozen=True)
class GatewaySettings(BaseSettings):
    env_prefix: ClassVar[str] = "GATEWAY_"

    # --- server ---
    host: str = setting("127.0.0.1", "HTTP listen address (0.0.0.0 only behind a reverse proxy)")
    port: int = setting(8080, "HTTP port")
    public_url: str = setting("", "Public base URL for links in responses and Stripe redirects; '' = http://host:port")
    cors_origins: tuple[str, ...] = setting((), "Comma-separated origins allowed by CORS ('' = same origin only)")
    max_body_bytes: int = setting(64 * 1024, "Largest accepted request body (webhooks included)")
    state_dir: Path = setting(Path("var/gateway"), "Directory for the database, images and generated dev secrets")
    require_secrets: bool = setting(False, "Refuse to start when a secret file is missing (production)")
    log_level: str = setting("INFO", "Log level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_json: bool = setting(True, "JSON log lines (false: console)")

    # --- database ---
    database_url: str = setting("", "'' = SQLite in state_dir; sqlite:///path; postgresql://… (replicas)")

    # --- accounts ---
    jwt_secret: str = secret_field("HMAC key for access tokens (>= 32 bytes)")
    access_token_ttl_s: int = setting(900, "Lifetime of an access token")
    refresh_token_ttl_s: int = setting(30 * 24 * 3600, "Lifetime of a refresh token (rotated at every use)")
    password_min_length: int = setting(10, "Minimum password length")
    auth_rate_per_minute: int = setting(10, "Sign-ups / logins allowed per client address and per email a minute")
    password_hash_memory_kib: int = setting(65536, "argon2id memory cost of one password hash (KiB)")
    password_hash_time_cost: int = setting(3, "argon2id passes over that memory")

    # --- billing ---
    credit_packs: str = setting("pack10:10:500:usd:10 credits for $5.00", "Packs as id:credits:amount:currency:label;…")
    stripe_secret_key: str = secret_field("Stripe secret key (sk_live_… / sk_test_…)")
    stripe_webhook_secret: str = secret_field("Webhook endpoint signing secret (whsec_…)")
    stripe_publishable_key: str = setting("", "Publishable key for Stripe Elements on the page (pk_…)")
    stripe_api_base: str = setting("", "Stripe API base URL; '' = api.stripe.com (the sandbox sets its own URL)")
    stripe_max_network_retries: int = setting(2, "Retries of Stripe API calls on network errors (idempotent keys)")
    stripe_timeout_s: float = setting(20.0, "Timeout of one Stripe API call")
    stripe_webhook_tolerance_s: int = setting(
        300, "A webhook whose signed timestamp is older, or further in the future, than this is refused (400)"
    )
    purchase_rate_per_minute: int = setting(
        5, "Purchase attempts (card, Elements, Checkout) allowed per artist a minute; more get 429 (card testing)"
    )

    # --- generations ---
    inference_target: str = setting("127.0.0.1:50053", "Inference gRPC target(s), comma-separated")
    inference_model: str = setting("", "Model name ('' = the server's default)")
    generation_timeout_s: float = setting(120.0, "Deadline of one generation at inference")
    hold_timeout_s: int = setting(300, "A credit hold not resolved within this is voided by the sweeper")
    sweep_interval_s: float = setting(5.0, "How often expired holds are voided")
    on_client_disconnect: str = setting(
        "continue", "When a waiting client goes away: continue (charged if delivered) or cancel",
        choices=("continue", "cancel"),
    )
    max_concurrent_generations: int = setting(64, "Generations in flight in this process; more get 503")
    image_url_secret: str = secret_field("HMAC key for expiring signed image URLs")
    image_url_ttl_s: int = setting(3600, "Lifetime of a signed image URL")

    # --- chain: indexer and signer ---
    indexer_target: str = setting("127.0.0.1:50051", "Indexer gRPC target")
    signer_target: str = setting("unix:var/run/signer.sock", "Signer gRPC target (unix:PATH or host:port with mTLS)")
    signer_tls_cert: Path | None = setting(None, "Client certificate (PEM) for a host:port signer (mTLS)")
    signer_tls_key: Path | None = setting(None, "Client private key (PEM) for the signer's mTLS")
    signer_tls_ca: Path | None = setting(None, "CA (PEM) that signed the signer's server certificate")
    network: str = setting("devnet", "Cardano network", choices=("devnet", "preview", "preprod", "mainnet"))
    asset_policy_id: str = setting("", "$CREATE policy id (56 hex); '' = read from the signer's identity")
    asset_name_hex: str = setting("", "$CREATE asset name (hex); '' = read from the signer's identity")

    # --- web3 ---
    # Default depth 10: the value at risk per image is one token; Kupo's docs put the odds of a rollback
    # under 0.01 % after 100 blocks and exchanges wait 15-21 blocks for deposits worth far more. Ten
    # blocks (~3.5 min on mainnet) keeps that risk negligible for one token while images stay prompt,
    # and speculative generation hides most of the wait.
    web3_pay_to_address: str = setting("", "Where artists pay: the treasury or sink address (bech32); '' = web3 off")
    web3_price: int = setting(1, "$CREATE units paid per generation from a wallet")
    web3_min_confirmations: int = setting(10, "Blocks a payment must be deep (including block = 1) to release images")
    web3_quote_ttl_s: int = setting(600, "Lifetime of a quote: its tx's TTL is the tip slot plus this")
    web3_challenge_domain: str = setting("", "Domain named in wallet sign-in challenges; '' = the host of base_url")
    web3_challenge_ttl_s: int = setting(300, "Lifetime of a wallet sign-in challenge")
    web3_chain_timeout_s: float = setting(10.0, "Timeout of one indexer call from the web3 domain")
    web3_confirm_wait_s: float = setting(120.0, "How long /api/confirm-generation waits for images before a 202")

    # --- studio (the page at /) ---
    studio_enabled: bool = setting(True, "Serve the Creator's Studio page at /")
    stripe_js_url: str = setting("", "Stripe.js for the page; '' = js.stripe.com with a publishable key, "
                                 "the sandbox's otherwise")
    devnet_control_url: str = setting("", "Devnet control API; on the devnet it backs the page's test wallet "
                                      "(never elsewhere)")

    # --- burns ---
    # Off by default so a gateway without a signer (tests, a card-less studio) neither retries forever
    # nor refuses card generations for want of a treasury reading; the bundle turns it on.
    burn_enabled: bool = setting(False, "Run the custodial burner (needs the signer and the indexer)")
    burn_batch_max: int = setting(100, "Most burn intents in one burn tx (also bounded by the signer's caps)")
    burn_batch_wait_s: float = setting(5.0, "A partial batch is burned once its oldest intent waited this long")
    burn_lanes: int = setting(4, "Treasury UTxOs kept apart so this many burn txs can be in flight at once")
    burn_confirmations: int = setting(10, "Depth (including the block = 1) at which a burn is final and settled")
    burn_lane_release_depth: int = setting(
        1, "Depth at which a lane's tx frees the lane for its next one (up to burn_confirmations: slower, but a"
           " rollback that outlives a TTL can then never strand a chained burn)")
    burn_ttl_slots: int = setting(600, "TTL of a burn tx: tip slot + this (capped by the signer's max_ttl_slots)")
    burn_poll_interval_s: float = setting(1.0, "How long the burner follows its txs between two planning rounds")
    burn_retry_max_s: float = setting(60.0, "Longest backoff between retries of a failing signer/indexer step")
    burn_lane_min_lovelace: int = setting(3_000_000, "A lane below this lovelace is topped up from the reserve")
    burn_treasury_min_tokens: int = setting(100, "Below this many $CREATE in the treasury new card generations get 503")
    burn_treasury_min_lovelace: int = setting(10_000_000, "Below this lovelace in the treasury card generations 503")
    burn_call_timeout_s: float = setting(10.0, "Timeout of one signer or indexer call from the burner")
    burn_lease_s: float = setting(
        30.0, "How long a replica's lease on a burn lane lasts without renewal (renewed every round and on every"
              " write; a dead replica's leases go at once, a stuck one's after this)")

    # --- image store (S3-compatible; local disk in state_dir/images when no bucket is set) ---
    image_s3_bucket: str = setting("", "S3 bucket for generated images; '' = local disk (state_dir/images)")
    image_s3_endpoint_url: str = setting("", "S3 endpoint (MinIO, Ceph, R2, …); '' = AWS for the region")
    image_s3_region: str = setting("us-east-1", "S3 region")
    image_s3_prefix: str = setting("images/", "Key prefix of the images in the bucket")
    image_s3_access_key_id: str = secret_field("S3 access key id ('' = the environment's default credentials)")
    image_s3_secret_access_key: str = secret_field("S3 secret access key")

    def validate(self) -> None:
        parse_packs(self.credit_packs)
        if not 1 <= self.port <= 65535:
            raise ConfigError("GATEWAY_PORT: must be 1..65535")
        if self.max_body_bytes < 1024:
            raise ConfigError("GATEWAY_MAX_BODY_BYTES: must be at least 1024")
        if self.access_token_ttl_s <= 0 or self.refresh_token_ttl_s <= self.access_token_ttl_s:
            raise ConfigError("GATEWAY_REFRESH_TOKEN_TTL_S must be longer than GATEWAY_ACCESS_TOKEN_TTL_S (> 0)")
        if self.hold_timeout_s < self.generation_timeout_s:
            raise ConfigError("GATEWAY_HOLD_TIMEOUT_S must be at least GATEWAY_GENERATION_TIMEOUT_S")
        if self.password_min_length < 8:
            raise ConfigError("GATEWAY_PASSWORD_MIN_LENGTH: at least 8")
        if self.jwt_secret and len(self.jwt_secret.encode()) < 32:
            raise ConfigError("GATEWAY_JWT_SECRET_FILE: the key must be at least 32 bytes")
        tls = (self.signer_tls_cert, self.signer_tls_key, self.signer_tls_ca)
        if any(tls) and not all(tls):
            raise ConfigError("GATEWAY_SIGNER_TLS_CERT, _KEY and _CA go together (mTLS to a host:port signer)")
        if not self.signer_target.startswith("unix:") and not all(tls):
            raise ConfigError("GATEWAY_SIGNER_TARGET is host:port: the signer requires mTLS there; set "
                              "GATEWAY_SIGNER_TLS_CERT, GATEWAY_SIGNER_TLS_KEY and GATEWAY_SIGNER_TLS_CA")
        if self.database_url and not self.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError("GATEWAY_DATABASE_URL: sqlite:///PATH or postgresql://…")

    @property
    def packs(self) -> tuple[CreditPack, ...]:
        return parse_packs(self.credit_packs)

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def sqlite_path(self) -> Path:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return self.state_dir / "gateway.sqlite3"
