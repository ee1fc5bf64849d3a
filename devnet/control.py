"""The devnet-only control API (default port 10000): fund, produce blocks, roll back, describe.

Every answer is JSON.  Errors are problems ``{"status", "code", "message"}``; nothing answers a stack trace.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from common.logging import get_logger
from devnet.chain import Block, Chain
from devnet.faucet import FaucetError
from devnet.ledger.address import AddressError
from devnet.ledger.types import LedgerError, LedgerRejection
from devnet.wallet import add_wallet_routes

__all__ = ["ControlState", "create_control_app"]

MAX_BODY_BYTES = 64 * 1024
MAX_BLOCKS_PER_CALL = 100_000
MAX_FILL_TXS_PER_BLOCK = 50
MAX_LOVELACE = 45_000_000_000_000_000
BLOCKS_PER_SLICE = 50  # yield to the loop between slices of a big production run
LISTED_BLOCKS = 100  # the /devnet/blocks answer lists at most the last 100 blocks

log = get_logger("devnet.control")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProblemError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclasses.dataclass
class ControlState:
    """What the control API needs besides the chain: ports for /devnet/info and the mutation lock."""

    chain: Chain
    ports: dict[str, int]
    block_time_s: float
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    state_dir: str | None = None


def _problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"status": status, "code": code, "message": message}, status=status)


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as exc:
        return _problem(exc.status, exc.code, exc.message)
    except web.HTTPRequestEntityTooLarge:
        return _problem(413, "body_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return _problem(405, "method_not_allowed", f"{request.method} is not allowed here; use {allowed}")
    except web.HTTPNotFound:
        return _problem(404, "not_found", f"no such endpoint: {request.path[:200]}")
    except web.HTTPException as exc:
        return _problem(exc.status, "http_error", exc.reason)
    except Exception:  # a bug: log it, answer a clear problem, keep serving
        log.exception("control_request_failed", path=request.path[:200])
        return _problem(500, "internal_error", "the devnet failed to handle this request; see its log")


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ProblemError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ProblemError(400, "invalid_json", "the request body must be a JSON object")
    return body


def _int_field(body: dict[str, Any], name: str, *, default: int | None = None, low: int = 0, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        raise ProblemError(400, "missing_field", f"'{name}' is required")
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ProblemError(400, "invalid_field", f"'{name}' must be an integer between {low} and {high}")
    return value


def _block_json(block: Block) -> dict[str, Any]:
    return {"height": block.height, "slot": block.slot, "id": block.id,
            "transaction_ids": [tx.id for tx in block.transactions]}


def _state(request: web.Request) -> ControlState:
    return request.app["control"]  # type: ignore[no-any-return]


async def fund(request: web.Request) -> web.Response:
    body = await _json_body(request)
    address = body.get("address")
    if not isinstance(address, str) or not address:
        raise ProblemError(400, "missing_field", "'address' (bech32) is required")
    lovelace = _int_field(body, "lovelace", low=1, high=MAX_LOVELACE)
    assets = body.get("assets") or {}
    if not isinstance(assets, dict):
        raise ProblemError(400, "invalid_field", "'assets' must be an object {\"<policy>.<namehex>\": quantity}")
    state = _state(request)
    async with state.lock:
        try:
            tx_id = state.chain.fund(address, lovelace, assets)
        except (FaucetError, AddressError) as exc:
            raise ProblemError(400, "invalid_funding", str(exc)) from None
        except LedgerRejection as exc:
            raise ProblemError(409, "rejected", f"the ledger refused the faucet tx: {exc.code} {exc.message}") from None
    log.info("devnet_funded", address=address[:120], lovelace=lovelace, assets=len(assets), tx_id=tx_id)
    return web.json_response({"transaction_id": tx_id})


async def blocks(request: web.Request) -> web.Response:
    body = await _json_body(request)
    count = _int_field(body, "count", default=1, high=MAX_BLOCKS_PER_CALL)
    fill = body.get("fill")
    if fill not in (None, "typical"):
        raise ProblemError(400, "invalid_field", "'fill' may only be \"typical\"")
    txs_per_block = _int_field(body, "txs_per_block", default=4, low=1, high=MAX_FILL_TXS_PER_BLOCK)
    state = _state(request)
    produced: list[Block] = []
    async with state.lock:
        remaining = count
        while remaining > 0:
            step = min(remaining, BLOCKS_PER_SLICE)
            try:
                produced.extend(state.chain.produce_blocks(step, fill=fill, txs_per_block=txs_per_block,
                                                           followed_by=remaining - step))
            except LedgerError as exc:
                raise ProblemError(409, "cannot_produce", str(exc)) from None
            produced = produced[-LISTED_BLOCKS:]
            remaining -= step
            if remaining:
                await asyncio.sleep(0)
    return web.json_response({
        "produced": count,
        "tip": state.chain.tip_json(),
        "blocks": [_block_json(block) for block in produced],
    })


async def rollback(request: web.Request) -> web.Response:
    body = await _json_body(request)
    state = _state(request)
    depth = _int_field(body, "blocks", high=len(state.chain.blocks))
    drop = body.get("drop_transactions", True)  # a node does not re-add a dropped block's txs
    if not isinstance(drop, bool):
        raise ProblemError(400, "invalid_field", "'drop_transactions' must be a boolean")
    async with state.lock:
        discarded = state.chain.rollback(depth, drop_transactions=drop)
    log.info("devnet_rolled_back", blocks=depth, discarded=len(discarded))
    return web.json_response({
        "tip": state.chain.tip_json(),
        "discarded_transaction_ids": [tx.id for tx in discarded],
        "mempool": {"transactions": len(state.chain.mempool)},
    })


async def info(request: web.Request) -> web.Response:
    state = _state(request)
    chain = state.chain
    genesis = chain.genesis
    params = {f.name: getattr(chain.params, f.name) for f in dataclasses.fields(chain.params) if f.name != "extra"}
    return web.json_response({
        "network": genesis.network,
        "network_id": genesis.network_id,
        "network_magic": genesis.network_magic,
        "system_start": genesis.start_time_text(),
        "slot_length_s": genesis.slot_length_s,
        "epoch_length": genesis.epoch_length,
        "security_param": genesis.security_param,
        "block_time_s": state.block_time_s,
        "current_slot": chain.current_slot(),
        "tip": chain.tip_json(),
        "mempool": {"transactions": len(chain.mempool), "bytes": chain.mempool_size_bytes()},
        "ports": state.ports,
        "state_dir": state.state_dir,
        "genesis": {
            "seed": genesis.seed,
            "keys": [key.to_json() for key in genesis.keys],
            "addresses": [key.address for key in genesis.keys],
            "faucet_address": genesis.faucet.address,
            "initial_funds": [{"address": a, "lovelace": n} for a, n in genesis.initial_funds()],
        },
        "protocol_parameters": params,
    })


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "tip": _state(request).chain.tip_json()})


def create_control_app(state: ControlState) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_problems])
    app["control"] = state
    app.router.add_post("/devnet/fund", fund)
    app.router.add_post("/devnet/blocks", blocks)
    app.router.add_post("/devnet/rollback", rollback)
    app.router.add_get("/devnet/info", info)
    app.router.add_get("/devnet/health", health)
    add_wallet_routes(app, state.chain)  # devnet test wallets (CIP-30's server half), see devnet/wallet.py
    return app
