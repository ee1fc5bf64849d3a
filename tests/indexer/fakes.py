"""Small in-test Ogmios and Kupo servers for the indexer's unit tests.

``FakeOgmios`` speaks Ogmios v6 JSON-RPC over a real WebSocket on loopback: chain-sync over an in-memory
chain that can grow and fork (nextBlock waits at the tip, the first one after an intersection is a
backward), mempool monitoring, and scripted answers for everything else (reference vectors by default).
``FakeKupo`` is an aiohttp app answering ``/matches`` and ``/health`` from in-memory data.
The integration tests use the real devnet processes instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

VECTORS = Path("/work/shared/reference/ogmios/test-vectors")
SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ogmios" / "test-vectors"


def vector(name: str, index: int = 0) -> dict[str, Any]:
    base = VECTORS if VECTORS.exists() else SHARED_VECTORS
    return json.loads((base / name / f"{index:03d}.json").read_text())


def block_id(height: int, salt: str) -> str:
    return hashlib.sha256(f"{height}:{salt}".encode()).hexdigest()


def make_tx(tx_id: str, outputs: list[tuple[str, int]] | None = None, *, inputs: list[tuple[str, int]] = (),  # type: ignore[assignment]
            mint: dict[str, dict[str, int]] | None = None, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    tx: dict[str, Any] = {
        "id": tx_id, "spends": "inputs",
        "inputs": [{"transaction": {"id": t}, "index": i} for t, i in inputs],
        "outputs": [{"address": a, "value": {"ada": {"lovelace": q}}} for a, q in outputs or []],
        "fee": {"ada": {"lovelace": 170000}}, "validityInterval": {"invalidAfter": 1000}, "signatories": [],
    }
    if mint:
        tx["mint"] = mint
    if metadata:
        tx["metadata"] = {"hash": "00" * 32, "labels": metadata}
    return tx


class FakeChain:
    """Blocks as Ogmios JSON; ``changed`` fires on every extension or rollback."""

    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self.forks = 0
        self.changed = asyncio.Condition()

    def tip(self) -> Any:
        if not self.blocks:
            return "origin"
        b = self.blocks[-1]
        return {"slot": b["slot"], "id": b["id"], "height": b["height"]}

    def point(self, index: int) -> Any:
        return "origin" if index < 0 else {"slot": self.blocks[index]["slot"], "id": self.blocks[index]["id"]}

    async def add(self, transactions: list[dict[str, Any]] | None = None, count: int = 1) -> list[dict[str, Any]]:
        added = []
        for _ in range(count):
            height = len(self.blocks)
            block = {"type": "praos", "era": "conway", "id": block_id(height, f"fork{self.forks}"),
                     "ancestor": self.blocks[-1]["id"] if self.blocks else "genesis", "height": height,
                     "slot": height * 2 + 1, "size": {"bytes": 100}, "protocol": {"version": {"major": 10, "minor": 0}},
                     "issuer": {}, "transactions": transactions or []}
            transactions = None
            self.blocks.append(block)
            added.append(block)
        async with self.changed:
            self.changed.notify_all()
        return added

    async def rollback(self, count: int) -> None:
        self.forks += 1
        del self.blocks[len(self.blocks) - count:]
        async with self.changed:
            self.changed.notify_all()


class RpcFault(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message, **({"data": data} if data is not None else {})}


class _Session:
    """Per-connection state: the chain-sync cursor and the mempool snapshot."""

    def __init__(self) -> None:
        self.cursor_index = -1  # index of the last block delivered (-1: origin)
        self.known: dict[int, str] = {}  # index -> id of every block delivered on this connection
        self.pending_backward: Any = "origin"
        self.snapshot: frozenset[str] | None = None


class FakeOgmios:
    def __init__(self, chain: FakeChain | None = None) -> None:
        self.chain = chain or FakeChain()
        self.mempool: set[str] = set()
        self.mempool_changed = asyncio.Event()
        self.handlers: dict[str, Callable[[Any], Any]] = {}
        self.requests: list[tuple[str, Any]] = []
        self.connections: set[ServerConnection] = set()
        self.server: Server | None = None
        self.port = 0
        self.delay_s: dict[str, float] = {}

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FakeOgmios:
        self.server = await serve(self._serve, "127.0.0.1", port, compression=None, max_size=None, max_queue=None)
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def drop_connections(self) -> None:
        for conn in list(self.connections):
            await conn.close()

    def set_mempool(self, tx_ids: set[str]) -> None:
        self.mempool = set(tx_ids)
        self.mempool_changed.set()

    async def _serve(self, conn: ServerConnection) -> None:
        self.connections.add(conn)
        worker = asyncio.create_task(self._work(conn))
        await conn.wait_closed()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        self.connections.discard(conn)

    async def _work(self, conn: ServerConnection) -> None:
        session = _Session()
        try:
            async for raw in conn:
                request = orjson.loads(raw)
                method, params = request.get("method"), request.get("params")
                self.requests.append((method, params))
                answer: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
                try:
                    if self.delay_s.get(method):
                        await asyncio.sleep(self.delay_s[method])
                    answer["result"] = await self._answer(method, params, session)
                except RpcFault as fault:
                    answer["error"] = fault.error
                answer["id"] = request.get("id")
                await conn.send(orjson.dumps(answer).decode())
        except ConnectionClosed:
            pass

    async def _answer(self, method: str, params: Any, session: _Session) -> Any:
        if method in self.handlers:
            result = self.handlers[method](params)
            return await result if asyncio.iscoroutine(result) else result
        if method == "findIntersection":
            return self._find_intersection(params["points"], session)
        if method == "nextBlock":
            return await self._next_block(session)
        if method == "acquireMempool":
            return await self._acquire(session)
        if method == "hasTransaction":
            if session.snapshot is None:
                raise RpcFault(4000, "You must acquire a mempool snapshot prior to accessing it.")
            return params["id"] in session.snapshot
        if method == "releaseMempool":
            session.snapshot = None
            return {"released": "mempool"}
        if method in ("queryNetwork/tip", "queryLedgerState/tip"):
            tip = self.chain.tip()
            return tip if tip == "origin" else {"slot": tip["slot"], "id": tip["id"]}
        if method == "queryLedgerState/epoch":
            return 7
        if method == "queryLedgerState/protocolParameters":
            return vector("QueryLedgerStateProtocolParameters", 0)["result"]
        if method == "queryLedgerState/utxo":
            return vector("QueryLedgerStateUtxo", 0)["result"][:2]
        raise RpcFault(-32601, f"unknown method {method}")

    def _find_intersection(self, points: list[Any], session: _Session) -> Any:
        for point in points:
            if point == "origin":
                index = -1
            else:
                index = next((i for i, b in enumerate(self.chain.blocks)
                              if b["id"] == point["id"] and b["slot"] == point["slot"]), None)
                if index is None:
                    continue
            session.cursor_index = index
            session.known = {i: b["id"] for i, b in enumerate(self.chain.blocks[: index + 1])}
            session.pending_backward = self.chain.point(index)
            return {"intersection": session.pending_backward, "tip": self.chain.tip()}
        raise RpcFault(1000, "No intersection found.", {"tip": self.chain.tip()})

    async def _next_block(self, session: _Session) -> Any:
        if session.pending_backward is not None:
            point, session.pending_backward = session.pending_backward, None
            return {"direction": "backward", "point": point, "tip": self.chain.tip()}
        while True:
            blocks, index = self.chain.blocks, session.cursor_index
            if index >= 0 and (index >= len(blocks) or blocks[index]["id"] != session.known.get(index)):
                # the block under our cursor is gone: roll back to the last block we share
                while index >= 0 and (index >= len(blocks) or blocks[index]["id"] != session.known.get(index)):
                    index -= 1
                session.cursor_index = index
                return {"direction": "backward", "point": self.chain.point(index), "tip": self.chain.tip()}
            if index + 1 < len(blocks):
                block = blocks[index + 1]
                session.cursor_index = index + 1
                session.known[index + 1] = block["id"]
                return {"direction": "forward", "block": block, "tip": self.chain.tip()}
            async with self.chain.changed:
                await self.chain.changed.wait()

    async def _acquire(self, session: _Session) -> Any:
        current = frozenset(self.mempool)
        while session.snapshot is not None and session.snapshot == current:
            self.mempool_changed.clear()
            await self.mempool_changed.wait()
            current = frozenset(self.mempool)
        session.snapshot = current
        return {"acquired": "mempool", "slot": self.chain.tip()["slot"] if self.chain.blocks else 0}


class FakeKupo:
    """``/matches/{pattern}`` from ``matches`` (pattern -> list of Kupo match objects), ``/health``."""

    def __init__(self) -> None:
        self.matches: dict[str, list[dict[str, Any]]] = {}
        self.health_status = 200
        self.checkpoint = (42, "ab" * 32)
        self.requests: list[tuple[str, str, str]] = []  # (path, query string, Accept)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.delay_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeKupo:
        app = web.Application()
        app.router.add_get("/matches/{pattern:.*}", self._matches)
        app.router.add_get("/health", self._health)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def _headers(self) -> dict[str, str]:
        return {"X-Most-Recent-Checkpoint": str(self.checkpoint[0]), "ETag": f'"{self.checkpoint[1]}"'}

    async def _matches(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.query_string, request.headers.get("Accept", "")))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.headers.get("Accept") != "application/json":
            return web.Response(text="kupo_connection_status 1.0\n", content_type="application/json")
        pattern = request.match_info["pattern"]
        if pattern == "bad":
            return web.json_response({"hint": "Invalid pattern!"}, status=400)
        found = self.matches.get(pattern, [])
        if "policy_id" in request.query:
            policy = request.query["policy_id"]
            found = [m for m in found if any(u.split(".")[0] == policy for u in m["value"]["assets"])]
        return web.json_response(found, headers=self._headers())

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"connection_status": "connected"}, status=self.health_status)


def kupo_match(tx_id: str, index: int, address: str, coins: int, assets: dict[str, int] | None = None,
               inline_datum: str | None = None) -> dict[str, Any]:
    return {
        "transaction_index": 0, "transaction_id": tx_id, "output_index": index, "address": address,
        "value": {"coins": coins, "assets": assets or {}},
        "datum_hash": "cd" * 32 if inline_datum else None,
        **({"datum": inline_datum, "datum_type": "inline"} if inline_datum else {}),
        "script_hash": None, "created_at": {"slot_no": 40, "header_hash": "ab" * 32}, "spent_at": None,
    }
