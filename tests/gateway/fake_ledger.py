"""An in-memory Ledger (gateway.credits.ledger.Ledger) for tests that do not exercise the ledger itself.

It keeps the contract's semantics that other domains rely on — idempotent writes by key or
generation id, holds that resolve exactly once, expiry, 402 when available < amount, 403 when
frozen, a burn intent per post — with one asyncio lock instead of a database transaction.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from gateway.credits.ledger import (
    AccountFrozen,
    Balance,
    BurnIntent,
    Entry,
    Hold,
    HoldExpired,
    HoldNotFound,
    HoldResolved,
    InsufficientCredits,
    ReconcileReport,
)

__all__ = ["FakeLedger"]


class FakeLedger:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.credited: dict[str, int] = {}
        self.spent: dict[str, int] = {}
        self.frozen: dict[str, str] = {}
        self.holds: dict[str, Hold] = {}
        self.entries: dict[str, Entry] = {}
        self.intents: list[BurnIntent] = []
        self.settled: set[str] = set()

    def _entry(self, key: str, kind: str, debit: str, credit: str, amount: int,
               reference: dict[str, Any] | None = None) -> Entry:
        if key not in self.entries:
            self.entries[key] = Entry(len(self.entries) + 1, key, kind, debit, credit, amount, time.time(),
                                      dict(reference or {}))
        return self.entries[key]

    def _pending(self, user_id: str) -> int:
        return sum(h.amount for h in self.holds.values() if h.user_id == user_id and h.state == "pending")

    async def balance(self, user_id: str) -> Balance:
        credited, spent, pending = self.credited.get(user_id, 0), self.spent.get(user_id, 0), self._pending(user_id)
        return Balance(user_id, credited, spent, pending, credited - spent - pending, user_id in self.frozen,
                       self.frozen.get(user_id, ""))

    async def credit_purchase(self, *, user_id: str, credits: int, key: str,
                              reference: dict[str, Any] | None = None) -> Entry:
        async with self.lock:
            if key not in self.entries:
                self.credited[user_id] = self.credited.get(user_id, 0) + credits
            return self._entry(key, "purchase", "stripe:clearing", f"user:{user_id}", credits, reference)

    async def reverse_purchase(self, *, user_id: str, credits: int, key: str,
                               reference: dict[str, Any] | None = None) -> Entry:
        async with self.lock:
            if key not in self.entries:
                self.credited[user_id] = self.credited.get(user_id, 0) - credits
            return self._entry(key, "reversal", f"user:{user_id}", "refund", credits, reference)

    async def set_frozen(self, user_id: str, frozen: bool, *, reason: str, key: str) -> Balance:
        async with self.lock:
            if frozen:
                self.frozen[user_id] = reason
            else:
                self.frozen.pop(user_id, None)
        return await self.balance(user_id)

    async def hold(self, *, user_id: str, generation_id: str, amount: int = 1, timeout_s: float) -> Hold:
        async with self.lock:
            if generation_id in self.holds:
                return self.holds[generation_id]
            if user_id in self.frozen:
                raise AccountFrozen("The account is frozen while a card payment is disputed")
            if (await self.balance(user_id)).available < amount:
                raise InsufficientCredits()
            now = time.time()
            hold = Hold(generation_id, user_id, amount, "pending", now, now + timeout_s)
            self.holds[generation_id] = hold
            return hold

    async def post(self, generation_id: str) -> Hold:
        async with self.lock:
            hold = self._get(generation_id)
            if hold.state == "posted":
                return hold
            if hold.state == "pending" and hold.expires_at <= time.time():
                hold = self._resolve(hold, "voided", "expired")
            if hold.state == "voided":
                raise (HoldExpired if hold.reason == "expired" else HoldResolved)(f"hold {generation_id} is voided")
            hold = self._resolve(hold, "posted", "")
            self.spent[hold.user_id] = self.spent.get(hold.user_id, 0) + hold.amount
            self.intents.append(BurnIntent(len(self.intents) + 1, generation_id, hold.user_id, hold.amount,
                                           time.time()))
            return hold

    async def void(self, generation_id: str, *, reason: str) -> Hold:
        async with self.lock:
            hold = self._get(generation_id)
            if hold.state == "voided":
                return hold
            if hold.state == "posted":
                raise HoldResolved(f"hold {generation_id} is already posted")
            return self._resolve(hold, "voided", reason)

    def _get(self, generation_id: str) -> Hold:
        if generation_id not in self.holds:
            raise HoldNotFound(f"no hold for generation {generation_id}")
        return self.holds[generation_id]

    def _resolve(self, hold: Hold, state: Any, reason: str) -> Hold:
        resolved = replace(hold, state=state, reason=reason, resolved_at=time.time())
        self.holds[hold.generation_id] = resolved
        return resolved

    async def get_hold(self, generation_id: str) -> Hold | None:
        return self.holds.get(generation_id)

    async def void_expired(self, *, now: float | None = None, limit: int = 1000) -> int:
        now = time.time() if now is None else now
        async with self.lock:
            expired = [h for h in self.holds.values() if h.state == "pending" and h.expires_at <= now][:limit]
            for hold in expired:
                self._resolve(hold, "voided", "expired")
            return len(expired)

    async def outbox(self, *, after_seq: int = 0, limit: int = 1000) -> list[BurnIntent]:
        return [i for i in self.intents if i.seq > after_seq][:limit]

    async def settle_burn(self, *, key: str, generation_ids: list[str], tx_id: str) -> Entry:
        async with self.lock:
            self.settled.update(generation_ids)
            return self._entry(key, "burn_settle", "burn:outbox", "burn:settled", len(generation_ids))

    async def reconcile(self) -> ReconcileReport:
        spent = sum(self.spent.values())
        breaches = [] if spent == len(self.intents) else [f"spent {spent} != intents {len(self.intents)}"]
        return ReconcileReport(not breaches, breaches, {"spent": spent, "intents": len(self.intents)})
