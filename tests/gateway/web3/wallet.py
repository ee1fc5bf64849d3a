"""Test wallets: pycardano keys acting like a CIP-30 wallet (signData, signTx partial, full signed tx)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import cbor2
from nacl.signing import SigningKey
from pycardano import (
    Address,
    Network,
    PaymentSigningKey,
    StakeSigningKey,
    TransactionWitnessSet,
    VerificationKeyWitness,
)

__all__ = ["TestWallet", "cose_sign1"]


def cose_sign1(signing_key: bytes, address_raw: bytes, payload: bytes, *, hashed: bool = False,
               alg: int = -8, vkey: bytes | None = None, tagged: bool = False) -> dict[str, str]:
    """A CIP-30 ``signData`` answer built from the CIP-8 spec (base addresses, like real wallets)."""
    key = SigningKey(signing_key)
    x = vkey if vkey is not None else bytes(key.verify_key)
    protected = cbor2.dumps({1: alg, "address": address_raw})
    signed_payload = hashlib.blake2b(payload, digest_size=28).digest() if hashed else payload
    sig_structure = cbor2.dumps(["Signature1", protected, b"", signed_payload])
    signature = key.sign(sig_structure).signature
    message: Any = [protected, {"hashed": hashed}, signed_payload, signature]
    if tagged:
        message = cbor2.CBORTag(18, message)
    cose_key = cbor2.dumps({1: 1, 3: -8, -1: 6, -2: x})
    return {"signature": cbor2.dumps(message).hex(), "key": cose_key.hex()}


@dataclass
class TestWallet:
    __test__ = False
    payment: PaymentSigningKey = field(default_factory=PaymentSigningKey.generate)
    stake: StakeSigningKey = field(default_factory=StakeSigningKey.generate)

    @property
    def address(self) -> Address:
        return Address(self.payment.to_verification_key().hash(), self.stake.to_verification_key().hash(),
                       network=Network.TESTNET)

    @property
    def bech32(self) -> str:
        return str(self.address)

    @property
    def raw(self) -> bytes:
        return bytes(self.address.to_primitive())

    @property
    def key_hash(self) -> bytes:
        return bytes(self.payment.to_verification_key().hash().payload)

    def sign_data(self, payload_hex: str, **kw: Any) -> dict[str, str]:
        return cose_sign1(bytes(self.payment.payload), self.raw, bytes.fromhex(payload_hex), **kw)

    def sign_data_with_stake_key(self, payload_hex: str) -> dict[str, str]:
        return cose_sign1(bytes(self.stake.payload), self.raw, bytes.fromhex(payload_hex))

    def witness(self, tx_id: str) -> list[bytes]:
        return [bytes(self.payment.to_verification_key().payload), bytes(self.payment.sign(bytes.fromhex(tx_id)))]

    def sign_tx(self, tx_id: str, *, set_tag: bool = True, repeat: int = 1) -> str:
        """CIP-30 ``signTx(tx, true)``: only this wallet's witnesses (optionally repeated, as some wallets do)."""
        witnesses: Any = [self.witness(tx_id)] * repeat
        if set_tag:
            witnesses = cbor2.CBORTag(258, witnesses)
        return cbor2.dumps({0: witnesses}).hex()

    def sign_tx_pycardano(self, tx_id: str) -> str:
        vk = self.payment.to_verification_key()
        witness = VerificationKeyWitness(vk, self.payment.sign(bytes.fromhex(tx_id)))
        return str(TransactionWitnessSet(vkey_witnesses=[witness]).to_cbor_hex())
