"""An async Kupo v2 client on one shared httpx client.

Every request sends ``Accept: application/json`` (with ``*/*`` Kupo answers Prometheus text labelled as
JSON), has a timeout and a response-size limit, and turns failures into typed errors: unreachable,
timed out or 503 -> :class:`KupoUnavailable`; any other HTTP error -> :class:`KupoHttpError` with Kupo's hint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from indexer import metrics
from indexer.errors import KupoHttpError, KupoUnavailable, ResponseTooLarge

__all__ = ["KupoClient", "KupoResponse"]


@dataclass(frozen=True)
class KupoResponse:
    status: int
    body: Any
    checkpoint_slot: int | None  # X-Most-Recent-Checkpoint
    checkpoint_id: str  # ETag: header hash of that block ("" when absent)


class KupoClient:
    """Talks to one Kupo server; create once, share, ``await close()`` at shutdown."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, connect_timeout_s: float = 5.0,
                 max_response_bytes: int = 64 * 1024 * 1024, max_connections: int = 32) -> None:
        self.url = url.rstrip("/")
        self.max_response_bytes = max_response_bytes
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Accept": "application/json", "User-Agent": "creatorpass-indexer"},
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=False,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def get(self, path: str, route: str, *, accept_statuses: tuple[int, ...] = ()) -> KupoResponse:
        """GET ``path`` (already quoted, query included) and decode its JSON body."""
        started = time.perf_counter()
        try:
            async with self._http.stream("GET", path) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_response_bytes:
                        raise ResponseTooLarge(f"Kupo answer to {route} exceeds {self.max_response_bytes} bytes")
        except httpx.TimeoutException:
            raise KupoUnavailable(f"Kupo at {self.url} did not answer {route} in time") from None
        except httpx.HTTPError as exc:
            raise KupoUnavailable(f"cannot reach Kupo at {self.url}: {type(exc).__name__}: {exc}") from None
        finally:
            metrics.KUPO_LATENCY.labels(route=route).observe(time.perf_counter() - started)
        status = response.status_code
        decoded = _decode(bytes(body))
        if status >= 400 and status not in accept_statuses:
            hint = decoded.get("hint") if isinstance(decoded, dict) else None
            hint = str(hint) if hint else (bytes(body[:200]).decode(errors="replace") or response.reason_phrase)
            if status == 503:
                raise KupoUnavailable(f"Kupo is unavailable ({route}): {hint}")
            raise KupoHttpError(status, hint, route)
        checkpoint = response.headers.get("X-Most-Recent-Checkpoint")
        etag = response.headers.get("ETag", "").strip('"').removeprefix("W/").strip('"')
        slot = int(checkpoint) if checkpoint and checkpoint.isdigit() else None
        return KupoResponse(status, decoded, slot, etag)

    async def matches(self, pattern: str, *, unspent: bool = True, policy_id: str | None = None,
                      asset_name: str | None = None, resolve_hashes: bool = False) -> KupoResponse:
        """``GET /matches/{pattern}`` with Kupo's bare-word flags and filters."""
        query = ["unspent"] if unspent else []
        if policy_id:
            query.append(f"policy_id={policy_id}")
            if asset_name is not None:
                query.append(f"asset_name={asset_name}")
        if resolve_hashes:
            query.append("resolve_hashes")
        path = f"/matches/{quote(pattern, safe='*./@')}" + ("?" + "&".join(query) if query else "")
        response = await self.get(path, "matches")
        if not isinstance(response.body, list):
            raise KupoHttpError(response.status, "expected a JSON array of matches", "matches")
        return response

    async def health(self) -> KupoResponse:
        """``GET /health``: 200 synced, 202 catching up, 503 disconnected (returned, not raised)."""
        return await self.get("/health", "health", accept_statuses=(503,))


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
