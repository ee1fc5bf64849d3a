"""ChainService: parse and validate the request, call the chain layer, map errors to gRPC status codes.

Every failure leaves as a status code with a message (never UNKNOWN): bad input INVALID_ARGUMENT, unknown
tx NOT_FOUND, upstream down UNAVAILABLE, ledger refusal FAILED_PRECONDITION with a serialized LedgerError
in the ``creatorpass-ledger-error-bin`` trailing metadata.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
import orjson

from common.cardano import AssetId, validate_tx_id
from common.logging import get_logger
from common.rpc.creatorpass.v1 import chain_pb2, chain_pb2_grpc, common_pb2
from indexer import metrics
from indexer.address import validate_address
from indexer.convert import indexed_transaction, ledger_reason, tip_message, tx_status_message
from indexer.errors import (
    IndexerError,
    InvalidArgument,
    KupoHttpError,
    KupoUnavailable,
    NotFound,
    OgmiosRpcError,
    OgmiosTimeout,
    OgmiosUnavailable,
    ResponseTooLarge,
)
from indexer.follower import Follower
from indexer.queries import ChainQueries
from indexer.status import StatusTracker
from indexer.store import Store

__all__ = ["LEDGER_ERROR_KEY", "ChainServicer"]

log = get_logger(__name__)
LEDGER_ERROR_KEY = "creatorpass-ledger-error-bin"
_R = TypeVar("_R")
Handler = Callable[..., Awaitable[_R]]


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, method: str,  # type: ignore[type-arg]
                 started: float) -> NoReturn:
    code, message, trailer = _status_for(exc, method)
    metrics.GRPC_LATENCY.labels(method=method, code=code.name).observe(time.perf_counter() - started)
    if code == grpc.StatusCode.INTERNAL:
        log.error("rpc_failed", method=method, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
    await context.abort(code, message, trailing_metadata=trailer)
    raise AssertionError("unreachable")


def _status_for(exc: Exception, method: str) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    if isinstance(exc, InvalidArgument):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc), ()
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc), ()
    if isinstance(exc, OgmiosRpcError):
        if exc.code == -32602:
            return grpc.StatusCode.INVALID_ARGUMENT, f"Ogmios refused the request: {exc.message}", ()
        if exc.is_ledger_refusal:
            reason = ledger_reason(exc.code, exc.message, exc.data)
            error = chain_pb2.LedgerError(code=exc.code, message=exc.message, reason=reason,
                                          data_json=orjson.dumps(exc.data).decode() if exc.data is not None else "")
            return (grpc.StatusCode.FAILED_PRECONDITION, f"ledger refused the transaction ({exc.code}): {reason}",
                    ((LEDGER_ERROR_KEY, error.SerializeToString()),))
        if 2000 <= exc.code < 3000:
            return grpc.StatusCode.UNAVAILABLE, f"ledger state query failed, retry: {exc.message}", ()
        return grpc.StatusCode.INTERNAL, f"Ogmios error {exc.code}: {exc.message}", ()
    if isinstance(exc, OgmiosTimeout) and method == "SubmitTransaction":
        return grpc.StatusCode.DEADLINE_EXCEEDED, f"{exc}; the transaction may or may not have been accepted", ()
    if isinstance(exc, OgmiosUnavailable | OgmiosTimeout | KupoUnavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc), ()
    if isinstance(exc, KupoHttpError) and exc.status == 400:
        return grpc.StatusCode.INVALID_ARGUMENT, f"Kupo refused the query: {exc.hint}", ()
    if isinstance(exc, ResponseTooLarge):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), ()
    if isinstance(exc, OverflowError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), ()
    if isinstance(exc, IndexerError):
        return grpc.StatusCode.INTERNAL, str(exc), ()
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})", ()


def _unary(method: str) -> Callable[[Handler[_R]], Handler[_R]]:
    def decorate(fn: Handler[_R]) -> Handler[_R]:
        @functools.wraps(fn)
        async def wrapper(self: ChainServicer, request: Any, context: grpc.aio.ServicerContext) -> _R:  # type: ignore[type-arg]
            started = time.perf_counter()
            try:
                result = await fn(self, request, context)
            except Exception as exc:
                await _abort(context, exc, method, started)
            metrics.GRPC_LATENCY.labels(method=method, code="OK").observe(time.perf_counter() - started)
            return result
        return wrapper
    return decorate


def _tx_id(value: str, what: str = "tx_id") -> str:
    try:
        return validate_tx_id(value)
    except ValueError as exc:
        raise InvalidArgument(f"{what}: {exc}") from None


def _asset(message: common_pb2.AssetId) -> AssetId:
    try:
        return AssetId(message.policy_id, message.asset_name)
    except ValueError as exc:
        raise InvalidArgument(f"asset: {exc}") from None


class ChainServicer(chain_pb2_grpc.ChainServiceServicer):
    def __init__(self, *, store: Store, follower: Follower, tracker: StatusTracker, queries: ChainQueries,
                 network: str, max_ids: int = 256, max_tx_bytes: int = 16 * 1024) -> None:
        self.store = store
        self.follower = follower
        self.tracker = tracker
        self.queries = queries
        self.network = network
        self.max_ids = max_ids
        self.max_tx_bytes = max_tx_bytes

    def _address(self, value: str) -> str:
        try:
            validate_address(value, self.network)
        except ValueError as exc:
            raise InvalidArgument(f"address: {exc}") from None
        return value

    def _ids(self, values: Any) -> list[str]:
        if not values:
            raise InvalidArgument("tx_ids: at least one transaction id is required")
        if len(values) > self.max_ids:
            raise InvalidArgument(f"tx_ids: at most {self.max_ids} ids per request, got {len(values)}")
        return [_tx_id(v, f"tx_ids[{i}]") for i, v in enumerate(values)]

    @_unary("GetTip")
    async def GetTip(self, request: chain_pb2.GetTipRequest, context: Any) -> chain_pb2.GetTipResponse:
        tip, node = self.follower.tip, self.follower.node_tip
        progress = 0.0
        if tip is not None and node is not None:
            progress = 1.0 if tip.slot >= node.slot or not node.slot else tip.slot / node.slot
        return chain_pb2.GetTipResponse(indexer_tip=tip_message(tip), node_tip=tip_message(node),
                                        sync_progress=progress, connected=self.follower.connected)

    @_unary("GetProtocolParameters")
    async def GetProtocolParameters(self, request: chain_pb2.GetProtocolParametersRequest,
                                    context: Any) -> chain_pb2.ProtocolParameters:
        return await self.queries.protocol_parameters()

    @_unary("GetUtxos")
    async def GetUtxos(self, request: chain_pb2.GetUtxosRequest, context: Any) -> chain_pb2.GetUtxosResponse:
        asset = _asset(request.asset) if request.HasField("asset") else None
        selector = request.WhichOneof("selector")
        if selector == "address":
            return await self.queries.utxos_at(self._address(request.address), asset)
        if selector != "out_refs":
            raise InvalidArgument("set either address or out_refs")
        refs = request.out_refs.out_refs
        if not refs:
            raise InvalidArgument("out_refs: at least one output reference is required")
        if len(refs) > self.max_ids:
            raise InvalidArgument(f"out_refs: at most {self.max_ids} output references, got {len(refs)}")
        parsed = [(_tx_id(r.tx_id, f"out_refs[{i}].tx_id"), r.index) for i, r in enumerate(refs)]
        return await self.queries.utxos_by_refs(parsed, asset)

    @_unary("GetAssetBalance")
    async def GetAssetBalance(self, request: chain_pb2.GetAssetBalanceRequest,
                              context: Any) -> chain_pb2.GetAssetBalanceResponse:
        asset = _asset(request.asset) if request.HasField("asset") else None
        return await self.queries.balance(self._address(request.address), asset)

    @_unary("SubmitTransaction")
    async def SubmitTransaction(self, request: chain_pb2.SubmitTransactionRequest,
                                context: Any) -> chain_pb2.SubmitTransactionResponse:
        if not request.tx_cbor:
            raise InvalidArgument("tx_cbor: empty transaction")
        if len(request.tx_cbor) > self.max_tx_bytes:
            raise InvalidArgument(f"tx_cbor: {len(request.tx_cbor)} bytes, at most {self.max_tx_bytes} accepted")
        tx_id = await self.queries.submit(request.tx_cbor)
        await self.store.write(self.store.record_submitted, tx_id)
        self.follower.relevance.submitted.add(tx_id)
        self.tracker.mempool_changed()
        log.info("tx_submitted", tx_id=tx_id, size_bytes=len(request.tx_cbor))
        return chain_pb2.SubmitTransactionResponse(tx_id=tx_id)

    @_unary("GetTransactionStatus")
    async def GetTransactionStatus(self, request: chain_pb2.GetTransactionStatusRequest,
                                   context: Any) -> chain_pb2.TransactionStatus:
        status = await self.tracker.status(_tx_id(request.tx_id))
        return tx_status_message(status, self.follower.tip)

    @_unary("GetTransaction")
    async def GetTransaction(self, request: chain_pb2.GetTransactionRequest,
                             context: Any) -> chain_pb2.IndexedTransaction:
        tx_id = _tx_id(request.tx_id)
        detail = self.store.tx_detail(tx_id)
        if detail is None and not self.store.is_submitted(tx_id):
            raise NotFound(f"transaction {tx_id} is not one the indexer records "
                           "(GetTransactionStatus answers for any transaction)")
        status = tx_status_message(await self.tracker.status(tx_id), self.follower.tip)
        return indexed_transaction(tx_id, detail, status)

    async def WatchTransactions(self, request: chain_pb2.WatchTransactionsRequest,
                                context: Any) -> AsyncIterator[chain_pb2.TransactionStatus]:
        started = time.perf_counter()
        try:
            ids = self._ids(list(request.tx_ids))
            async for status in self.tracker.watch(ids, request.until_depth):
                yield tx_status_message(status, self.follower.tip)
        except Exception as exc:
            await _abort(context, exc, "WatchTransactions", started)
