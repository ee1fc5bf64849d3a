"""The signer's core: decode, check, record, sign, audit — for a batch of requests at a time.

One batch runs in one SQLite ``BEGIN IMMEDIATE`` transaction; its audit lines are written with one
write just before the commit, fsynced alongside it; only then do witnesses leave. A request writes
state only once, after every check passed, so one refusal never undoes its neighbours. Synchronous and thread-confined:
``signer.batcher`` calls :meth:`SignerCore.process` from a single worker thread.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from common import merkle
from signer.audit import AuditLog
from signer.errors import KeyStoreError, MalformedRequest, Refusal
from signer.identity import Identity
from signer.keystore import KeyRole, KeyStore
from signer.policy import BurnPlan, check_burn, check_mint, check_slot
from signer.resign import check_resign, input_ref
from signer.state import DayTotal, SignedTx, StateStore
from signer.tx import DecodedTx, decode_transaction

__all__ = ["BurnRequest", "Denied", "Failed", "MintRequest", "Outcome", "PendingBatch", "PreRefused", "Request",
           "Signed", "SignerCore", "utc_day", "witness_set_cbor"]

MAX_ID_CHARS = 128
MAX_NOTE_CHARS = 256
PURPOSE_BURN_BATCH = 1


MAIN_ENDPOINT = "main"
CEREMONY_ENDPOINT = "ceremony"


@dataclass(frozen=True)
class BurnRequest:
    tx_cbor: bytes
    purpose: int
    generation_ids: tuple[str, ...]
    request_id: str = ""
    current_slot: int = 0
    caller: str = ""
    peer: dict[str, Any] = field(default_factory=dict)  # transport identity for the audit line
    endpoint: str = MAIN_ENDPOINT


@dataclass(frozen=True)
class MintRequest:
    tx_cbor: bytes
    quantity: int
    operator_note: str = ""
    current_slot: int = 0
    caller: str = ""
    peer: dict[str, Any] = field(default_factory=dict)
    endpoint: str = CEREMONY_ENDPOINT


@dataclass(frozen=True)
class PreRefused:
    """A request the transport refused before the core could read it (too large, far too many ids, a caller
    not on the allow-list): only its summary is kept, and it is audited like every other refusal."""

    kind: str  # "burn" or "mint"
    reason: str  # INVALID_ARGUMENT (then ``invalid``) or a RefusalReason name
    detail: str
    summary: dict[str, Any] = field(default_factory=dict)
    caller: str = ""
    peer: dict[str, Any] = field(default_factory=dict)

    @property
    def invalid(self) -> bool:
        return self.reason == "INVALID_ARGUMENT"


Request = BurnRequest | MintRequest | PreRefused


@dataclass(frozen=True)
class Signed:
    tx_id: str
    witness_set_cbor: bytes
    audit_id: str
    tokens: int = 0
    replay: bool = False


@dataclass(frozen=True)
class Denied:
    """A refusal (``invalid`` False) or a malformed request (``invalid`` True), both audited."""

    reason: str
    detail: str
    audit_id: str
    invalid: bool = False


@dataclass(frozen=True)
class Failed:
    """The signer could not decide (key store, disk); the caller may retry later."""

    detail: str


Outcome = Signed | Denied | Failed


class PendingBatch:
    """Decisions whose state transaction is open and whose audit lines are written but not synced."""

    def __init__(self, core: SignerCore, outcomes: list[Outcome], written: bool) -> None:
        self._core = core
        self._outcomes = outcomes
        self._written = written

    def commit(self, *, overlap: bool = True) -> list[Outcome]:
        """Make the decisions durable; the outcomes may leave only after this returns.

        ``overlap``: the audit log's fsync runs on its own thread alongside the database's commit (the
        shorter wait). Otherwise the log is synced first and the state committed after, on this thread:
        no hand-over (about 200 µs less CPU here, and the same rate with one caller on this disk), and
        a power cut between the two leaves the log ahead of the state, never behind it.
        """
        if not overlap:
            try:
                if self._written:
                    self._core.audit.sync()
            except BaseException:
                self._core.state.rollback()
                raise
            self._core.state.commit()
            return self._outcomes
        synced = self._core.audit.sync_in_background() if self._written else None
        try:
            self._core.state.commit()
        finally:
            if synced is not None:
                synced.result()
        return self._outcomes


def utc_day(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).date().isoformat()


def witness_set_cbor(witnesses: Sequence[tuple[bytes, bytes]]) -> bytes:
    """CBOR ``{0: [[vkey, signature], ...]}`` for 32-byte keys and 64-byte signatures (at most 23), written
    directly: ``cbor2.dumps`` would produce the same bytes at several times the cost."""
    if len(witnesses) > 23 or any(len(v) != 32 or len(s) != 64 for v, s in witnesses):
        raise ValueError("witnesses are up to 23 pairs of a 32-byte key and a 64-byte signature")
    parts = [b"\xa1\x00", bytes([0x80 | len(witnesses)])]
    for vkey, signature in witnesses:
        parts += (b"\x82\x58\x20", vkey, b"\x58\x40", signature)
    return b"".join(parts)


def _check_generation_ids(ids: Sequence[str]) -> None:
    if not ids:
        raise MalformedRequest("a burn batch needs at least one generation id")
    for gid in ids:
        if not (1 <= len(gid) <= MAX_ID_CHARS and gid.isascii() and gid.isprintable() and " " not in gid):
            raise MalformedRequest(f"generation ids are 1..{MAX_ID_CHARS} printable ASCII characters without spaces")
    if len(set(ids)) != len(ids):
        raise MalformedRequest("a generation id appears twice in the request")


@dataclass
class _Audit:
    """The audit entry being built for one request, and the signer clock's reading for it."""

    kind: str
    request: dict[str, Any]
    now: float
    ts: str
    day: str
    extra: dict[str, Any] = field(default_factory=dict)


class SignerCore:
    def __init__(self, identity: Identity, keys: KeyStore, state: StateStore, audit: AuditLog, *,
                 mint_ceremony_quantity: int | None = None, clock: Callable[[], float] = time.time) -> None:
        self.identity = identity
        self.policy = identity.policy
        self.keys = keys
        self.state = state
        self.audit = audit
        # The operator's mint ceremony: the one positive quantity it may sign, on its own socket, once.
        self.mint_ceremony_quantity = mint_ceremony_quantity
        self._ceremony_tx: str | None = None
        self._clock = clock
        self._public = {role: keys.public_key(role) for role in keys.roles()}

    @property
    def mint_ceremony_enabled(self) -> bool:
        return self.mint_ceremony_quantity is not None

    def today(self) -> DayTotal:
        """What was signed today (UTC, signer clock), committed."""
        return self.state.read_day_total(utc_day(self._clock()))

    def tokens_signed_today(self) -> int:
        return self.today().tokens

    def clock_slot(self) -> int:
        clock = self.policy.clock
        return 0 if clock is None else clock.slot_at(self._clock())

    @property
    def decide_on_loop(self) -> bool:
        """True when deciding is quick CPU work (in-memory keys); a token may block on its device."""
        return self.keys.kind == "file"

    @property
    def durable(self) -> bool:
        """True when committing waits for the disk (fsync on): keep it off the event loop."""
        return self.state.fsync

    def process(self, requests: Sequence[Request]) -> list[Outcome]:
        """Decide every request and make the decisions durable; StateError/AuditError when that failed."""
        return self.decide(requests).commit()

    def decide(self, requests: Sequence[Request]) -> PendingBatch:
        """Decide every request inside one open state transaction; the audit lines reach the file (not yet
        fsynced). Nothing may leave until :meth:`PendingBatch.commit` returns."""
        mark = self.audit.checkpoint()
        written = False
        self.state.begin()
        try:
            outcomes = [self._decide(request) for request in requests]
            seq, head, _ = self.audit.checkpoint()
            self.state.set_audit_head(seq, head)
            written = self.audit.write()
        except BaseException:
            self.state.rollback()
            if not written:  # nothing reached the file: forget the queued lines
                self.audit.rollback(mark)
            raise
        return PendingBatch(self, outcomes, written)

    def _decide(self, request: Request) -> Outcome:
        entry = self._entry(request)
        if isinstance(request, PreRefused):
            decision = "invalid" if request.invalid else "deny"
            return Denied(request.reason, request.detail, self._record(entry, decision, request.reason, request.detail),
                          invalid=request.invalid)
        mark = self.audit.checkpoint()
        try:
            # Every refusal is raised before the one write (state.record), so a refused request leaves the
            # batch's transaction untouched; a failing write is a StateError that aborts the whole batch.
            if isinstance(request, BurnRequest):
                return self._burn(request, entry)
            return self._mint(request, entry)
        except Refusal as refusal:
            self.audit.rollback(mark)
            return Denied(refusal.reason, refusal.detail, self._record(entry, "deny", refusal.reason, refusal.detail))
        except MalformedRequest as exc:
            self.audit.rollback(mark)
            return Denied("INVALID_ARGUMENT", str(exc), self._record(entry, "invalid", "INVALID_ARGUMENT", str(exc)),
                          invalid=True)
        except KeyStoreError as exc:
            self.audit.rollback(mark)
            self._record(entry, "error", "KEY_STORE", str(exc))
            return Failed(str(exc))

    def _entry(self, request: Request) -> _Audit:
        now = self._clock()
        when = dt.datetime.fromtimestamp(now, dt.UTC)
        summary: dict[str, Any] = {"caller": request.caller[:200]}
        if request.peer:
            summary["peer"] = request.peer
        if isinstance(request, PreRefused):
            summary.update(request.summary)
            kind = request.kind
        elif isinstance(request, BurnRequest):
            summary.update(current_slot=request.current_slot, tx_bytes=len(request.tx_cbor),
                           request_id=request.request_id[:200], purpose=request.purpose,
                           generation_ids=len(request.generation_ids))
            kind = "burn"
        else:
            summary.update(current_slot=request.current_slot, tx_bytes=len(request.tx_cbor),
                           quantity=request.quantity, operator_note=request.operator_note[:MAX_NOTE_CHARS])
            kind = "mint"
        if not isinstance(request, PreRefused) and request.endpoint != MAIN_ENDPOINT:
            summary["endpoint"] = request.endpoint
        return _Audit(kind, summary, now, when.isoformat(timespec="milliseconds"), when.date().isoformat())

    def _record(self, entry: _Audit, decision: str, reason: str = "", detail: str = "") -> str:
        line: dict[str, Any] = {"ts": entry.ts, "kind": entry.kind, "request": entry.request, "decision": decision,
                                **entry.extra}
        if reason:
            line["reason"], line["detail"] = reason, detail[:500]
        return self.audit.append(line)

    def _decode(self, tx_cbor: bytes, entry: _Audit) -> DecodedTx:
        tx = decode_transaction(tx_cbor)
        entry.request["tx_id"] = tx.tx_id.hex()
        return tx

    def _witness_set(self, tx_id: bytes, roles: Sequence[KeyRole]) -> bytes:
        return witness_set_cbor([(self._public[role], self.keys.sign(role, tx_id)) for role in roles])

    def _burn(self, request: BurnRequest, entry: _Audit) -> Signed:
        if request.endpoint != MAIN_ENDPOINT:
            raise Refusal("CEREMONY_ONLY", "the mint ceremony's socket signs nothing but the ceremony")
        if request.purpose != PURPOSE_BURN_BATCH:
            raise Refusal("PURPOSE_UNSUPPORTED", f"purpose {request.purpose} is not supported")
        ids = request.generation_ids
        if len(ids) > self.policy.caps.max_generation_ids:
            raise Refusal("TOO_MANY_GENERATION_IDS",
                          f"{len(ids)} generation ids; at most {self.policy.caps.max_generation_ids} per request")
        _check_generation_ids(ids)
        check_slot(request.current_slot, self.policy, entry.now)
        root = merkle.merkle_root(ids)
        entry.request["root"] = root.hex()
        tx = self._decode(request.tx_cbor, entry)
        plan = check_burn(tx, ids, request.current_slot, self.policy, root)
        tx_id = plan.tx_id.hex()
        entry.extra.update(tokens=plan.tokens, fee_lovelace=plan.fee_lovelace, sink_lovelace=plan.sink_lovelace)
        roles: list[KeyRole] = ["payment", "policy"] if plan.sign_with_policy_key else ["payment"]
        used = self.state.used_generation_ids(ids)
        if used:
            # A transaction signed before has spent its ids, so only then can this be a retry of it.
            previous = self.state.signed_tx(tx_id)
            if previous is not None and previous.kind == "burn" and previous.root == plan.root.hex():
                # Same body ⇒ same metadata root ⇒ same ids: an idempotent retry, not counted twice.
                witness = self._witness_set(plan.tx_id, roles)
                entry.extra["replay"] = True
                return Signed(tx_id, witness, self._record(entry, "allow"), plan.tokens, replay=True)
            earlier = self.state.earlier_txs(used)
            check_resign(earlier, plan.inputs, request.current_slot, used)
            entry.extra.update(resign_of=sorted(tx.tx_id for tx in earlier), resigned_ids=len(used))
        self._check_day(entry.day, plan)
        witness = self._witness_set(plan.tx_id, roles)
        audit_id = self._record(entry, "allow")
        self.state.record(SignedTx(tx_id, "burn", plan.tokens, entry.day, entry.request["root"], audit_id,
                                   plan.lovelace, plan.ttl, tuple(input_ref(t, i) for t, i in plan.inputs)),
                          ids, entry.now, resigned=used)
        return Signed(tx_id, witness, audit_id, plan.tokens)

    def _check_day(self, day: str, plan: BurnPlan | None, lovelace: int = 0) -> None:
        """The per-UTC-day caps, read inside the batch's transaction (so concurrent batches cannot race)."""
        caps, today = self.policy.caps, self.state.day_total(day)
        tokens = plan.tokens if plan else 0
        lovelace = plan.lovelace if plan else lovelace
        if today.tokens + tokens > caps.max_tokens_per_day:
            raise Refusal("TOKENS_PER_DAY_OVER_CAP", f"{today.tokens} tokens signed on {day} (UTC); {tokens} more "
                          f"exceeds the cap of {caps.max_tokens_per_day}")
        if today.lovelace + lovelace > caps.max_lovelace_per_day:
            raise Refusal("LOVELACE_PER_DAY_OVER_CAP", f"{today.lovelace} lovelace (fees + sink) signed away on "
                          f"{day} (UTC); {lovelace} more exceeds the cap of {caps.max_lovelace_per_day}")

    def _mint(self, request: MintRequest, entry: _Audit) -> Signed:
        if request.endpoint != CEREMONY_ENDPOINT or self.mint_ceremony_quantity is None:
            raise Refusal("MINT_CEREMONY_DISABLED", "the mint ceremony is served only on its own socket, while the "
                          "operator runs it (serve --mint-ceremony N)")
        if request.quantity <= 0:
            raise MalformedRequest("the ceremony's quantity must be positive")
        if request.quantity != self.mint_ceremony_quantity:
            raise Refusal("CEREMONY_QUANTITY_MISMATCH", f"the request mints {request.quantity} $CREATE; the operator "
                          f"started this ceremony for exactly {self.mint_ceremony_quantity}")
        check_slot(request.current_slot, self.policy, entry.now)
        tx = self._decode(request.tx_cbor, entry)
        fee = check_mint(tx, request.quantity, request.current_slot, self.policy)
        tx_id = tx.tx_id.hex()
        entry.extra.update(tokens=request.quantity, fee_lovelace=fee)
        witness = self._witness_set(tx.tx_id, ["payment", "policy"])
        if self.state.signed_tx(tx_id) is not None:
            entry.extra["replay"] = True
            return Signed(tx_id, witness, self._record(entry, "allow"), request.quantity, replay=True)
        if self._ceremony_tx is not None:
            raise Refusal("CEREMONY_USED", f"this ceremony already signed its one mint ({self._ceremony_tx}); "
                          "restart the signer to run another")
        self._check_day(entry.day, None, fee)
        audit_id = self._record(entry, "allow")
        self.state.record(SignedTx(tx_id, "mint", request.quantity, entry.day, "", audit_id, fee), (), entry.now)
        self._ceremony_tx = tx_id
        return Signed(tx_id, witness, audit_id, request.quantity)
