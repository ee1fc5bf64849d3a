"""The signer's settings, read from ``SIGNER_*`` environment variables (secrets from ``*_FILE`` paths)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from common.settings import BaseSettings, ConfigError, secret_field, setting
from signer.certs import check_allow_list
from signer.keystore.pkcs11store import DEFAULT_MODULE
from signer.policy import Caps

__all__ = ["SignerSettings"]

CREATE_HEX = b"CREATE".hex()
# Mainnet's slot 0 extrapolated back from the Shelley hard fork (slot 4492800 at 2020-07-29T21:44:51Z) at
# 1-second slots; the Byron era's 20-second slots make the real system start (2017) useless for this.
MAINNET_SLOT_ZERO = "2020-06-07T21:44:51Z"
_MAY_BE_ZERO = frozenset({"max_sink_lovelace", "min_fee_a", "min_fee_b", "fee_margin_lovelace",
                          "coins_per_utxo_byte", "slot_tolerance", "max_lovelace_per_day", "audit_keep_files",
                          "disk_min_free_bytes", "mint_ceremony_quantity"})


@dataclass(frozen=True)
class SignerSettings(BaseSettings):
    env_prefix: ClassVar[str] = "SIGNER_"

    # --- chain and token ----------------------------------------------------------------------
    network_id: int = setting(0, "Cardano network id: 0 testnets/devnet, 1 mainnet")
    sink_mode: str = setting("mint", "mint: burns are negative mints under the policy key; address: tokens go "
                             "to the unspendable 'any of []' script address", choices=("mint", "address"))
    asset_name: str = setting(CREATE_HEX, "Asset name of $CREATE, hex")
    asset_policy_id: str = setting("", "Policy id of $CREATE (56 hex). Required in address mode; in mint mode "
                                   "derived from the policy key, and must match when set")
    # --- caps ---------------------------------------------------------------------------------
    max_fee_lovelace: int = setting(2_000_000, "Absolute ceiling on one transaction's fee (the size-based cap "
                                    "below is usually lower)")
    min_fee_a: int = setting(44, "minFeeA (lovelace per byte): fee cap = a * size + b + margin")
    min_fee_b: int = setting(155_381, "minFeeB (lovelace): fee cap = a * size + b + margin")
    fee_margin_lovelace: int = setting(50_000, "Lovelace a fee may exceed a * size + b (estimation slack)")
    coins_per_utxo_byte: int = setting(4_310, "coinsPerUTxOByte: the sink output (address mode) carries at most "
                                       "its min-UTxO")
    max_sink_lovelace: int = setting(3_000_000, "Absolute ceiling on lovelace one transaction sends to the sink")
    max_lovelace_per_day: int = setting(250_000_000, "Most lovelace (fees + ADA to the sink) signed away per UTC day")
    max_tokens_per_tx: int = setting(100, "Most $CREATE one transaction may burn")
    max_tokens_per_day: int = setting(10_000, "Most $CREATE burned per UTC day (signer clock)")
    max_ttl_slots: int = setting(3_600, "TTL may be at most this many slots past the caller's current slot")
    max_generation_ids: int = setting(100, "Most generation ids in one request")
    # --- the signer's own clock ---------------------------------------------------------------
    system_start: str = setting("", "Time of slot 0 (UTC ISO-8601 or unix seconds), extrapolated at the slot "
                                "length: the devnet's system start; preview 2022-10-25T00:00:00Z; preprod "
                                "2022-06-20T00:00:00Z; mainnet 2020-06-07T21:44:51Z (the default when "
                                "SIGNER_NETWORK_ID=1). Required on testnets")
    slot_length_s: int = setting(1, "Slot length in seconds")
    slot_tolerance: int = setting(300, "A request's current_slot may differ from the signer's clock by this many "
                                  "slots")
    # --- storage and keys ---------------------------------------------------------------------
    data_dir: Path = setting(Path("/var/lib/creatorpass/signer"), "State database and audit log directory")
    fsync: bool = setting(True, "fsync the audit log and SQLite (synchronous=FULL) before every reply; "
                          "false survives kill -9 but not power loss")
    key_store: str = setting("file", "Key store kind", choices=("file", "pkcs11"))
    key_file: Path | None = setting(None, "Encrypted key file (file store); default DATA_DIR/keys.json")
    passphrase: str = secret_field("Passphrase of the key file (file store)")
    kdf_memory_kib: int = setting(65_536, "Argon2id memory for a new key file (keys init/import)")
    pkcs11_module: Path = setting(Path(DEFAULT_MODULE), "PKCS#11 module (pkcs11 store)")
    pkcs11_token: str = setting("creatorpass", "PKCS#11 token label (pkcs11 store)")
    pkcs11_pin: str = secret_field("PKCS#11 user PIN (pkcs11 store)")
    pkcs11_key_prefix: str = setting("creatorpass", "Key labels are PREFIX-payment and PREFIX-policy")
    # --- transport and operations -------------------------------------------------------------
    listen: str = setting("unix:///run/creatorpass-signer/signer.sock",
                          "gRPC address: unix:PATH (default; PATH's directory is dedicated to the signer: "
                          "created 0750, must belong to it) or host:port (then mTLS is required)")
    tls_cert: Path | None = setting(None, "Server certificate (PEM) for host:port listening")
    tls_key: Path | None = setting(None, "Server private key (PEM)")
    tls_ca: Path | None = setting(None, "CA that signs client certificates; clients must present one")
    tls_allowed_clients: tuple[str, ...] = setting(
        ("cn:creatorpass-gateway",), "mTLS clients allowed, comma-separated: cn:NAME, san:NAME or sha256:FINGERPRINT")
    mint_ceremony_quantity: int = setting(0, "Run the mint ceremony for exactly this many $CREATE (0 = off; also "
                                          "serve --mint-ceremony N); it is served only on its own socket")
    mint_ceremony_socket: str = setting("ceremony.sock", "The ceremony's socket, a file name in SIGNER_LISTEN's "
                                        "directory")
    audit_max_file_bytes: int = setting(64 * 1024 * 1024, "Rotate the audit log when it passes this size")
    audit_keep_files: int = setting(16, "Rotated audit files kept (the oldest is deleted beyond it; ship them off "
                                    "the machine first)")
    disk_min_free_bytes: int = setting(256 * 1024 * 1024, "/health reports the data directory's disk as nearly "
                                       "full below this much free space")
    metrics_listen: str = setting("", "host:port for HTTP /health and /metrics; empty = off")
    batch_max: int = setting(64, "Most requests committed together (one fsync per batch)")
    queue_limit: int = setting(1024, "Most requests waiting; beyond it callers get RESOURCE_EXHAUSTED")
    log_level: str = setting("INFO", "Log level")
    log_json: bool = setting(True, "JSON log lines (false: console text)")

    def validate(self) -> None:
        if self.network_id not in (0, 1):
            raise ConfigError("SIGNER_NETWORK_ID: must be 0 or 1")
        for name in ("max_fee_lovelace", "max_sink_lovelace", "max_tokens_per_tx", "max_tokens_per_day",
                     "max_ttl_slots", "max_generation_ids", "batch_max", "queue_limit", "max_lovelace_per_day",
                     "min_fee_a", "min_fee_b", "fee_margin_lovelace", "coins_per_utxo_byte", "slot_length_s",
                     "slot_tolerance", "audit_max_file_bytes", "audit_keep_files", "disk_min_free_bytes",
                     "mint_ceremony_quantity"):
            if getattr(self, name) < 0 or (name not in _MAY_BE_ZERO and getattr(self, name) == 0):
                raise ConfigError(f"SIGNER_{name.upper()}: must be positive")
        if self.max_generation_ids > 10_000:
            raise ConfigError("SIGNER_MAX_GENERATION_IDS: at most 10000")
        try:
            name_bytes = bytes.fromhex(self.asset_name)
        except ValueError:
            raise ConfigError("SIGNER_ASSET_NAME: must be hex") from None
        if len(name_bytes) > 32:
            raise ConfigError("SIGNER_ASSET_NAME: at most 32 bytes")
        if self.asset_policy_id and not _is_hex(self.asset_policy_id, 56):
            raise ConfigError("SIGNER_ASSET_POLICY_ID: must be 56 lowercase hex")
        if self.sink_mode == "address" and not self.asset_policy_id:
            raise ConfigError("SIGNER_ASSET_POLICY_ID: required in address mode")
        if self.clock_configured:
            self.slot_zero_time  # noqa: B018  (validates SIGNER_SYSTEM_START)
        if not self.listen.startswith("unix:") and not (self.tls_cert and self.tls_key and self.tls_ca):
            raise ConfigError("SIGNER_LISTEN: TCP listening needs SIGNER_TLS_CERT, SIGNER_TLS_KEY and SIGNER_TLS_CA "
                              "(mutual TLS); use unix:PATH otherwise")
        bad = check_allow_list(self.tls_allowed_clients)
        if bad is not None:
            raise ConfigError(f"SIGNER_TLS_ALLOWED_CLIENTS: {bad!r} is not cn:NAME, san:NAME or sha256:64-hex")
        if not self.listen.startswith("unix:") and not self.tls_allowed_clients:
            raise ConfigError("SIGNER_TLS_ALLOWED_CLIENTS: mutual TLS needs at least one allowed client")
        if self.mint_ceremony_quantity:
            if not self.listen.startswith("unix:") or self.sink_mode != "mint":
                raise ConfigError("SIGNER_MINT_CEREMONY_QUANTITY: the ceremony needs mint mode and a unix "
                                  "SIGNER_LISTEN (its socket sits next to the main one)")
            if "/" in self.mint_ceremony_socket or not self.mint_ceremony_socket:
                raise ConfigError("SIGNER_MINT_CEREMONY_SOCKET: a file name, not a path")

    @property
    def caps(self) -> Caps:
        return Caps(max_fee_lovelace=self.max_fee_lovelace, max_sink_lovelace=self.max_sink_lovelace,
                    max_tokens_per_tx=self.max_tokens_per_tx, max_tokens_per_day=self.max_tokens_per_day,
                    max_ttl_slots=self.max_ttl_slots, max_generation_ids=self.max_generation_ids,
                    max_lovelace_per_day=self.max_lovelace_per_day, min_fee_a=self.min_fee_a,
                    min_fee_b=self.min_fee_b, fee_margin_lovelace=self.fee_margin_lovelace,
                    coins_per_utxo_byte=self.coins_per_utxo_byte)

    @property
    def clock_configured(self) -> bool:
        """Whether the signer knows the network's clock (``serve`` requires it; key commands do not)."""
        return bool(self.system_start.strip()) or self.network_id == 1

    @property
    def slot_zero_time(self) -> float:
        """Unix time of slot 0 (ConfigError when it is neither set nor known for the network)."""
        text = self.system_start.strip() or (MAINNET_SLOT_ZERO if self.network_id == 1 else "")
        if not text:
            raise ConfigError("SIGNER_SYSTEM_START: required on testnets (the devnet's system start; preview "
                              "2022-10-25T00:00:00Z; preprod 2022-06-20T00:00:00Z)")
        try:
            return float(text)
        except ValueError:
            pass
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"SIGNER_SYSTEM_START: not ISO-8601 or unix seconds: {text!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp()

    @property
    def socket_path(self) -> Path | None:
        """The public unix socket (None under TCP)."""
        if not self.listen.startswith("unix:"):
            return None
        path = self.listen[len("unix:"):]
        return Path(path[2:] if path.startswith("//") else path)

    @property
    def key_file_path(self) -> Path:
        return self.key_file or self.data_dir / "keys.json"


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)
