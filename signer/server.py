"""The gRPC face of the signer: SignerService over a unix socket or mutual TLS.

Refusals are PERMISSION_DENIED with a readable message and, in the trailing metadata key
``creatorpass-refusal-bin``, a serialized ``Refusal`` (reason, detail, audit id). Malformed requests are
INVALID_ARGUMENT (also audited); a signer that cannot write its state or audit log answers UNAVAILABLE.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from common.logging import get_logger
from common.rpc.creatorpass.v1 import common_pb2, signer_pb2, signer_pb2_grpc
from signer.batcher import Batcher, QueueFull
from signer.core import BurnRequest, Denied, Failed, MintRequest, Outcome, Signed, SignerCore
from signer.tx import MAX_TX_BYTES

__all__ = ["REFUSAL_METADATA_KEY", "SignerServicer", "caller_of"]

REFUSAL_METADATA_KEY = "creatorpass-refusal-bin"
log = get_logger("signer.server")

DECISIONS = Counter("creatorpass_signer_decisions_total", "Signing decisions", ["kind", "decision", "reason"])
TOKENS = Counter("creatorpass_signer_tokens_signed_total", "$CREATE units in signed burns and ceremonies", ["kind"])
LATENCY = Histogram("creatorpass_signer_request_seconds", "Time from request to decision",
                    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0))


def caller_of(context: grpc.aio.ServicerContext[Any, Any], tls: bool = True) -> str:
    """Who asked: the client certificate's common name under mTLS, else the transport peer."""
    if tls:
        auth = context.auth_context()
        names = list(auth.get("x509_common_name") or auth.get("x509_subject_alternative_name") or [])
        if names:
            return "cn:" + bytes(names[0]).decode(errors="replace")
    return str(context.peer())


class SignerServicer(signer_pb2_grpc.SignerServiceServicer):
    """Every request passes here, so the per-request work is kept small: the logger is bound once (after
    logging is configured), metric children are looked up once, and without TLS there are no certificates
    to read."""

    def __init__(self, core: SignerCore, batcher: Batcher, *, tls: bool = True) -> None:
        self.core = core
        self.batcher = batcher
        self.tls = tls
        self._log = log.bind()  # a lazy proxy would rebuild the logger on every call
        self._allowed = {kind: DECISIONS.labels(kind, "allow", "") for kind in ("burn", "mint")}
        self._tokens = {kind: TOKENS.labels(kind) for kind in ("burn", "mint")}

    async def GetIdentity(self, request: signer_pb2.GetIdentityRequest,
                          context: grpc.aio.ServicerContext[Any, Any]) -> signer_pb2.Identity:
        ident, policy = self.core.identity, self.core.policy
        caps = policy.caps
        return signer_pb2.Identity(
            custodial_address=ident.custodial_address, payment_key_hash=policy.payment_key_hash.hex(),
            policy_key_hash=policy.policy_key_hash.hex() if policy.policy_key_hash else "",
            policy_id=policy.policy_id.hex(), policy_script_cbor=ident.policy_script_cbor,
            asset=common_pb2.AssetId(policy_id=policy.policy_id.hex(), asset_name=policy.asset_name.hex()),
            sink_mode=signer_pb2.SINK_MODE_MINT if policy.sink_mode == "mint" else signer_pb2.SINK_MODE_ADDRESS,
            sink_address=ident.sink_address, network_id=policy.network_id,
            caps=signer_pb2.Caps(max_fee_lovelace=caps.max_fee_lovelace, max_sink_lovelace=caps.max_sink_lovelace,
                                 max_tokens_per_tx=caps.max_tokens_per_tx, max_tokens_per_day=caps.max_tokens_per_day,
                                 max_ttl_slots=caps.max_ttl_slots, max_generation_ids=caps.max_generation_ids),
            key_store=ident.key_store, mint_ceremony_enabled=self.core.mint_ceremony_enabled,
            tokens_signed_today=self.core.tokens_signed_today())

    async def SignTransaction(self, request: signer_pb2.SignTransactionRequest,
                              context: grpc.aio.ServicerContext[Any, Any]) -> signer_pb2.SignTransactionResponse:
        await self._check_size(request.tx_cbor, context)
        if len(request.generation_ids) > max(self.core.policy.caps.max_generation_ids, 1) * 4:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "far too many generation ids")
        burn = BurnRequest(tx_cbor=request.tx_cbor, purpose=int(request.purpose),
                           generation_ids=tuple(request.generation_ids), request_id=request.request_id,
                           current_slot=request.current_slot, caller=caller_of(context, self.tls))
        return await self._answer("burn", burn, context)

    async def SignMintCeremony(self, request: signer_pb2.SignMintCeremonyRequest,
                               context: grpc.aio.ServicerContext[Any, Any]) -> signer_pb2.SignTransactionResponse:
        await self._check_size(request.tx_cbor, context)
        mint = MintRequest(tx_cbor=request.tx_cbor, quantity=request.quantity, operator_note=request.operator_note,
                           current_slot=request.current_slot, caller=caller_of(context, self.tls))
        return await self._answer("mint", mint, context)

    async def _check_size(self, tx_cbor: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if len(tx_cbor) > MAX_TX_BYTES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"tx_cbor is {len(tx_cbor)} bytes; the limit is {MAX_TX_BYTES}")

    async def _answer(self, kind: str, request: BurnRequest | MintRequest,
                      context: grpc.aio.ServicerContext[Any, Any]) -> signer_pb2.SignTransactionResponse:
        start = time.perf_counter()
        try:
            outcome: Outcome = await self.batcher.submit(request)
        except QueueFull as exc:
            LATENCY.observe(time.perf_counter() - start)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        LATENCY.observe(time.perf_counter() - start)
        if isinstance(outcome, Signed):
            self._allowed[kind].inc()
            if not outcome.replay:
                self._tokens[kind].inc(outcome.tokens)
            self._log.debug("signed", kind=kind, tx_id=outcome.tx_id, tokens=outcome.tokens, replay=outcome.replay,
                            audit_id=outcome.audit_id)
            return signer_pb2.SignTransactionResponse(tx_id=outcome.tx_id, witness_set_cbor=outcome.witness_set_cbor,
                                                      audit_id=outcome.audit_id)
        if isinstance(outcome, Failed):
            DECISIONS.labels(kind, "error", "").inc()
            self._log.error("sign_failed", kind=kind, detail=outcome.detail)
            await context.abort(grpc.StatusCode.UNAVAILABLE, outcome.detail)
        assert isinstance(outcome, Denied)
        return await self._deny(kind, outcome, context)

    async def _deny(self, kind: str, outcome: Denied,
                    context: grpc.aio.ServicerContext[Any, Any]) -> signer_pb2.SignTransactionResponse:
        DECISIONS.labels(kind, "invalid" if outcome.invalid else "deny", outcome.reason).inc()
        self._log.warning("refused", kind=kind, reason=outcome.reason, detail=outcome.detail, audit_id=outcome.audit_id)
        if outcome.invalid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, outcome.detail)
        refusal = signer_pb2.Refusal(reason=signer_pb2.RefusalReason.Value(outcome.reason), detail=outcome.detail,
                                     audit_id=outcome.audit_id)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{outcome.reason}: {outcome.detail}",
                            ((REFUSAL_METADATA_KEY, refusal.SerializeToString()),))
        raise AssertionError("unreachable")
