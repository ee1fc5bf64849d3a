"""Webhook deliveries: signed as Stripe signs, at least once, retried on Stripe's schedule (compressed
by ``webhook_retry_scale``), optionally chaotic (seeded duplicates, delays and so reorderings)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import hmac
import json
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from common.logging import get_logger
from devnet.stripe.ids import new_id
from devnet.stripe.sandbox import Sandbox
from devnet.stripe.store import JsonObject

__all__ = ["RETRY_SCHEDULE_S", "Delivery", "Dispatcher", "sign_payload"]

log = get_logger("devnet.stripe.webhooks")
# Stripe retries "for up to three days with an exponential back off"; this is our table of the waits
# after each failed attempt (10 retries, 2.98 days in all).
RETRY_SCHEDULE_S = (60, 300, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 72000)
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
MAX_RESPONSE_CHARS = 200


def sign_payload(payload: str, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header: ``t=…,v1=…`` with HMAC-SHA256 over ``"{t}.{payload}"``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass
class Delivery:
    """One event on its way to one endpoint (a chaotic duplicate is a Delivery of its own)."""

    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    payload: str
    due_at: float
    attempts: int = 0
    status: str = "pending"  # pending, delivered, failed
    duplicate: bool = False  # a chaotic second copy, or a resend: does not count towards pending_webhooks
    delay_s: float = 0.0
    generation: int = 0
    in_flight: bool = False


@dataclass
class Dispatcher:
    sb: Sandbox
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    attempts: deque[JsonObject] = field(default_factory=deque)
    _heap: list[tuple[float, int, str, int]] = field(default_factory=list)
    _seq: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: asyncio.Task[None] | None = None
    _inflight: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None

    def __post_init__(self) -> None:
        settings = self.sb.settings
        self.rng = random.Random(settings.chaos_seed) if settings.chaos_seed is not None else None
        self.semaphore = asyncio.Semaphore(settings.webhook_concurrency)
        self.attempts = deque(maxlen=settings.max_delivery_attempts)
        self.sb.count_endpoints = lambda event_type: len(self.endpoints_for(event_type))
        self.sb.on_event = self.enqueue

    # -- endpoints ----------------------------------------------------------------------------

    def endpoints_for(self, event_type: str) -> list[JsonObject]:
        return [e for e in self.sb.store.of_kind("webhook_endpoint")
                if e["status"] == "enabled" and ("*" in e["enabled_events"] or event_type in e["enabled_events"])]

    def secret_of(self, endpoint_id: str) -> str:
        return str(self.sb.store.private.get(endpoint_id, {}).get("secret", ""))

    # -- scheduling ---------------------------------------------------------------------------

    def enqueue(self, event: JsonObject, resend: bool = False) -> None:
        endpoints = self.endpoints_for(event["type"])
        payload = json.dumps(event, indent=2) if endpoints else ""
        for endpoint in endpoints:
            copies = 1
            if self.rng is not None and self.rng.random() < self.sb.settings.chaos_duplicate_rate:
                copies = 2
            for copy_index in range(copies):
                delay = self.rng.uniform(0, self.sb.settings.chaos_max_delay_s) if self.rng is not None else 0.0
                delivery = Delivery(new_id("wd"), event["id"], event["type"], endpoint["id"], payload,
                                    time.time() + delay, duplicate=resend or copy_index > 0,
                                    delay_s=round(delay, 4))
                self.deliveries[delivery.id] = delivery
                self._schedule(delivery)
        self._trim()

    def _schedule(self, delivery: Delivery) -> None:
        self._seq += 1
        delivery.generation += 1
        heapq.heappush(self._heap, (delivery.due_at, self._seq, delivery.id, delivery.generation))
        self._wake.set()

    def _trim(self) -> None:
        """Bounded memory: forget the oldest finished deliveries past the limit; if every one is still
        pending, give up the oldest (logged and listed as a failed attempt) rather than grow."""
        limit = self.sb.settings.max_delivery_attempts
        excess = len(self.deliveries) - limit
        if excess <= 0:
            return
        finished = [d.id for d in self.deliveries.values() if d.status != "pending"][:excess]
        for delivery_id in finished:
            del self.deliveries[delivery_id]
        excess -= len(finished)
        stuck = [d for d in self.deliveries.values() if not d.in_flight][:max(0, excess)]
        for delivery in stuck:
            delivery.status = "failed"
            del self.deliveries[delivery.id]
            log.warning("webhook_delivery_dropped", event_id=delivery.event_id, endpoint=delivery.endpoint_id,
                        pending_limit=limit)
            self.attempts.append({
                "id": new_id("wa"), "delivery": delivery.id, "event": delivery.event_id, "type": delivery.event_type,
                "endpoint": delivery.endpoint_id, "url": None, "attempt": delivery.attempts, "outcome": "dropped",
                "status_code": None, "error": f"more than {limit} deliveries pending", "response_body": "",
                "started_at": round(time.time(), 3), "duration_ms": 0.0, "next_retry_at": None,
                "duplicate": delivery.duplicate, "chaos_delay_s": delivery.delay_s,
            })

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.sb.settings.webhook_timeout_s))
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                _, _, delivery_id, generation = heapq.heappop(self._heap)
                delivery = self.deliveries.get(delivery_id)
                if delivery is None or delivery.generation != generation or delivery.status != "pending":
                    continue
                task = asyncio.create_task(self._attempt(delivery))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            timeout = max(0.0, self._heap[0][0] - time.time()) if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def deliver_now(self) -> JsonObject:
        """Attempt every pending delivery once, now (waits for in-flight ones too); counts of the outcome."""
        await asyncio.gather(*self._inflight, return_exceptions=True)
        waiting = [d for d in self.deliveries.values() if d.status == "pending" and not d.in_flight]
        await asyncio.gather(*(self._attempt(d) for d in waiting))
        return {"attempted": len(waiting),
                "delivered": sum(1 for d in waiting if d.status == "delivered"),
                "failed": sum(1 for d in waiting if d.status == "failed"),
                "pending": sum(1 for d in self.deliveries.values() if d.status == "pending")}

    # -- one attempt --------------------------------------------------------------------------

    async def _attempt(self, delivery: Delivery) -> None:
        delivery.generation += 1  # in flight: its heap entries are stale until it is rescheduled
        delivery.in_flight = True
        try:
            await self._attempt_once(delivery)
        finally:
            delivery.in_flight = False

    async def _attempt_once(self, delivery: Delivery) -> None:
        endpoint = self.sb.store.find(delivery.endpoint_id)
        async with self.semaphore:
            delivery.attempts += 1
            started = time.time()
            status_code: int | None = None
            error: str | None = None
            body = ""
            if endpoint is None or endpoint.get("status") != "enabled":
                error = "endpoint deleted or disabled"
            else:
                timestamp = int(started)
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": USER_AGENT,
                    "Stripe-Signature": sign_payload(delivery.payload, self.secret_of(delivery.endpoint_id),
                                                     timestamp),
                    "Cache-Control": "no-cache",
                    "Accept": "*/*; q=0.5, application/xml",
                }
                try:
                    assert self._session is not None
                    async with self._session.post(endpoint["url"], data=delivery.payload.encode(),
                                                  headers=headers) as resp:
                        status_code = resp.status
                        body = (await resp.content.read(MAX_RESPONSE_CHARS)).decode(errors="replace")
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    error = f"{type(exc).__name__}: {exc}"[:MAX_RESPONSE_CHARS] or "timeout"
            self._settle(delivery, endpoint, started, status_code, error, body)

    def _settle(self, delivery: Delivery, endpoint: JsonObject | None, started: float, status_code: int | None,
                error: str | None, body: str) -> None:
        ok = status_code is not None and 200 <= status_code < 300
        next_retry_at: float | None = None
        if ok:
            delivery.status = "delivered"
            event = self.sb.store.events.get(delivery.event_id)
            if not delivery.duplicate and event is not None and event["pending_webhooks"] > 0:
                event["pending_webhooks"] -= 1
        elif endpoint is None or delivery.attempts > len(RETRY_SCHEDULE_S):
            delivery.status = "failed"
        else:
            wait_s = RETRY_SCHEDULE_S[delivery.attempts - 1] * self.sb.settings.webhook_retry_scale
            delivery.due_at = next_retry_at = time.time() + wait_s
            self._schedule(delivery)
        self.attempts.append({
            "id": new_id("wa"), "delivery": delivery.id, "event": delivery.event_id, "type": delivery.event_type,
            "endpoint": delivery.endpoint_id, "url": endpoint["url"] if endpoint else None,
            "attempt": delivery.attempts, "outcome": "succeeded" if ok else "failed", "status_code": status_code,
            "error": error, "response_body": body, "started_at": round(started, 3),
            "duration_ms": round((time.time() - started) * 1000, 1), "next_retry_at": next_retry_at,
            "duplicate": delivery.duplicate, "chaos_delay_s": delivery.delay_s,
        })
        log.info("webhook_attempt", event_id=delivery.event_id, event_type=delivery.event_type,
                 endpoint=delivery.endpoint_id, attempt=delivery.attempts, status_code=status_code, error=error,
                 outcome=delivery.status)
        self.sb.store.dirty = True

    # -- controls and persistence -------------------------------------------------------------

    def list_attempts(self, event: str | None, endpoint: str | None, limit: int) -> list[JsonObject]:
        rows = [a for a in reversed(self.attempts)
                if (event is None or a["event"] == event) and (endpoint is None or a["endpoint"] == endpoint)]
        return rows[:limit]

    def pending(self) -> list[JsonObject]:
        return [{k: v for k, v in asdict(d).items() if k not in ("payload", "generation", "in_flight")}
                for d in self.deliveries.values() if d.status == "pending"]

    def reset(self) -> None:
        self.deliveries.clear()
        self._heap.clear()
        self.attempts.clear()

    def to_state(self) -> list[dict[str, Any]]:
        return [{**asdict(d), "in_flight": False} for d in self.deliveries.values() if d.status == "pending"]

    def load_state(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            delivery = Delivery(**row)
            self.deliveries[delivery.id] = delivery
            self._schedule(delivery)
