"""Raw-CBOR transaction building for the Conway strictness tests: bodies as lists of (key, encoded value) so a
test can repeat a key, tag a set, or write an encoding cbor2 would never produce, and still sign the result."""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2
import pytest

from devnet.chain import Chain, LedgerRejection
from devnet.ledger.types import OutRef

__all__ = ["FEE", "TxParts", "enc", "map_raw", "refused_at_decode", "tag24"]

FEE = 400_000  # above the linear minimum of every tx these tests build (all well under 5 KB)


def enc(obj: Any) -> bytes:
    return cbor2.dumps(obj)


def map_raw(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A definite-length CBOR map from already encoded (key, value) pairs, duplicates kept."""
    assert len(entries) < 24
    return bytes([0xA0 + len(entries)]) + b"".join(k + v for k, v in entries)


def tag24(inner: bytes) -> cbor2.CBORTag:
    return cbor2.CBORTag(24, inner)


class TxParts:
    """A payment from genesis key ``key`` spending its richest UTxO: ``entries`` are the body's encoded
    fields, editable before :meth:`cbor` signs the body as written."""

    def __init__(self, chain: Chain, key: int = 0, pay: int = 2_000_000, to: int = 1) -> None:
        self.chain = chain
        self.key = chain.genesis.keys[key]
        ref, out = max(chain.spendable_at(self.key.address_bytes), key=lambda pair: pair[1].lovelace)
        self.ref, self.in_lovelace = ref, out.lovelace
        self.outputs: list[Any] = [{0: chain.genesis.keys[to].address_bytes, 1: pay}]
        self.fee = FEE
        self.extra: list[tuple[bytes, bytes]] = []
        self.inputs_raw: bytes | None = None
        self.outputs_raw: bytes | None = None
        self.witness_extra: dict[int, Any] = {}
        self.signers = [self.key]
        self.aux: bytes | None = None

    def change(self) -> int:
        paid = sum(o[1] if isinstance(o[1], int) else o[1][0] for o in self.outputs)
        return self.in_lovelace - paid - self.fee

    def body(self) -> bytes:
        inputs = self.inputs_raw or enc([[bytes.fromhex(self.ref.tx_id), self.ref.index]])
        outputs = self.outputs_raw or enc([*self.outputs, {0: self.key.address_bytes, 1: self.change()}])
        entries = [(enc(0), inputs), (enc(1), outputs), (enc(2), enc(self.fee))]
        if self.aux is not None:
            entries.append((enc(7), enc(hashlib.blake2b(self.aux, digest_size=32).digest())))
        return map_raw(entries + self.extra)

    def cbor(self) -> bytes:
        body = self.body()
        digest = hashlib.blake2b(body, digest_size=32).digest()
        witness: dict[int, Any] = {0: [[k.vkey, k.sign(digest)] for k in self.signers]}
        witness.update(self.witness_extra)
        return b"\x84" + body + enc(witness) + b"\xf5" + (self.aux if self.aux is not None else b"\xf6")

    def out_ref(self, index: int) -> OutRef:
        return OutRef(hashlib.blake2b(self.body(), digest_size=32).hexdigest(), index)


def refused_at_decode(chain: Chain, raw: bytes, *words: str) -> str:
    """Submit ``raw``; it must be refused as undecodable (-32602) with ``words`` in the Conway message."""
    with pytest.raises(LedgerRejection) as info:
        chain.submit(raw)
    assert info.value.code == -32602, info.value.to_error()
    message: str = info.value.data["conway"]
    for word in words:
        assert word in message, message
    return message
