"""The JSON-RPC 2.0 envelope exactly as Ogmios v6 writes it.

Responses are ``{"jsonrpc":"2.0","method":<name>,"result"|"error":…,"id":<mirrored or null>}`` in that key
order. Generic faults (-32700 parse, -32600 invalid request, -32601 unknown method, -32602 invalid params)
carry no ``method`` when the request named none we know; a ``data`` member appears only when given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from devnet.ogmios.encoding import dumps

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "NO_DATA",
    "PARSE_ERROR",
    "RawResult",
    "Request",
    "RpcFault",
    "error_bytes",
    "parse_request",
    "result_bytes",
]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603


class _NoData:
    def __repr__(self) -> str:
        return "NO_DATA"


NO_DATA: Final = _NoData()


class RpcFault(Exception):
    """A JSON-RPC error to send back: ``code``, ``message`` and optional ``data`` (omitted when NO_DATA)."""

    def __init__(self, code: int, message: str, data: Any = NO_DATA, *, with_method: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data
        self.with_method = with_method


@dataclass(frozen=True, slots=True)
class RawResult:
    """A result already serialized to JSON bytes (chain-sync's cached blocks)."""

    json: bytes


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    params: Any  # None when absent
    id: Any  # None when absent
    has_params: bool


def parse_request(raw: bytes | str) -> Request:
    """Parse one frame/body; raises RpcFault(-32700 / -32600) with the id mirrored when it is known."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RpcFault(PARSE_ERROR, "Invalid request: must be a well-formed JSON object.", with_method=False) from None
    if not isinstance(message, dict):
        raise RpcFault(INVALID_REQUEST, "Invalid request: must be a JSON object.", with_method=False)
    request_id = message.get("id")
    if message.get("jsonrpc") != "2.0":
        raise _with_id(
            RpcFault(
                INVALID_REQUEST,
                "Invalid request: missing or invalid field 'jsonrpc': should be '2.0'.",
                with_method=False,
            ),
            request_id,
        )
    method = message.get("method")
    if not isinstance(method, str):
        raise _with_id(
            RpcFault(
                INVALID_REQUEST,
                "Invalid request: missing or invalid field 'method': must be a string.",
                with_method=False,
            ),
            request_id,
        )
    return Request(method=method, params=message.get("params"), id=request_id, has_params="params" in message)


class FaultWithId(RpcFault):
    """An envelope fault raised after the request id was read (so the response can mirror it)."""

    request_id: Any = None


def _with_id(fault: RpcFault, request_id: Any) -> RpcFault:
    wrapped = FaultWithId(fault.code, fault.message, fault.data, with_method=fault.with_method)
    wrapped.request_id = request_id
    return wrapped


def _id_bytes(request_id: Any) -> bytes:
    try:
        return dumps(request_id)
    except (TypeError, ValueError):
        return b"null"


def result_bytes(method: str, result: Any, request_id: Any) -> bytes:
    payload = result.json if isinstance(result, RawResult) else dumps(result)
    return b"".join(
        (
            b'{"jsonrpc":"2.0","method":',
            dumps(method),
            b',"result":',
            payload,
            b',"id":',
            _id_bytes(request_id),
            b"}",
        )
    )


def error_bytes(method: str | None, fault: RpcFault, request_id: Any) -> bytes:
    error: dict[str, Any] = {"code": fault.code, "message": fault.message}
    if fault.data is not NO_DATA:
        error["data"] = fault.data
    parts = [b'{"jsonrpc":"2.0",']
    if method is not None and fault.with_method:
        parts += [b'"method":', dumps(method), b","]
    parts += [b'"error":', dumps(error), b',"id":', _id_bytes(request_id), b"}"]
    return b"".join(parts)
