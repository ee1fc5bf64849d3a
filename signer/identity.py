"""Derive the signer's identity (addresses, key hashes, policy) from its keys and settings."""

from __future__ import annotations

from dataclasses import dataclass

from signer.chain import (
    address_hrp,
    bech32_encode,
    enterprise_address,
    key_hash,
    script_hash,
    script_sig,
    unspendable_script,
)
from signer.errors import KeyStoreError
from signer.keystore import FileKeyStore, KeyStore, Pkcs11Config, Pkcs11KeyStore
from signer.policy import PolicyConfig, SlotClock
from signer.settings import SignerSettings

__all__ = ["Identity", "build_identity", "open_key_store", "pkcs11_config"]


@dataclass(frozen=True)
class Identity:
    policy: PolicyConfig
    custodial_address: str
    sink_address: str
    policy_script_cbor: bytes  # b"" in address mode
    key_store: str

    @property
    def policy_id_hex(self) -> str:
        return self.policy.policy_id.hex()


def pkcs11_config(settings: SignerSettings) -> Pkcs11Config:
    if not settings.pkcs11_pin:
        raise KeyStoreError("SIGNER_PKCS11_PIN_FILE is not set")
    return Pkcs11Config(module=settings.pkcs11_module, token_label=settings.pkcs11_token,
                        pin=settings.pkcs11_pin, key_label_prefix=settings.pkcs11_key_prefix)


def open_key_store(settings: SignerSettings) -> KeyStore:
    if settings.key_store == "pkcs11":
        return Pkcs11KeyStore.open(pkcs11_config(settings))
    if not settings.passphrase:
        raise KeyStoreError("SIGNER_PASSPHRASE_FILE is not set")
    return FileKeyStore.open(settings.key_file_path, settings.passphrase)


def build_identity(settings: SignerSettings, keys: KeyStore) -> Identity:
    """The policy configuration for ``keys``; KeyStoreError when keys and sink mode do not fit."""
    network = settings.network_id
    payment_hash = key_hash(keys.public_key("payment"))
    custodial = enterprise_address(payment_hash, network, script=False)
    sink = enterprise_address(script_hash(unspendable_script()), network, script=True)
    if settings.sink_mode == "mint":
        if "policy" not in keys.roles():
            raise KeyStoreError("mint mode needs a policy key; run `python -m signer keys init` in mint mode")
        policy_key_hash = key_hash(keys.public_key("policy"))
        policy_hash: bytes | None = policy_key_hash
        script = script_sig(policy_key_hash)
        policy_id = script_hash(script)
        if settings.asset_policy_id and settings.asset_policy_id != policy_id.hex():
            raise KeyStoreError(f"SIGNER_ASSET_POLICY_ID {settings.asset_policy_id} is not the policy id "
                                f"{policy_id.hex()} of the policy key")
    else:
        policy_hash, script = None, b""
        policy_id = bytes.fromhex(settings.asset_policy_id)
    config = PolicyConfig(
        network_id=network, sink_mode="mint" if settings.sink_mode == "mint" else "address",
        custodial_address=custodial, sink_address=sink, policy_id=policy_id,
        asset_name=bytes.fromhex(settings.asset_name), payment_key_hash=payment_hash,
        policy_key_hash=policy_hash, caps=settings.caps,
        clock=SlotClock(settings.slot_zero_time, settings.slot_length_s, settings.slot_tolerance)
        if settings.clock_configured else None)
    hrp = address_hrp(network)
    return Identity(policy=config, custodial_address=bech32_encode(hrp, custodial),
                    sink_address=bech32_encode(hrp, sink), policy_script_cbor=script, key_store=keys.kind)
