"""A reference model of the ledger and a seeded operation generator (TigerBeetle-style simulation).

``Model`` implements the contract's semantics in plain Python dictionaries; ``next_op`` draws a random
operation from a ``random.Random`` and the model's state (new ids, duplicates of earlier keys, posts
before holds, voids after posts, clock jumps past expiry, burn settlements and their replays);
``apply_to_ledger`` runs one operation on a real ledger. Both return an ``outcome`` tuple so the test
can compare them step by step. Every operation is a plain JSON-able dict, so a child process can run
a list of them and a failing seed replays exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from gateway.credits.ledger import Balance, Entry, Hold
from gateway.lib.errors import GatewayError

__all__ = ["Model", "apply_to_ledger", "next_op", "summarize"]

Op = dict[str, Any]
Outcome = tuple[Any, ...]
USERS = ("u0", "u1", "u2", "u3")


def summarize(value: Any) -> Outcome:
    if isinstance(value, Hold):
        return ("hold", value.generation_id, value.user_id, value.amount, value.state, value.reason,
                value.created_at, value.expires_at, value.resolved_at)
    if isinstance(value, Entry):
        return ("entry", value.key, value.kind, value.debit_account, value.credit_account, value.amount)
    if isinstance(value, Balance):
        return ("balance", value.credited, value.spent, value.pending, value.available, value.frozen,
                value.frozen_reason)
    return ("value", value)


@dataclass
class _Account:
    credited: int = 0
    reversed: int = 0
    spent: int = 0
    pending: int = 0
    frozen: bool = False
    reason: str = ""

    def balance(self, user: str) -> Balance:
        credited = self.credited - self.reversed
        return Balance(user, credited, self.spent, self.pending, credited - self.spent - self.pending,
                       self.frozen, self.reason)


@dataclass
class Model:
    now: float = 1_800_000_000.0
    accounts: dict[str, _Account] = field(default_factory=dict)
    entries: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # caller key -> identity
    freezes: dict[str, tuple[str, bool]] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    intents: list[str] = field(default_factory=list)  # generation ids in outbox order
    settled: set[str] = field(default_factory=set)
    settle_gens: dict[str, list[str]] = field(default_factory=dict)  # settlement key -> the ids it covered

    def account(self, user: str) -> _Account:
        return self.accounts.setdefault(user, _Account())

    def balance(self, user: str) -> Balance:
        return self.accounts.get(user, _Account()).balance(user)

    def outbox(self) -> list[str]:
        return [g for g in self.intents if g not in self.settled]

    # -- operations: each returns ("ok", summary) or ("error", code); errors leave no trace --

    def apply(self, op: Op) -> Outcome:
        kind = op["op"]
        if kind == "advance":
            self.now += op["seconds"]
            return ("ok", ("value", None))
        try:
            return ("ok", summarize(getattr(self, "_" + kind)(op)))
        except _Refused as refused:
            return ("error", refused.code)

    def _entry(self, key: str, identity: tuple[Any, ...]) -> bool:
        """True when new; raises idempotency_conflict when the key holds something else."""
        if key in self.entries:
            if self.entries[key] != identity:
                raise _Refused("idempotency_conflict")
            return False
        self.entries[key] = identity
        return True

    def _purchase(self, op: Op) -> Entry:
        if self._entry(op["key"], ("purchase", op["user"], op["credits"])):
            self.account(op["user"]).credited += op["credits"]
        return Entry(0, op["key"], "purchase", "stripe:clearing", f"user:{op['user']}", op["credits"], 0)

    def _reversal(self, op: Op) -> Entry:
        if self._entry(op["key"], ("reversal", op["user"], op["credits"])):
            self.account(op["user"]).reversed += op["credits"]
        return Entry(0, op["key"], "reversal", f"user:{op['user']}", "refund", op["credits"], 0)

    def _freeze(self, op: Op) -> Balance:
        first = self.freezes.get(op["key"])
        if first is not None:
            if first != (op["user"], op["frozen"]):
                raise _Refused("idempotency_conflict")
            return self.balance(op["user"])
        self.freezes[op["key"]] = (op["user"], op["frozen"])
        account = self.account(op["user"])
        account.frozen, account.reason = op["frozen"], op["reason"] if op["frozen"] else ""
        return self.balance(op["user"])

    def _hold(self, op: Op) -> Hold:
        existing = self.holds.get(op["gen"])
        if existing is not None:
            if (existing.user_id, existing.amount) != (op["user"], op["amount"]):
                raise _Refused("idempotency_conflict")
            return existing
        account = self.accounts.get(op["user"])
        if account is not None and account.frozen:
            raise _Refused("account_frozen")
        if self.balance(op["user"]).available < op["amount"]:
            raise _Refused("insufficient_credits")
        self.account(op["user"]).pending += op["amount"]
        hold = Hold(op["gen"], op["user"], op["amount"], "pending", self.now, self.now + op["timeout_s"])
        self.holds[op["gen"]] = hold
        return hold

    def _resolve(self, gen: str, state: str, reason: str) -> Hold:
        hold = self.holds[gen]
        account = self.account(hold.user_id)
        account.pending -= hold.amount
        if state == "posted":
            account.spent += hold.amount
            self.intents.append(gen)
        resolved = Hold(gen, hold.user_id, hold.amount, state, hold.created_at, hold.expires_at,  # type: ignore[arg-type]
                        self.now, reason)
        self.holds[gen] = resolved
        return resolved

    def _post(self, op: Op) -> Hold:
        hold = self.holds.get(op["gen"])
        if hold is None:
            raise _Refused("hold_not_found")
        if hold.state == "posted":
            return hold
        if hold.state == "voided":
            raise _Refused("hold_expired" if hold.reason == "expired" else "hold_resolved")
        if self.now >= hold.expires_at:
            self._resolve(op["gen"], "voided", "expired")  # kept: the error is raised after commit
            raise _Refused("hold_expired")
        return self._resolve(op["gen"], "posted", "")

    def _void(self, op: Op) -> Hold:
        hold = self.holds.get(op["gen"])
        if hold is None:
            raise _Refused("hold_not_found")
        if hold.state == "posted":
            raise _Refused("hold_resolved")
        if hold.state == "voided":
            return hold
        return self._resolve(op["gen"], "voided", op["reason"])

    def _sweep(self, op: Op) -> int:
        due = sorted((h.expires_at, g) for g, h in self.holds.items()
                     if h.state == "pending" and h.expires_at <= self.now)
        for _, gen in due[:op["limit"]]:
            self._resolve(gen, "voided", "expired")
        return min(len(due), op["limit"])

    def _settle(self, op: Op) -> Entry:
        gens, reference = op["gens"], ("burn_settle", len(op["gens"]), op["tx_id"])
        if op["key"] in self.entries:
            if self.entries[op["key"]] != reference:
                raise _Refused("idempotency_conflict")
            amount = sum(self.holds[g].amount for g in gens if g in self.holds)
            return Entry(0, op["key"], "burn_settle", "burn:outbox", "burn:settled", amount, 0)
        if any(g not in self.intents for g in gens):
            raise _Refused("burn_intent_not_found")
        if any(g in self.settled for g in gens):
            raise _Refused("burn_already_settled")
        self.entries[op["key"]] = reference
        self.settle_gens[op["key"]] = list(gens)
        self.settled.update(gens)
        amount = sum(self.holds[g].amount for g in gens)
        return Entry(0, op["key"], "burn_settle", "burn:outbox", "burn:settled", amount, 0)


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def next_op(rng: random.Random, model: Model, step: int) -> Op:
    """One random operation drawn from the model's state (deterministic for a given rng state)."""
    user = rng.choice(USERS)
    known_gens = sorted(model.holds) or ["g-none"]
    roll = rng.random()
    if roll < 0.14:
        key = rng.choice(sorted(model.entries)) if model.entries and rng.random() < 0.3 else f"pi{step}"
        return {"op": "purchase", "user": user, "credits": rng.randint(1, 4), "key": key}
    if roll < 0.17:
        return {"op": "reversal", "user": user, "credits": rng.randint(1, 3), "key": f"re{step}"}
    if roll < 0.21:
        key = rng.choice(sorted(model.freezes)) if model.freezes and rng.random() < 0.3 else f"fz{step}"
        return {"op": "freeze", "user": user, "frozen": rng.random() < 0.4, "reason": "dispute", "key": key}
    if roll < 0.45:
        gen = rng.choice(known_gens) if rng.random() < 0.15 else f"g{step}"
        return {"op": "hold", "user": user, "gen": gen, "amount": rng.choice((1, 1, 1, 2)),
                "timeout_s": float(rng.randint(5, 60))}
    if roll < 0.65:
        gen = f"g{step + 1}" if rng.random() < 0.05 else rng.choice(known_gens)  # sometimes before its hold
        return {"op": "post", "gen": gen}
    if roll < 0.75:
        return {"op": "void", "gen": rng.choice(known_gens), "reason": rng.choice(("inference_failed", "cancelled"))}
    if roll < 0.83:
        return {"op": "advance", "seconds": float(rng.randint(1, 40))}
    if roll < 0.88:
        return {"op": "sweep", "limit": rng.choice((1, 1000))}
    unsettled = model.outbox()
    if unsettled and rng.random() < 0.8:
        gens = rng.sample(unsettled, rng.randint(1, min(3, len(unsettled))))
        return {"op": "settle", "key": f"burn{step}", "gens": gens, "tx_id": f"tx{step}"}
    settles = sorted(k for k, v in model.entries.items() if v[0] == "burn_settle")
    if settles:  # a replay of an earlier settlement (same key, ids and tx)
        key = rng.choice(settles)
        return {"op": "settle", "key": key, "gens": model.settle_gens[key], "tx_id": model.entries[key][2]}
    return {"op": "settle", "key": f"burn{step}", "gens": [rng.choice(known_gens)], "tx_id": f"tx{step}"}


async def apply_to_ledger(ledger: Any, op: Op) -> Outcome:
    kind = op["op"]
    try:
        if kind == "advance":
            return ("ok", ("value", None))
        if kind == "purchase":
            value: Any = await ledger.credit_purchase(user_id=op["user"], credits=op["credits"], key=op["key"])
        elif kind == "reversal":
            value = await ledger.reverse_purchase(user_id=op["user"], credits=op["credits"], key=op["key"])
        elif kind == "freeze":
            value = await ledger.set_frozen(op["user"], op["frozen"], reason=op["reason"], key=op["key"])
        elif kind == "hold":
            value = await ledger.hold(user_id=op["user"], generation_id=op["gen"], amount=op["amount"],
                                      timeout_s=op["timeout_s"])
        elif kind == "post":
            value = await ledger.post(op["gen"])
        elif kind == "void":
            value = await ledger.void(op["gen"], reason=op["reason"])
        elif kind == "sweep":
            value = await ledger.void_expired(limit=op["limit"])
        else:
            value = await ledger.settle_burn(key=op["key"], generation_ids=op["gens"], tx_id=op["tx_id"])
    except GatewayError as exc:
        return ("error", exc.code)
    return ("ok", summarize(value))
