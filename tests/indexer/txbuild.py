"""Signed test transactions for the integration tests (cbor2 + pycardano keys; off the indexer's path)."""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2
from pycardano import PaymentSigningKey

from indexer.address import bech32_decode


def payment_tx(key: dict[str, str], utxo: tuple[str, int, int], outputs: list[tuple[str, int]], *,
               fee: int = 400_000, metadata: dict[int, Any] | None = None,
               ttl: int | None = None, mint: dict[bytes, dict[bytes, int]] | None = None) -> tuple[bytes, str]:
    """Spend ``utxo`` (tx id, index, lovelace) of genesis ``key`` to ``outputs`` with change back; -> (cbor, id)."""
    tx_id, index, lovelace = utxo
    change = lovelace - sum(q for _, q in outputs) - fee
    outs = [[bech32_decode(a)[1], q] for a, q in outputs] + [[bech32_decode(key["address"])[1], change]]
    body: dict[int, Any] = {0: [[bytes.fromhex(tx_id), index]], 1: outs, 2: fee}
    if ttl is not None:
        body[3] = ttl
    aux = cbor2.dumps(metadata) if metadata is not None else None
    if aux is not None:
        body[7] = hashlib.blake2b(aux, digest_size=32).digest()
    if mint:
        body[9] = mint
    body_bytes = cbor2.dumps(body)
    digest = hashlib.blake2b(body_bytes, digest_size=32).digest()
    signing_key = PaymentSigningKey.from_cbor(key["signing_key_cbor"])
    witness = {0: [[bytes.fromhex(key["verification_key"]), signing_key.sign(digest)]]}
    tx = b"\x84" + body_bytes + cbor2.dumps(witness) + b"\xf5" + (aux or b"\xf6")
    return tx, digest.hex()
