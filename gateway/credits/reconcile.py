"""``reconcile``: the ledger's invariants, recomputed from the append-only rows.

The queries are plain SQL that SQLite and PostgreSQL both read; each backend runs all of them in one
read transaction (one snapshot) and hands the rows to :func:`evaluate`, which is pure. Breach queries
return at most ``SAMPLE`` offending rows so a corrupt database gives a readable report.

Other domains extend it: ``register_check(name, fn)`` adds an async check (e.g. the burner's
"settled burn intents == tokens burned on chain") that ``python -m gateway reconcile`` runs after the
ledger's own, merging its breaches and totals into the one report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.credits.accounts import BURN_OUTBOX, BURN_SETTLED, REFUND, STRIPE_CLEARING
from gateway.credits.ledger import Ledger, ReconcileReport

if TYPE_CHECKING:
    from gateway.settings import GatewaySettings

__all__ = ["EXTRA_CHECKS", "QUERIES", "CheckResult", "ReconcileCheck", "evaluate", "register_check"]

SAMPLE = 20  # breach queries return at most this many rows (the LIMIT in each)

QUERIES: dict[str, str] = {
    "kinds": "SELECT kind, COUNT(*), COALESCE(SUM(amount), 0) FROM credit_entries GROUP BY kind",
    "account_nets": (
        "SELECT account, SUM(net) FROM (SELECT credit_account AS account, amount AS net FROM credit_entries"
        " WHERE kind IN ('purchase', 'reversal', 'post', 'burn_settle') UNION ALL SELECT debit_account, -amount"
        " FROM credit_entries WHERE kind IN ('purchase', 'reversal', 'post', 'burn_settle')) t"
        " WHERE account NOT LIKE 'user:%' GROUP BY account"
    ),
    "bad_shapes": (
        "SELECT id, kind, debit_account, credit_account, amount FROM credit_entries WHERE amount <= 0 OR NOT ("
        "(kind = 'purchase' AND debit_account = 'stripe:clearing' AND credit_account LIKE 'user:%')"
        " OR (kind = 'reversal' AND debit_account LIKE 'user:%' AND credit_account = 'refund')"
        " OR (kind IN ('hold', 'post', 'void') AND debit_account LIKE 'user:%' AND credit_account = 'burn:outbox')"
        " OR (kind = 'burn_settle' AND debit_account = 'burn:outbox' AND credit_account = 'burn:settled'))"
        " ORDER BY id LIMIT 20"
    ),
    # Per user, from the entries: purchased, reversed, spent, pending.
    "users_from_entries": (
        "SELECT substr(account, 6), SUM(CASE WHEN kind = 'purchase' THEN amount ELSE 0 END),"
        " SUM(CASE WHEN kind = 'reversal' THEN amount ELSE 0 END), SUM(CASE WHEN kind = 'post' THEN amount ELSE 0 END),"
        " SUM(CASE WHEN kind = 'hold' THEN amount WHEN kind IN ('post', 'void') THEN -amount ELSE 0 END)"
        " FROM (SELECT credit_account AS account, kind, amount FROM credit_entries WHERE kind = 'purchase'"
        " UNION ALL SELECT debit_account, kind, amount FROM credit_entries"
        " WHERE kind IN ('reversal', 'hold', 'post', 'void')) t GROUP BY account"
    ),
    "accounts": (
        "SELECT user_id, credits_posted, debits_reversed, debits_spent, debits_pending FROM credit_accounts"
    ),
    "pending_holds": "SELECT user_id, SUM(amount) FROM credit_holds WHERE state = 'pending' GROUP BY user_id",
    "hold_counts": (
        "SELECT (SELECT COUNT(*) FROM credit_holds), (SELECT COUNT(*) FROM credit_entries WHERE kind = 'hold'),"
        " (SELECT COUNT(*) FROM credit_holds WHERE state = 'pending'),"
        " (SELECT COUNT(*) FROM credit_holds WHERE state = 'posted'),"
        " (SELECT COUNT(*) FROM credit_holds WHERE state = 'voided')"
    ),
    # A hold row must match its hold entry and carry exactly the resolution its state says.
    "bad_holds": (
        "SELECT h.generation_id, h.state, e.id, p.id, v.id FROM credit_holds h"
        " LEFT JOIN credit_entries e ON e.id = h.entry_id"
        " LEFT JOIN credit_entries p ON p.pending_id = h.entry_id AND p.kind = 'post'"
        " LEFT JOIN credit_entries v ON v.pending_id = h.entry_id AND v.kind = 'void'"
        " WHERE e.id IS NULL OR e.kind <> 'hold' OR e.key <> 'hold:' || h.generation_id OR e.amount <> h.amount"
        " OR e.debit_account <> 'user:' || h.user_id OR NOT ("
        "(h.state = 'pending' AND p.id IS NULL AND v.id IS NULL)"
        " OR (h.state = 'posted' AND p.id IS NOT NULL AND v.id IS NULL AND p.created_at < h.expires_at)"
        " OR (h.state = 'voided' AND p.id IS NULL AND v.id IS NOT NULL))"
        " ORDER BY h.generation_id LIMIT 20"
    ),
    "multi_resolved": (
        "SELECT pending_id, COUNT(*) FROM credit_entries WHERE pending_id IS NOT NULL GROUP BY pending_id"
        " HAVING COUNT(*) > 1 LIMIT 20"
    ),
    # Every post has its burn intent (same generation, same amount); counts equal makes it a bijection.
    "posts_without_intent": (
        "SELECT p.key FROM credit_entries p LEFT JOIN burn_intents i ON i.generation_id = substr(p.key, 6)"
        " WHERE p.kind = 'post' AND (i.seq IS NULL OR i.amount <> p.amount OR i.entry_id <> p.id)"
        " ORDER BY p.id LIMIT 20"
    ),
    "intents": (
        "SELECT COUNT(i.seq), COALESCE(SUM(i.amount), 0), COUNT(s.generation_id),"
        " COALESCE(SUM(CASE WHEN s.generation_id IS NOT NULL THEN i.amount ELSE 0 END), 0)"
        " FROM burn_intents i LEFT JOIN burn_settlements s ON s.generation_id = i.generation_id"
    ),
    "bad_settlements": (
        "SELECT e.key, e.amount, SUM(i.amount) FROM burn_settlements s JOIN credit_entries e ON e.id = s.entry_id"
        " JOIN burn_intents i ON i.generation_id = s.generation_id GROUP BY e.id, e.key, e.amount, e.kind"
        " HAVING e.kind <> 'burn_settle' OR e.amount <> SUM(i.amount) LIMIT 20"
    ),
}

Rows = Sequence[Sequence[Any]]


def _int(value: Any) -> int:
    return int(value or 0)


@dataclass
class _Audit:
    breaches: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)

    def expect(self, ok: bool, message: str) -> None:
        if not ok:
            self.breaches.append(message)

    def rows(self, rows: Rows, message: str) -> None:
        for row in rows:
            self.breaches.append(f"{message}: {tuple(row)}")


def _check_accounts(audit: _Audit, r: Mapping[str, Rows], kind_sum: dict[str, int]) -> None:
    nets = {str(a): _int(n) for a, n in r["account_nets"]}
    from_entries = {str(u): tuple(_int(x) for x in rest) for u, *rest in r["users_from_entries"]}
    cached = {str(u): tuple(_int(x) for x in rest) for u, *rest in r["accounts"]}
    user_net = sum(p - rv - s for p, rv, s, _ in from_entries.values())
    audit.expect(sum(nets.values()) + user_net == 0, f"posted entries do not sum to zero: {nets}, users {user_net}")
    audit.expect(nets.get(STRIPE_CLEARING, 0) == -kind_sum.get("purchase", 0), "stripe:clearing != -purchases")
    audit.expect(nets.get(REFUND, 0) == kind_sum.get("reversal", 0), "refund != reversals")
    pending_by_user = {str(u): _int(a) for u, a in r["pending_holds"]}
    for user, (purchased, reversed_, spent, pending) in sorted(from_entries.items()):
        if cached.get(user, (0, 0, 0, 0)) != (purchased, reversed_, spent, pending):
            audit.breaches.append(f"user {user}: balance row {cached.get(user)} != entries"
                                  f" {(purchased, reversed_, spent, pending)} (credited, reversed, spent, pending)")
        if pending != pending_by_user.get(user, 0):
            audit.breaches.append(f"user {user}: pending {pending} != open holds {pending_by_user.get(user, 0)}")
        if purchased - spent - pending < 0:
            audit.breaches.append(f"user {user}: spent {spent} + pending {pending} exceeds purchased {purchased}"
                                  " (below zero, not through a reversal)")
    for user in sorted(set(cached) - set(from_entries)):
        audit.expect(cached[user] == (0, 0, 0, 0), f"user {user}: balance row {cached[user]} without entries")


def evaluate(r: Mapping[str, Rows]) -> ReconcileReport:
    """The report from the rows of every query in :data:`QUERIES`."""
    audit = _Audit()
    kind_sum = {str(k): _int(s) for k, _n, s in r["kinds"]}
    kind_count = {str(k): _int(n) for k, n, _s in r["kinds"]}
    audit.rows(r["bad_shapes"], "entry with wrong accounts or amount for its kind")
    _check_accounts(audit, r, kind_sum)

    holds, hold_entries, pending, posted, voided = (_int(x) for x in r["hold_counts"][0])
    audit.expect(holds == hold_entries, f"{hold_entries} hold entries but {holds} hold rows")
    audit.expect(posted == kind_count.get("post", 0), f"{posted} posted holds but {kind_count.get('post', 0)} posts")
    audit.expect(voided == kind_count.get("void", 0), f"{voided} voided holds but {kind_count.get('void', 0)} voids")
    audit.rows(r["bad_holds"], "hold whose state disagrees with its entries (generation, state, hold, post, void)")
    audit.rows(r["multi_resolved"], "hold resolved more than once (hold entry id, resolutions)")

    intents, intent_sum, settled, settled_sum = (_int(x) for x in r["intents"][0])
    spent = kind_sum.get("post", 0)
    nets = {str(a): _int(n) for a, n in r["account_nets"]}
    audit.expect(intents == kind_count.get("post", 0), f"{intents} burn intents but {kind_count.get('post', 0)} posts")
    audit.expect(spent == intent_sum, f"credits spent {spent} != credits in burn intents {intent_sum}")
    audit.rows(r["posts_without_intent"], "post without its burn intent")
    audit.expect(nets.get(BURN_OUTBOX, 0) == intent_sum - settled_sum,
                 f"burn:outbox {nets.get(BURN_OUTBOX, 0)} != unsettled intents {intent_sum - settled_sum}")
    audit.expect(nets.get(BURN_SETTLED, 0) == settled_sum,
                 f"burn:settled {nets.get(BURN_SETTLED, 0)} != settled intents {settled_sum}")
    audit.rows(r["bad_settlements"], "burn settlement whose amount != its intents (key, amount, intents)")

    audit.totals.update({f"entries_{k}": kind_count[k] for k in sorted(kind_count)})
    audit.totals.update({f"amount_{k}": kind_sum[k] for k in sorted(kind_sum)})
    audit.totals.update(holds=holds, holds_pending=pending, holds_posted=posted, holds_voided=voided,
                        burn_intents=intents, burn_intents_settled=settled, credits_spent=spent,
                        credits_in_outbox=intent_sum - settled_sum, credits_settled=settled_sum)
    return ReconcileReport(ok=not audit.breaches, breaches=audit.breaches, totals=audit.totals)


@dataclass(frozen=True)
class CheckResult:
    breaches: list[str]
    totals: dict[str, int] = field(default_factory=dict)


ReconcileCheck = Callable[["GatewaySettings", Ledger], Awaitable[CheckResult]]
EXTRA_CHECKS: dict[str, ReconcileCheck] = {}


def register_check(name: str, check: ReconcileCheck) -> None:
    """Add a check that ``python -m gateway reconcile`` runs after the ledger's (e.g. on-chain burns).

    ``check(settings, ledger)`` returns its breaches (empty = fine) and totals; an exception it raises
    is reported as a breach of that check, so a check that cannot run never passes silently."""
    EXTRA_CHECKS[name] = check
