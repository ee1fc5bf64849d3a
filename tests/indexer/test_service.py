"""Error mapping: every failure leaves as a gRPC status with a message, ledger refusals with a LedgerError."""

from __future__ import annotations

import grpc
import pytest

from common.rpc.creatorpass.v1 import chain_pb2
from indexer.convert import ledger_reason
from indexer.errors import (
    InvalidArgument,
    KupoHttpError,
    KupoUnavailable,
    NotFound,
    OgmiosRpcError,
    OgmiosTimeout,
    OgmiosUnavailable,
    ResponseTooLarge,
)
from indexer.service import LEDGER_ERROR_KEY, _status_for
from tests.indexer.fakes import vector


def test_every_reference_submit_error_maps_to_a_typed_status() -> None:
    for index in range(200):
        error = vector("SubmitTransactionResponse", index).get("error")
        if error is None:
            continue
        exc = OgmiosRpcError("submitTransaction", error["code"], error["message"], error.get("data"))
        code, message, trailer = _status_for(exc, "SubmitTransaction")
        assert code != grpc.StatusCode.UNKNOWN and message
        if 3000 <= error["code"] < 4000:
            assert code == grpc.StatusCode.FAILED_PRECONDITION
            ledger = chain_pb2.LedgerError.FromString(dict(trailer)[LEDGER_ERROR_KEY])
            assert ledger.code == error["code"] and ledger.reason and ledger.message == error["message"]


def test_readable_reasons_carry_the_numbers() -> None:
    fee = {"minimumRequiredFee": {"ada": {"lovelace": 170000}}, "providedFee": {"ada": {"lovelace": 100}}}
    assert ledger_reason(3122, "", fee) == "fee too small: minimum 170000 lovelace, provided 100"
    refs = {"unknownOutputReferences": [{"transaction": {"id": "ab" * 32}, "index": 1}]}
    assert ledger_reason(3117, "", refs).endswith("ab" * 32 + "#1")
    assert ledger_reason(3999, "Something odd. More words.", None) == "Something odd"


@pytest.mark.parametrize(("exc", "method", "code"), [
    (InvalidArgument("bad"), "GetUtxos", grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound("no"), "GetTransaction", grpc.StatusCode.NOT_FOUND),
    (OgmiosRpcError("submitTransaction", -32602, "undecodable"), "SubmitTransaction",
     grpc.StatusCode.INVALID_ARGUMENT),
    (OgmiosRpcError("queryLedgerState/utxo", 2001, "era mismatch"), "GetUtxos", grpc.StatusCode.UNAVAILABLE),
    (OgmiosRpcError("x", -32603, "internal"), "GetTip", grpc.StatusCode.INTERNAL),
    (OgmiosUnavailable("down"), "GetUtxos", grpc.StatusCode.UNAVAILABLE),
    (OgmiosTimeout("submitTransaction", 1), "SubmitTransaction", grpc.StatusCode.DEADLINE_EXCEEDED),
    (OgmiosTimeout("queryLedgerState/epoch", 1), "GetProtocolParameters", grpc.StatusCode.UNAVAILABLE),
    (KupoUnavailable("down"), "GetAssetBalance", grpc.StatusCode.UNAVAILABLE),
    (KupoHttpError(400, "Invalid pattern!", "matches"), "GetAssetBalance", grpc.StatusCode.INVALID_ARGUMENT),
    (ResponseTooLarge("big"), "GetUtxos", grpc.StatusCode.RESOURCE_EXHAUSTED),
    (OverflowError("too many streams"), "WatchTransactions", grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RuntimeError("bug"), "GetTip", grpc.StatusCode.INTERNAL),
])
def test_status_mapping(exc: Exception, method: str, code: grpc.StatusCode) -> None:
    mapped, message, _ = _status_for(exc, method)
    assert mapped == code and message
