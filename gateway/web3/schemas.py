"""Request bodies of the web3 API (msgspec Structs: lengths and ranges checked before any service runs)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from gateway.web3.address import MAX_ADDRESS_CHARS
from gateway.web3.cip8 import MAX_KEY_HEX, MAX_SIGNATURE_HEX
from gateway.web3.splice import MAX_WITNESS_HEX

__all__ = [
    "ConfirmGenerationRequest",
    "ConfirmRequest",
    "QuoteRequest",
    "SubmitRequest",
    "VerifyRequest",
]

MAX_PROMPT_CHARS = 2000
MAX_CLIENT_UTXOS = 256

Address = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ADDRESS_CHARS,
                                      description="bech32 (addr…) or CIP-30 raw hex")]
Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PROMPT_CHARS)]
TxId = Annotated[str, msgspec.Meta(min_length=64, max_length=64, pattern="^[0-9a-f]{64}$")]
QuoteId = Annotated[str, msgspec.Meta(min_length=32, max_length=32, pattern="^[0-9a-f]{32}$")]


class VerifyRequest(msgspec.Struct):
    """``POST /v1/auth/wallet/verify``: CIP-30 ``signData(address, payload)``'s answer."""

    address: Address
    signature: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SIGNATURE_HEX)]
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_HEX)]


class QuoteRequest(msgspec.Struct):
    """``POST /v1/web3/quotes``; ``utxos`` is CIP-30 ``getUtxos()`` (checked against the chain by out-ref)."""

    prompt: Prompt
    address: Address
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    utxos: Annotated[list[str], msgspec.Meta(max_length=MAX_CLIENT_UTXOS)] | None = None


class SubmitRequest(msgspec.Struct):
    """``POST /v1/web3/quotes/{id}/submit``: CIP-30 ``signTx(tx_cbor, true)``'s witness set (or a full signed tx)."""

    witness_set: Annotated[str, msgspec.Meta(min_length=2, max_length=MAX_WITNESS_HEX)]


class ConfirmRequest(msgspec.Struct):
    """``POST /v1/web3/quotes/{id}/confirm``: the id of a tx the wallet submitted itself."""

    tx_id: TxId


class ConfirmGenerationRequest(msgspec.Struct):
    """The seed's ``POST /api/confirm-generation {txId, prompt | quoteId}``."""

    txId: TxId
    prompt: Annotated[str, msgspec.Meta(max_length=MAX_PROMPT_CHARS)] = ""
    quoteId: QuoteId | None = None
