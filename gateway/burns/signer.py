"""The burner's road to the signer: ``SignerService`` over its unix socket (or mTLS), typed answers.

``SignerClient`` is a Protocol so tests may provide another; ``GrpcSigner`` is the real one. A refusal
(gRPC ``PERMISSION_DENIED`` with the ``creatorpass-refusal-bin`` trailer) is raised as
:class:`SignerRefusal` carrying the machine-readable reason; an unreachable or failing signer as
:class:`SignerUnavailable`; a malformed request as :class:`SignerRejected`. No protobuf leaves this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from common.grpcutil import TlsFiles, open_channel
from common.rpc.creatorpass.v1 import signer_pb2, signer_pb2_grpc

__all__ = [
    "REFUSAL_KEY",
    "GrpcSigner",
    "Signature",
    "SignerCaps",
    "SignerClient",
    "SignerError",
    "SignerIdentity",
    "SignerRefusal",
    "SignerRejected",
    "SignerUnavailable",
]

REFUSAL_KEY = "creatorpass-refusal-bin"


class SignerError(Exception):
    """Base of the signer client's errors."""


class SignerUnavailable(SignerError):
    """The signer did not answer (down, socket missing, deadline) or could not decide (UNAVAILABLE)."""


class SignerRejected(SignerError):
    """INVALID_ARGUMENT / RESOURCE_EXHAUSTED / anything else that is not a policy decision."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


class SignerRefusal(SignerError):
    """The signer's policy refused the transaction; ``reason`` is the RefusalReason name."""

    def __init__(self, reason: str, detail: str, audit_id: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.audit_id = reason, detail, audit_id


@dataclass(frozen=True)
class SignerCaps:
    max_fee_lovelace: int
    max_sink_lovelace: int
    max_tokens_per_tx: int
    max_tokens_per_day: int
    max_ttl_slots: int
    max_generation_ids: int
    max_lovelace_per_day: int = 0
    min_fee_a: int = 0
    min_fee_b: int = 0
    fee_margin_lovelace: int = 0
    slot_tolerance: int = 0


@dataclass(frozen=True)
class SignerIdentity:
    custodial_address: str
    payment_key_hash: str
    policy_id: str
    policy_script_cbor: bytes
    asset_policy_id: str
    asset_name_hex: str
    sink_mode: str  # "mint" | "address"
    sink_address: str
    network_id: int
    caps: SignerCaps
    tokens_signed_today: int = 0
    clock_slot: int = 0

    @property
    def batch_cap(self) -> int:
        """The most generation ids one burn may carry under the signer's caps."""
        return max(1, min(self.caps.max_tokens_per_tx, self.caps.max_generation_ids))


@dataclass(frozen=True)
class Signature:
    tx_id: str
    witness_set_cbor: bytes
    audit_id: str


class SignerClient(Protocol):
    async def identity(self) -> SignerIdentity: ...
    async def sign_burn(self, tx_cbor: bytes, generation_ids: Sequence[str], *, request_id: str,
                        current_slot: int) -> Signature: ...
    async def close(self) -> None: ...


_MODES = {signer_pb2.SINK_MODE_MINT: "mint", signer_pb2.SINK_MODE_ADDRESS: "address"}


def _identity(m: signer_pb2.Identity) -> SignerIdentity:
    c = m.caps
    caps = SignerCaps(c.max_fee_lovelace, c.max_sink_lovelace, c.max_tokens_per_tx, c.max_tokens_per_day,
                      c.max_ttl_slots, c.max_generation_ids, c.max_lovelace_per_day, c.min_fee_a, c.min_fee_b,
                      c.fee_margin_lovelace, c.slot_tolerance)
    return SignerIdentity(m.custodial_address, m.payment_key_hash, m.policy_id, bytes(m.policy_script_cbor),
                          m.asset.policy_id, m.asset.asset_name, _MODES.get(m.sink_mode, "mint"), m.sink_address,
                          m.network_id, caps, m.tokens_signed_today, m.clock_slot)


def _translate(exc: grpc.aio.AioRpcError) -> SignerError:
    code = exc.code()
    if code == grpc.StatusCode.PERMISSION_DENIED:
        trailer: Any = exc.trailing_metadata() or ()
        for key, raw in trailer:
            if key == REFUSAL_KEY and isinstance(raw, bytes):
                refusal = signer_pb2.Refusal.FromString(raw)
                return SignerRefusal(signer_pb2.RefusalReason.Name(refusal.reason), refusal.detail, refusal.audit_id)
        reason, _, detail = (exc.details() or "").partition(": ")
        return SignerRefusal(reason or "UNSPECIFIED", detail)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
                grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
        return SignerUnavailable(f"the signer did not answer: {code.name} {exc.details()}")
    return SignerRejected(code.name, exc.details() or "")


class GrpcSigner:
    """``SignerClient`` over gRPC; the channel is opened on first use (it belongs to the serving loop)."""

    def __init__(self, target: str, *, timeout_s: float = 10.0, tls: TlsFiles | None = None) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.tls = tls
        self._channel: grpc.aio.Channel | None = None
        self._stub_cache: Any = None

    @property
    def _stub(self) -> Any:
        if self._stub_cache is None:
            self._channel = open_channel(self.target, self.tls)
            self._stub_cache = signer_pb2_grpc.SignerServiceStub(self._channel)
        return self._stub_cache

    async def identity(self) -> SignerIdentity:
        try:
            answer = await self._stub.GetIdentity(signer_pb2.GetIdentityRequest(), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        return _identity(answer)

    async def sign_burn(self, tx_cbor: bytes, generation_ids: Sequence[str], *, request_id: str,
                        current_slot: int) -> Signature:
        request = signer_pb2.SignTransactionRequest(
            tx_cbor=tx_cbor, purpose=signer_pb2.PURPOSE_BURN_BATCH, generation_ids=list(generation_ids),
            request_id=request_id, current_slot=current_slot)
        try:
            answer = await self._stub.SignTransaction(request, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        return Signature(answer.tx_id, bytes(answer.witness_set_cbor), answer.audit_id)

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel, self._stub_cache = self._channel, None, None
            await channel.close(None)
