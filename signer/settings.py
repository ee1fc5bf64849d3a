"""The signer's settings, read from ``SIGNER_*`` environment variables (secrets from ``*_FILE`` paths)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from common.settings import BaseSettings, ConfigError, secret_field, setting
from signer.keystore.pkcs11store import DEFAULT_MODULE
from signer.policy import Caps

__all__ = ["SignerSettings"]

CREATE_HEX = b"CREATE".hex()


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
    max_fee_lovelace: int = setting(2_000_000, "Largest fee the signer will pay per transaction")
    max_sink_lovelace: int = setting(3_000_000, "Most lovelace one transaction may send to the sink")
    max_tokens_per_tx: int = setting(100, "Most $CREATE one transaction may burn")
    max_tokens_per_day: int = setting(10_000, "Most $CREATE burned per UTC day (signer clock)")
    max_ttl_slots: int = setting(3_600, "TTL may be at most this many slots past the caller's current slot")
    max_generation_ids: int = setting(100, "Most generation ids in one request")
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
    listen: str = setting("unix:///tmp/creatorpass-signer.sock",
                          "gRPC address: unix:PATH (default) or host:port (then mTLS is required)")
    tls_cert: Path | None = setting(None, "Server certificate (PEM) for host:port listening")
    tls_key: Path | None = setting(None, "Server private key (PEM)")
    tls_ca: Path | None = setting(None, "CA that signs client certificates; clients must present one")
    enable_mint_ceremony: bool = setting(False, "Allow SignMintCeremony (also: serve --enable-mint-ceremony)")
    metrics_listen: str = setting("", "host:port for HTTP /health and /metrics; empty = off")
    batch_max: int = setting(64, "Most requests committed together (one fsync per batch)")
    queue_limit: int = setting(1024, "Most requests waiting; beyond it callers get RESOURCE_EXHAUSTED")
    log_level: str = setting("INFO", "Log level")
    log_json: bool = setting(True, "JSON log lines (false: console text)")

    def validate(self) -> None:
        if self.network_id not in (0, 1):
            raise ConfigError("SIGNER_NETWORK_ID: must be 0 or 1")
        for name in ("max_fee_lovelace", "max_sink_lovelace", "max_tokens_per_tx", "max_tokens_per_day",
                     "max_ttl_slots", "max_generation_ids", "batch_max", "queue_limit"):
            if getattr(self, name) < 0 or (name != "max_sink_lovelace" and getattr(self, name) == 0):
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
        if not self.listen.startswith("unix:") and not (self.tls_cert and self.tls_key and self.tls_ca):
            raise ConfigError("SIGNER_LISTEN: TCP listening needs SIGNER_TLS_CERT, SIGNER_TLS_KEY and SIGNER_TLS_CA "
                              "(mutual TLS); use unix:PATH otherwise")

    @property
    def caps(self) -> Caps:
        return Caps(max_fee_lovelace=self.max_fee_lovelace, max_sink_lovelace=self.max_sink_lovelace,
                    max_tokens_per_tx=self.max_tokens_per_tx, max_tokens_per_day=self.max_tokens_per_day,
                    max_ttl_slots=self.max_ttl_slots, max_generation_ids=self.max_generation_ids)

    @property
    def key_file_path(self) -> Path:
        return self.key_file or self.data_dir / "keys.json"


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)
