"""The gateway's road to the chain: the indexer's ``ChainService`` behind a ``Chain`` Protocol.

General on purpose (the wallet path and the burner both use it): plain dataclasses in, plain
dataclasses out, no protobuf outside this module. ``GrpcChain`` is the real implementation; tests
may provide another. Errors: ``ChainUnavailable`` (503: indexer or node down; idempotent calls are
retried first), ``LedgerRefusal`` (the ledger refused a submission: code, reason, data), ``TxNotFound``,
``ChainError`` (502: anything else the indexer answered).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from common.cardano import AssetId, Value
from common.grpcutil import call_idempotent, open_channel
from common.rpc.creatorpass.v1 import chain_pb2, chain_pb2_grpc, common_pb2
from gateway.web3.errors import ChainError, ChainUnavailable

__all__ = [
    "LEDGER_ERROR_KEY",
    "AssetBalance",
    "Chain",
    "ChainTip",
    "ChainTx",
    "GrpcChain",
    "LedgerRefusal",
    "ProtocolParams",
    "TxNotFound",
    "TxOutput",
    "TxState",
    "TxStatus",
    "Utxo",
]

LEDGER_ERROR_KEY = "creatorpass-ledger-error-bin"


class TxState:
    UNKNOWN, MEMPOOL, CONFIRMED, ROLLED_BACK = "unknown", "mempool", "confirmed", "rolled_back"


_STATE = {
    chain_pb2.TransactionStatus.STATE_UNKNOWN: TxState.UNKNOWN,
    chain_pb2.TransactionStatus.STATE_MEMPOOL: TxState.MEMPOOL,
    chain_pb2.TransactionStatus.STATE_CONFIRMED: TxState.CONFIRMED,
    chain_pb2.TransactionStatus.STATE_ROLLED_BACK: TxState.ROLLED_BACK,
}


class LedgerRefusal(Exception):
    """The ledger refused a transaction (Ogmios 3000-3999)."""

    def __init__(self, code: int, reason: str, message: str = "", data: Any = None) -> None:
        super().__init__(f"ledger refused the transaction ({code}): {reason}")
        self.code, self.reason, self.message, self.data = code, reason, message, data


class TxNotFound(Exception):
    """The indexer does not record this transaction."""


@dataclass(frozen=True)
class ChainTip:
    slot: int
    height: int
    block_id: str
    node_slot: int = 0
    connected: bool = True


@dataclass(frozen=True)
class ProtocolParams:
    epoch: int
    min_fee_a: int
    min_fee_b: int
    coins_per_utxo_byte: int
    max_tx_size: int
    max_value_size: int


@dataclass(frozen=True)
class Utxo:
    tx_id: str
    index: int
    address: str
    value: Value
    has_datum: bool = False
    has_script_ref: bool = False


@dataclass(frozen=True)
class AssetBalance:
    lovelace: int
    quantity: int
    value: Value
    utxo_count: int


@dataclass(frozen=True)
class TxStatus:
    tx_id: str
    state: str
    depth: int = 0
    block_slot: int = 0
    block_height: int = 0
    tip_slot: int = 0
    tip_height: int = 0


@dataclass(frozen=True)
class TxOutput:
    index: int
    address: str
    value: Value


@dataclass(frozen=True)
class ChainTx:
    tx_id: str
    block_slot: int
    block_height: int
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[TxOutput, ...]
    mint: dict[AssetId, int]
    fee: int
    metadata: dict[str, Any] = field(default_factory=dict)  # Ogmios labels: {"674": {"json": …}, …}
    invalid_before: int = 0
    invalid_hereafter: int = 0
    status: TxStatus | None = None

    def label_json(self, label: int) -> Any:
        entry = self.metadata.get(str(label))
        return entry.get("json") if isinstance(entry, dict) else None


class Chain(Protocol):
    async def tip(self) -> ChainTip: ...
    async def protocol_params(self) -> ProtocolParams: ...
    async def utxos_at(self, address: str, asset: AssetId | None = None) -> list[Utxo]: ...
    async def utxos_by_ref(self, out_refs: Sequence[tuple[str, int]]) -> list[Utxo]: ...
    async def balance(self, address: str, asset: AssetId | None = None) -> AssetBalance: ...
    async def submit(self, tx_cbor: bytes) -> str: ...
    async def tx_status(self, tx_id: str) -> TxStatus: ...
    def watch(self, tx_ids: Sequence[str], until_depth: int = 0) -> AsyncIterator[TxStatus]: ...
    async def transaction(self, tx_id: str) -> ChainTx: ...
    async def close(self) -> None: ...


def _value(message: common_pb2.Value) -> Value:
    assets: dict[AssetId, int] = {}
    for amount in message.assets:
        asset = AssetId(amount.asset.policy_id, amount.asset.asset_name)
        assets[asset] = assets.get(asset, 0) + amount.quantity
    return Value(message.lovelace, assets)


def _utxo(message: common_pb2.Utxo) -> Utxo:
    return Utxo(message.out_ref.tx_id, message.out_ref.index, message.address, _value(message.value),
                bool(message.datum_hash or message.inline_datum), bool(message.script_ref))


def _status(message: chain_pb2.TransactionStatus) -> TxStatus:
    return TxStatus(message.tx_id, _STATE.get(message.state, TxState.UNKNOWN), message.depth, message.block.slot,
                    message.block_height, message.tip.slot, message.tip.height)


def _asset(asset: AssetId | None) -> common_pb2.AssetId | None:
    return None if asset is None else common_pb2.AssetId(policy_id=asset.policy_id, asset_name=asset.asset_name)


def _chain_tx(message: chain_pb2.IndexedTransaction) -> ChainTx:
    try:
        metadata = json.loads(message.metadata_json) if message.metadata_json else {}
    except ValueError:
        metadata = {}
    return ChainTx(
        tx_id=message.tx_id, block_slot=message.block.slot, block_height=message.block_height,
        inputs=tuple((r.tx_id, r.index) for r in message.inputs),
        outputs=tuple(TxOutput(o.index, o.address, _value(o.value)) for o in message.outputs),
        mint={AssetId(d.asset.policy_id, d.asset.asset_name): d.quantity for d in message.mint},
        fee=message.fee, metadata=metadata if isinstance(metadata, dict) else {},
        invalid_before=message.invalid_before, invalid_hereafter=message.invalid_hereafter,
        status=_status(message.status) if message.HasField("status") else None,
    )


def _translate(exc: grpc.aio.AioRpcError, what: str) -> Exception:
    code = exc.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ChainUnavailable(f"the indexer could not {what}: {exc.details()}", retry_after_s=2)
    if code == grpc.StatusCode.NOT_FOUND:
        return TxNotFound(exc.details() or "")
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        trailer: Any = exc.trailing_metadata() or ()
        for key, raw in trailer:
            if key == LEDGER_ERROR_KEY and isinstance(raw, bytes):
                error = chain_pb2.LedgerError.FromString(raw)
                try:
                    data = json.loads(error.data_json) if error.data_json else None
                except ValueError:
                    data = None
                return LedgerRefusal(error.code, error.reason or error.message, error.message, data)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ChainError(f"the indexer refused the request: {exc.details()}", code="chain_invalid_argument")
    return ChainError(f"the indexer could not {what}: {code.name} {exc.details()}")


class GrpcChain:
    """``Chain`` over the indexer's gRPC API; idempotent queries retry UNAVAILABLE, submit never does."""

    def __init__(self, target: str, *, timeout_s: float = 10.0, submit_timeout_s: float = 40.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.submit_timeout_s = submit_timeout_s
        self._channel: grpc.aio.Channel | None = None
        self._stub_cache: Any = None  # the generated stub is typed for the sync API

    @property
    def _stub(self) -> Any:
        # Opened on first use: a grpc.aio channel belongs to the event loop it was created on, and the
        # app serves on its own loop (not the one that built it).
        if self._stub_cache is None:
            self._channel = open_channel(self.target)
            self._stub_cache = chain_pb2_grpc.ChainServiceStub(self._channel)
        return self._stub_cache

    async def _query(self, method: Any, request: Any, what: str) -> Any:
        try:
            return await call_idempotent(method, request, timeout_s=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, what) from None

    async def tip(self) -> ChainTip:
        answer = await self._query(self._stub.GetTip, chain_pb2.GetTipRequest(), "read the tip")
        tip = answer.indexer_tip
        return ChainTip(tip.slot, tip.height, tip.block_id, answer.node_tip.slot, answer.connected)

    async def protocol_params(self) -> ProtocolParams:
        p = await self._query(self._stub.GetProtocolParameters, chain_pb2.GetProtocolParametersRequest(),
                              "read the protocol parameters")
        return ProtocolParams(p.epoch, p.min_fee_coefficient, p.min_fee_constant, p.coins_per_utxo_byte,
                              p.max_transaction_size, p.max_value_size)

    async def utxos_at(self, address: str, asset: AssetId | None = None) -> list[Utxo]:
        request = chain_pb2.GetUtxosRequest(address=address, asset=_asset(asset))
        answer = await self._query(self._stub.GetUtxos, request, "list UTxOs")
        return [_utxo(u) for u in answer.utxos]

    async def utxos_by_ref(self, out_refs: Sequence[tuple[str, int]]) -> list[Utxo]:
        refs = chain_pb2.OutRefList(out_refs=[common_pb2.OutRef(tx_id=t, index=i) for t, i in out_refs])
        answer = await self._query(self._stub.GetUtxos, chain_pb2.GetUtxosRequest(out_refs=refs), "look up UTxOs")
        return [_utxo(u) for u in answer.utxos]

    async def balance(self, address: str, asset: AssetId | None = None) -> AssetBalance:
        request = chain_pb2.GetAssetBalanceRequest(address=address, asset=_asset(asset))
        b = await self._query(self._stub.GetAssetBalance, request, "read the balance")
        return AssetBalance(b.lovelace, b.quantity, _value(b.value), b.utxo_count)

    async def submit(self, tx_cbor: bytes) -> str:
        request = chain_pb2.SubmitTransactionRequest(tx_cbor=tx_cbor)
        try:
            answer = await self._stub.SubmitTransaction(request, timeout=self.submit_timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "submit the transaction") from None
        return str(answer.tx_id)

    async def tx_status(self, tx_id: str) -> TxStatus:
        request = chain_pb2.GetTransactionStatusRequest(tx_id=tx_id)
        return _status(await self._query(self._stub.GetTransactionStatus, request, "read the tx status"))

    async def watch(self, tx_ids: Sequence[str], until_depth: int = 0) -> AsyncIterator[TxStatus]:
        request = chain_pb2.WatchTransactionsRequest(tx_ids=list(tx_ids), until_depth=until_depth)
        call = self._stub.WatchTransactions(request)
        try:
            async for message in call:
                yield _status(message)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "watch transactions") from None
        finally:
            call.cancel()

    async def transaction(self, tx_id: str) -> ChainTx:
        request = chain_pb2.GetTransactionRequest(tx_id=tx_id)
        return _chain_tx(await self._query(self._stub.GetTransaction, request, "read the transaction"))

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel, self._stub_cache = self._channel, None, None
            await channel.close(None)
