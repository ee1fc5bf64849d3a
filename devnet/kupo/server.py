"""The devnet's Kupo v2 HTTP server (default port 1442), routed like Kupo: every route also under /v1/,
``{"hint": …}`` errors with 400 (bad input), 404 (unknown endpoint), 406 (wrong method on a known one),
``X-Most-Recent-Checkpoint``/``ETag`` headers and ``If-None-Match`` → 304 on the cacheable reads.

Matches are computed live from the chain's output records, filtered by the configured patterns; a newly
added pattern therefore sees all history at once (Kupo re-indexes from ``rollback_to`` to get there).
Candidates come from in-memory indexes that follow the chain (``devnet.kupo.outputs``), as Kupo's SQLite
indexes do, so a query costs what it selects rather than the length of the chain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Final

from aiohttp import web

from devnet.kupo.index import KupoIndex, metadata_json
from devnet.kupo.matches import MatchQueryError, query_matches
from devnet.kupo.outputs import OutputIndex
from devnet.kupo.patterns import Pattern, PatternError, includes, overlaps, parse_pattern
from devnet.ogmios.encoding import dumps, is_hex

__all__ = ["KUPO_KEY", "KUPO_VERSION", "KupoServer", "build_app"]

log = logging.getLogger("devnet.kupo")

KUPO_VERSION: Final = "v2.11.0"  # the Kupo the production bundle pins (docker-compose.yml)
KUPO_KEY: Final = web.AppKey("kupo", object)
_JSON: Final = "application/json;charset=utf-8"
_MAX_BODY_BYTES: Final = 64 * 1024
_MAX_PATTERNS: Final = 1000
_DOCS: Final = "<https://cardanosolutions.github.io/kupo>"

HINTS: Final = {
    "not_found": f"Endpoint not found. Make sure to double-check the documentation at: {_DOCS}!",
    "method": f"Unsupported method called on known endpoint. Make sure to double-check the documentation at: {_DOCS}!",
    "pattern": "Invalid pattern! To fetch matches, you may provide any valid pattern, including wildcards "
    f"('*') or full addresses. Make sure to double-check the documentation at: {_DOCS}!",
    "slot": "The path parameter for the endpoint must be an absolute slot number. That is, an non-negative integer.",
    "strict": "Invalid strict-mode query flag! This endpoint only accepts a single query flag '?strict'.",
    "datum_hash": "The given path parameter isn't a well-formed datum hash digest. This must be a blake2b-256 "
    "hash digest encoded in base16 (thus, 64 characters once encoded).",
    "script_hash": "The given path parameter isn't a well-formed script hash digest. This must be a blake2b-224 "
    "hash digest encoded in base16 (thus, 56 characters once encoded).",
    "metadata_filter": "Invalid filter query! Metadata can only be filtered by 'transaction_id' (base16).",
    "no_block": "There's no block at or after the requested slot (yet).",
    "still_active": "Beware! You've just attempted to remove matches using a pattern that overlaps with another "
    "still active pattern! Remove conflicting patterns first AND THEN clean-up obsolete matches if necessary.",
    "malformed_point": "Couldn't decode the provided point (or slot); Either it is missing from the request body "
    "or it is not well-formed. You can provide either a slot, or a slot and a header hash (a.k.a a point).",
    "unknown_point": "The provided point (or slot) is unknown. Please provide an existing point from the past.",
    "content_type": "Unsupported content-type requested: use 'application/json' or 'text/plain'.",
    "body": f"The request body is too large (more than {_MAX_BODY_BYTES} bytes).",
    "internal": "Whoops, the server failed to process this request; this is a bug in the devnet.",
}


def hint(key: str, status: int = 400, text: str | None = None) -> web.Response:
    return web.Response(
        body=dumps({"hint": text or HINTS[key]}),
        status=status,
        headers={"Content-Type": _JSON, "Access-Control-Allow-Origin": "*"},
    )


class KupoServer:
    def __init__(self, chain: Any, patterns: Iterable[str]) -> None:
        self.chain = chain
        self.index = KupoIndex(chain)
        self.outputs = OutputIndex.follow(chain)
        self.use_indexes = True  # False answers /matches by scanning every output (benchmark baseline)
        self.patterns: dict[tuple[str, Any, Any], Pattern] = {}
        for text in patterns:
            pattern = parse_pattern(text)
            self.patterns[pattern.key()] = pattern

    # -- plumbing -------------------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        tip = self.chain.tip
        headers = {
            "Content-Type": _JSON,
            "Access-Control-Allow-Origin": "*",
            "X-Most-Recent-Checkpoint": str(tip.slot if tip is not None else 0),
        }
        if tip is not None:
            headers["ETag"] = tip.id
        return headers

    def json(
        self, request: web.Request, body: Any, *, cacheable: bool = True, extra: dict[str, str] | None = None
    ) -> web.Response:
        headers = self.headers()
        if extra:
            headers.update(extra)
        etag = headers.get("ETag")
        if cacheable and etag is not None and request.headers.get("If-None-Match", "").strip('"') == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=dumps(body), headers=headers)

    async def route(self, request: web.Request) -> web.StreamResponse:
        segments = [s for s in request.path.split("/") if s != ""]
        while segments[:1] == ["v1"]:
            segments = segments[1:]
        if not segments:
            return hint("not_found", 404)
        handler = getattr(self, f"_route_{segments[0]}", None)
        if handler is None:
            return hint("not_found", 404)
        try:
            response: web.StreamResponse = await handler(request, request.method, segments[1:])
        except Exception:  # a bug must still answer in Kupo's error shape, never a stack trace
            log.exception("kupo_internal_error path=%s", request.path)
            return hint("internal", 500)
        return response

    # -- /health, /metrics ----------------------------------------------------------------------------

    def health_body(self) -> dict[str, Any]:
        tip = self.chain.tip
        since = None
        if tip is not None:
            genesis = self.chain.genesis
            slot_time = genesis.system_start_s + tip.slot * genesis.slot_length_s
            since = max(0, int(time.time() - slot_time))
        return {
            "connection_status": "connected",
            "most_recent_checkpoint": tip.slot if tip is not None else None,
            "most_recent_node_tip": tip.slot if tip is not None else None,
            "seconds_since_last_block": since,
            "network_synchronization": 1.0 if tip is not None else None,
            "configuration": {"indexes": "installed"},
            "version": KUPO_VERSION,
        }

    def _prometheus(self, body: dict[str, Any]) -> str:
        def gauge(name: str, kind: str, value: Any) -> str:
            return f"# TYPE kupo_{name} {kind}\nkupo_{name}  {value if value is not None else 0}\n"

        return "\n".join(
            [
                gauge("configuration_indexes", "gauge", 1.0),
                gauge("connection_status", "gauge", 1.0),
                gauge("most_recent_checkpoint", "counter", body["most_recent_checkpoint"]),
                gauge("most_recent_node_tip", "counter", body["most_recent_node_tip"]),
                gauge("network_synchronization", "gauge", body["network_synchronization"]),
                gauge("seconds_since_last_block", "gauge", float(body["seconds_since_last_block"] or 0)),
            ]
        )

    async def _health_like(self, request: web.Request, method: str, args: list[str], *, metrics: bool) -> web.Response:
        if method != "GET":
            return hint("method", 406)
        if args:
            return hint("not_found", 404)
        body = self.health_body()
        status = 200 if metrics or body["most_recent_checkpoint"] is not None else 202
        accept = request.headers.get("Accept")
        headers = self.headers()
        if accept is None or ("application/json" in accept and "text/plain" not in accept):
            return web.Response(body=dumps(body), status=status, headers=headers)
        if "text/plain" in accept:
            headers["Content-Type"] = "text/plain;charset=utf-8"
            return web.Response(text=self._prometheus(body), status=status, headers=headers)
        if "*/*" in accept:  # Kupo's quirk: Prometheus text labelled as JSON
            return web.Response(text=self._prometheus(body), status=status, headers=headers)
        return hint("content_type", 406)

    async def _route_health(self, request: web.Request, method: str, args: list[str]) -> web.Response:
        return await self._health_like(request, method, args, metrics=False)

    async def _route_metrics(self, request: web.Request, method: str, args: list[str]) -> web.Response:
        return await self._health_like(request, method, args, metrics=True)

    # -- /matches -------------------------------------------------------------------------------------

    async def _route_matches(self, request: web.Request, method: str, args: list[str]) -> web.Response:
        if method not in ("GET", "DELETE"):
            return hint("method", 406)
        if len(args) > 2:
            return hint("pattern")
        try:
            pattern = parse_pattern("/".join(args) if args else "*")
        except PatternError:
            return hint("pattern")
        if method == "DELETE":
            if overlaps(pattern, list(self.patterns.values())):
                return hint("still_active")
            return self.json(request, {"deleted": 0}, cacheable=False)
        accept = request.headers.get("Accept", "")
        as_string = "asset-quantity=string" in accept.replace(" ", "")
        try:
            body = query_matches(
                self.chain, self.index, list(self.patterns.values()), pattern, request.query, as_string,
                outputs=self.outputs if self.use_indexes else None,
            )
        except MatchQueryError as exc:
            return hint("", text=str(exc))
        return self.json(request, body)

    # -- /datums, /scripts ----------------------------------------------------------------------------

    async def _route_datums(self, request: web.Request, method: str, args: list[str]) -> web.Response:
        if method != "GET":
            return hint("method", 406)
        if len(args) != 1:
            return hint("not_found", 404)
        if not is_hex(args[0], 64):
            return hint("datum_hash")
        datum = self.index.datum_by_hash(args[0])
        return self.json(request, None if datum is None else {"datum": datum})

    async def _route_scripts(self, request: web.Request, method: str, args: list[str]) -> web.Response:
        if method != "GET":
            return hint("method", 406)
        if len(args) != 1:
            return hint("not_found", 404)
        if not is_hex(args[0], 56):
            return hint("script_hash")
        return self.json(request, self.index.script_by_hash(args[0]))

    # -- /checkpoints, /metadata ----------------------------------------------------------------------

    def _sample_points(self) -> list[dict[str, Any]]:
        blocks = self.chain.blocks
        points, distance, height = [], 1, len(blocks)
        while height >= 1:
            block = blocks[height - 1]
            points.append({"slot_no": block.slot, "header_hash": block.id})
            height -= distance
            distance = distance * 2 if len(points) > 10 else 1
        return points

    async def _route_checkpoints(self, request: web.Request, method: str, args: list[str]) -> web.Response:
        if method != "GET":
            return hint("method", 406)
        if not args:
            return self.json(request, self._sample_points())
        if len(args) > 1:
            return hint("not_found", 404)
        if not args[0].isdigit():
            return hint("slot")
        if set(request.query) - {"strict"}:
            return hint("strict")
        slot = int(args[0])
        block = self._block_at_or_before(slot)
        if block is None or ("strict" in request.query and block.slot != slot):
            return self.json(request, None)
        return self.json(request, {"slot_no": block.slot, "header_hash": block.id})

    def _block_at_or_before(self, slot: int) -> Any:
        blocks = self.chain.blocks
        lo, hi = 0, len(blocks)
        while lo < hi:
            mid = (lo + hi) // 2
            if blocks[mid].slot <= slot:
                lo = mid + 1
            else:
                hi = mid
        return blocks[lo - 1] if lo else None

    async def _route_metadata(self, request: web.Request, method: str, args: list[str]) -> web.Response:
        if method != "GET":
            return hint("method", 406)
        if len(args) != 1:
            return hint("not_found", 404)
        if not args[0].isdigit():
            return hint("slot")
        tx_filter = request.query.get("transaction_id")
        if set(request.query) - {"transaction_id"} or (tx_filter is not None and not is_hex(tx_filter, 64)):
            return hint("metadata_filter")
        slot = int(args[0])
        if slot == 0:
            return self.json(request, [])
        before = self._block_at_or_before(slot - 1)
        block = self.chain.block_at_height(before.height + 1 if before is not None else 1)
        if block is None:
            return hint("no_block", 404)
        body = [
            meta
            for tx in block.transactions
            if (tx_filter is None or tx.id == tx_filter) and (meta := metadata_json(tx)) is not None
        ]
        return self.json(request, body, extra={"X-Block-Header-Hash": block.id})

    # -- /patterns ------------------------------------------------------------------------------------

    async def _route_patterns(self, request: web.Request, method: str, args: list[str]) -> web.Response:
        if len(args) > 2:
            return hint("pattern")
        text = "/".join(args) if args else None
        if method == "GET":
            return self._get_patterns(request, text)
        if method == "DELETE":
            try:
                pattern = parse_pattern(text or "*")
            except PatternError:
                return hint("pattern")
            removed = self.patterns.pop(pattern.key(), None)
            return self.json(request, {"deleted": 0 if removed is None else 1}, cacheable=False)
        if method == "PUT":
            return await self._put_patterns(request, text)
        return hint("method", 406)

    def _get_patterns(self, request: web.Request, text: str | None) -> web.Response:
        if text is None:
            return self.json(request, [p.text for p in self.patterns.values()], cacheable=False)
        try:
            pattern = parse_pattern(text)
        except PatternError:
            return hint("pattern")
        covering = [p.text for p in self.patterns.values() if includes(p, pattern)]
        return self.json(request, covering, cacheable=False)

    async def _put_patterns(self, request: web.Request, text: str | None) -> web.Response:
        body = await _json_body(request)
        if body is _TOO_LARGE:
            return hint("body", 413)
        if not isinstance(body, dict):
            return hint("malformed_point")
        texts = [text] if text is not None else body.get("patterns")
        if not isinstance(texts, list) or not texts or len(texts) > _MAX_PATTERNS:
            return hint("pattern")
        try:
            new = [parse_pattern(t) for t in texts if isinstance(t, str)]
        except PatternError:
            return hint("pattern")
        if len(new) != len(texts):
            return hint("pattern")
        check = self._check_rollback_to(body.get("rollback_to"), body.get("limit"))
        if check is not None:
            return check
        for pattern in new:
            self.patterns.setdefault(pattern.key(), pattern)
        return self.json(request, [p.text for p in self.patterns.values()], cacheable=False)

    def _check_rollback_to(self, point: Any, limit: Any) -> web.Response | None:
        if limit not in (None, "within_safe_zone", "unsafe_allow_beyond_safe_zone"):
            return hint("malformed_point")
        if isinstance(point, int) and not isinstance(point, bool):
            point = {"slot_no": point}
        if not isinstance(point, dict) or not isinstance(point.get("slot_no"), int):
            return hint("malformed_point")
        header = point.get("header_hash")
        if header is not None and not is_hex(header, 64):
            return hint("malformed_point")
        block = self._block_at_or_before(point["slot_no"])
        if block is None or block.slot != point["slot_no"] or (header is not None and header != block.id):
            return hint("unknown_point")
        return None


_TOO_LARGE: Final = object()


async def _json_body(request: web.Request) -> Any:
    import orjson

    if request.content_length is not None and request.content_length > _MAX_BODY_BYTES:
        return _TOO_LARGE
    raw = await request.content.read(_MAX_BODY_BYTES + 1)
    if len(raw) > _MAX_BODY_BYTES:
        return _TOO_LARGE
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def build_app(chain: Any, patterns: Iterable[str] = ("*",)) -> web.Application:
    """The Kupo aiohttp application over ``chain``, indexing outputs that match ``patterns``."""
    server = KupoServer(chain, patterns)
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    app[KUPO_KEY] = server
    app.router.add_route("*", "/{tail:.*}", server.route)
    return app
