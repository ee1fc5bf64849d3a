"""The gRPC face of the signer: SignerService over a unix socket or mutual TLS.

Refusals are PERMISSION_DENIED with a readable message and, in the trailing metadata key
``creatorpass-refusal-bin``, a serialized ``Refusal`` (reason, detail, audit id). Malformed requests are
INVALID_ARGUMENT; a signer that cannot write its state or audit log answers UNAVAILABLE. Every refusal
is audited, the transport's own pre-checks (request size, id count, a caller not allowed) included.

Who asked: on a unix socket the kernel's peer credentials (uid, gid, pid, via ``signer.transport``) and
the socket it came through; under mTLS the client certificate's full subject and SHA-256 fingerprint,
which must match ``SIGNER_TLS_ALLOWED_CLIENTS``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from common.logging import get_logger
from common.rpc.creatorpass.v1 import common_pb2, signer_pb2, signer_pb2_grpc
from signer.batcher import Batcher, QueueFull
from signer.certs import ClientIdentity, client_identity
from signer.core import (
    MAIN_ENDPOINT,
    BurnRequest,
    Denied,
    Failed,
    MintRequest,
    Outcome,
    PreRefused,
    Request,
    Signed,
    SignerCore,
)
from signer.transport import PeerCredRelay
from signer.tx import MAX_TX_BYTES

__all__ = ["REFUSAL_METADATA_KEY", "Caller", "SignerServicer", "caller_of"]

REFUSAL_METADATA_KEY = "creatorpass-refusal-bin"
log = get_logger("signer.server")

DECISIONS = Counter("creatorpass_signer_decisions_total", "Signing decisions", ["kind", "decision", "reason"])
TOKENS = Counter("creatorpass_signer_tokens_signed_total", "$CREATE units in signed burns and ceremonies", ["kind"])
LATENCY = Histogram("creatorpass_signer_request_seconds", "Time from request to decision",
                    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0))


class Caller:
    """The transport's word on who asked: a short name, the audit's ``peer`` fields, the endpoint, and
    why the caller is refused outright (empty when it may ask)."""

    __slots__ = ("endpoint", "name", "peer", "refusal")

    def __init__(self, name: str, peer: dict[str, Any], endpoint: str = MAIN_ENDPOINT, refusal: str = "") -> None:
        self.name = name
        self.peer = peer
        self.endpoint = endpoint
        self.refusal = refusal


def caller_of(context: grpc.aio.ServicerContext[Any, Any], relay: PeerCredRelay | None,
              allowed_clients: Sequence[str] = ()) -> Caller:
    """Identify the caller of ``context`` (see the module docstring)."""
    if relay is not None:
        peer = relay.peer_of(str(context.peer()))
        if peer is None:
            return Caller(str(context.peer()), {"transport": "unix"}, MAIN_ENDPOINT,
                          "the connection did not come through the signer's public socket")
        return Caller(f"uid:{peer.uid} pid:{peer.pid}", peer.audit(), peer.endpoint)
    pem = list(context.auth_context().get("x509_pem_cert") or [])
    if not pem:
        return Caller(str(context.peer()), {"transport": "tcp"}, MAIN_ENDPOINT, "no client certificate")
    ident: ClientIdentity = client_identity(bytes(pem[0]))
    peer_fields = {"transport": "mtls", "subject": ident.subject, "cert_sha256": ident.sha256,
                   "address": str(context.peer())[:100]}
    refusal = "" if ident.allowed_by(allowed_clients) else (
        f"client certificate {ident.subject} (sha256 {ident.sha256}) is not on SIGNER_TLS_ALLOWED_CLIENTS")
    return Caller(f"cn:{ident.common_name}" if ident.common_name else ident.subject, peer_fields, MAIN_ENDPOINT,
                  refusal)


class SignerServicer(signer_pb2_grpc.SignerServiceServicer):
    """Every request passes here, so the per-request work is kept small: the logger is bound once (after
    logging is configured), metric children are looked up once, and without TLS there are no certificates
    to read."""

    def __init__(self, core: SignerCore, batcher: Batcher, *, relay: PeerCredRelay | None = None,
                 allowed_clients: Sequence[str] = ()) -> None:
        self.core = core
        self.batcher = batcher
        self.relay = relay
        self.allowed_clients = tuple(allowed_clients)
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
                                 max_ttl_slots=caps.max_ttl_slots, max_generation_ids=caps.max_generation_ids,
                                 max_lovelace_per_day=caps.max_lovelace_per_day, min_fee_a=caps.min_fee_a,
                                 min_fee_b=caps.min_fee_b, fee_margin_lovelace=caps.fee_margin_lovelace,
                                 coins_per_utxo_byte=caps.coins_per_utxo_byte,
                                 slot_tolerance=policy.clock.tolerance if policy.clock else 0),
            key_store=ident.key_store, mint_ceremony_enabled=self.core.mint_ceremony_enabled,
            tokens_signed_today=(today := self.core.today()).tokens, lovelace_spent_today=today.lovelace,
            clock_slot=self.core.clock_slot())

    async def SignTransaction(self, request: signer_pb2.SignTransactionRequest,
                              context: grpc.aio.ServicerContext[Any, Any]) -> signer_pb2.SignTransactionResponse:
        caller = caller_of(context, self.relay, self.allowed_clients)
        ids = len(request.generation_ids)
        summary = {"tx_bytes": len(request.tx_cbor), "generation_ids": ids, "request_id": request.request_id[:200],
                   "current_slot": request.current_slot, "purpose": int(request.purpose)}
        early = self._pre_check("burn", caller, summary, len(request.tx_cbor))
        if early is None and ids > max(self.core.policy.caps.max_generation_ids, 1) * 4:
            early = PreRefused("burn", "INVALID_ARGUMENT", f"{ids} generation ids: far too many",
                               summary, caller.name, caller.peer)
        if early is not None:
            return await self._answer("burn", early, context)
        burn = BurnRequest(tx_cbor=request.tx_cbor, purpose=int(request.purpose),
                           generation_ids=tuple(request.generation_ids), request_id=request.request_id,
                           current_slot=request.current_slot, caller=caller.name, peer=caller.peer,
                           endpoint=caller.endpoint)
        return await self._answer("burn", burn, context)

    async def SignMintCeremony(self, request: signer_pb2.SignMintCeremonyRequest,
                               context: grpc.aio.ServicerContext[Any, Any]) -> signer_pb2.SignTransactionResponse:
        caller = caller_of(context, self.relay, self.allowed_clients)
        summary = {"tx_bytes": len(request.tx_cbor), "quantity": request.quantity,
                   "operator_note": request.operator_note[:256], "current_slot": request.current_slot}
        early = self._pre_check("mint", caller, summary, len(request.tx_cbor))
        if early is not None:
            return await self._answer("mint", early, context)
        mint = MintRequest(tx_cbor=request.tx_cbor, quantity=request.quantity, operator_note=request.operator_note,
                           current_slot=request.current_slot, caller=caller.name, peer=caller.peer,
                           endpoint=caller.endpoint)
        return await self._answer("mint", mint, context)

    @staticmethod
    def _pre_check(kind: str, caller: Caller, summary: dict[str, Any], tx_bytes: int) -> PreRefused | None:
        """Refusals decided before the request is read: they keep only its summary, and are audited."""
        if caller.refusal:
            return PreRefused(kind, "CALLER_NOT_ALLOWED", caller.refusal, summary, caller.name, caller.peer)
        if tx_bytes > MAX_TX_BYTES:
            return PreRefused(kind, "INVALID_ARGUMENT", f"tx_cbor is {tx_bytes} bytes; the limit is {MAX_TX_BYTES}",
                              summary, caller.name, caller.peer)
        return None

    async def _answer(self, kind: str, request: Request,
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
