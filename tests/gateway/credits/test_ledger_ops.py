"""Every ledger method and result code, on both backends (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest

from gateway.credits.ledger import (
    INSUFFICIENT_CREDITS_MESSAGE,
    AccountFrozen,
    HoldExpired,
    HoldNotFound,
    HoldResolved,
    IdempotencyConflict,
    InsufficientCredits,
)
from gateway.credits.results import BurnAlreadySettled, BurnIntentNotFound
from gateway.credits.service import LedgerService
from gateway.credits.validation import LedgerInputError
from tests.gateway.credits.conftest import FakeClock


async def _funded(ledger: LedgerService, user: str = "u1", credits: int = 10) -> None:
    await ledger.credit_purchase(user_id=user, credits=credits, key=f"stripe:pi:{user}")


# -- purchases ---------------------------------------------------------------------------------------

async def test_purchase_credits_the_user_from_clearing(ledger: LedgerService) -> None:
    entry = await ledger.credit_purchase(user_id="u1", credits=10, key="stripe:pi:1", reference={"pack": "pack10"})
    assert (entry.kind, entry.debit_account, entry.credit_account, entry.amount) == (
        "purchase", "stripe:clearing", "user:u1", 10)
    assert entry.reference == {"pack": "pack10"}
    balance = await ledger.balance("u1")
    assert (balance.credited, balance.spent, balance.pending, balance.available) == (10, 0, 0, 10)
    assert not balance.frozen


async def test_purchase_replay_returns_the_first_entry_and_credits_once(ledger: LedgerService) -> None:
    first = await ledger.credit_purchase(user_id="u1", credits=10, key="stripe:pi:1")
    again = await ledger.credit_purchase(user_id="u1", credits=10, key="stripe:pi:1", reference={"via": "webhook"})
    assert again == first
    assert (await ledger.balance("u1")).available == 10


async def test_purchase_key_reused_for_another_amount_is_a_conflict(ledger: LedgerService) -> None:
    await ledger.credit_purchase(user_id="u1", credits=10, key="stripe:pi:1")
    with pytest.raises(IdempotencyConflict):
        await ledger.credit_purchase(user_id="u1", credits=20, key="stripe:pi:1")
    with pytest.raises(IdempotencyConflict):
        await ledger.credit_purchase(user_id="u2", credits=10, key="stripe:pi:1")
    with pytest.raises(IdempotencyConflict):
        await ledger.reverse_purchase(user_id="u1", credits=10, key="stripe:pi:1")
    assert (await ledger.balance("u1")).available == 10
    assert (await ledger.balance("u2")).available == 0


async def test_unknown_user_has_a_zero_balance(ledger: LedgerService) -> None:
    balance = await ledger.balance("nobody")
    assert (balance.credited, balance.spent, balance.pending, balance.available, balance.frozen) == (0, 0, 0, 0, False)


async def test_reversal_may_take_the_balance_below_zero(ledger: LedgerService) -> None:
    await _funded(ledger, credits=2)
    await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    await ledger.post("g1")
    entry = await ledger.reverse_purchase(user_id="u1", credits=2, key="stripe:re:1")
    assert (entry.kind, entry.debit_account, entry.credit_account) == ("reversal", "user:u1", "refund")
    assert await ledger.reverse_purchase(user_id="u1", credits=2, key="stripe:re:1") == entry
    balance = await ledger.balance("u1")
    assert (balance.credited, balance.spent, balance.available) == (0, 1, -1)
    with pytest.raises(InsufficientCredits):
        await ledger.hold(user_id="u1", generation_id="g2", timeout_s=60)
    assert (await ledger.reconcile()).ok


# -- freezes -----------------------------------------------------------------------------------------

async def test_frozen_account_refuses_holds_until_unfrozen(ledger: LedgerService) -> None:
    await _funded(ledger)
    balance = await ledger.set_frozen("u1", True, reason="dispute_open", key="stripe:evt:dp1")
    assert balance.frozen and balance.frozen_reason == "dispute_open"
    with pytest.raises(AccountFrozen) as refused:
        await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    assert refused.value.status == 403 and "dispute_open" in refused.value.detail
    # the replay of the freeze is a no-op, even after the unfreeze
    assert not (await ledger.set_frozen("u1", False, reason="dispute_won", key="stripe:evt:dp2")).frozen
    assert not (await ledger.set_frozen("u1", True, reason="dispute_open", key="stripe:evt:dp1")).frozen
    assert (await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)).state == "pending"
    with pytest.raises(IdempotencyConflict):
        await ledger.set_frozen("u1", True, reason="x", key="stripe:evt:dp2")


async def test_freezing_an_unknown_user_creates_a_frozen_empty_account(ledger: LedgerService) -> None:
    balance = await ledger.set_frozen("new", True, reason="manual", key="op:1")
    assert balance.frozen and balance.available == 0


# -- holds -------------------------------------------------------------------------------------------

async def test_hold_reserves_and_counts_as_pending(ledger: LedgerService, clock: FakeClock) -> None:
    await _funded(ledger, credits=3)
    hold = await ledger.hold(user_id="u1", generation_id="g1", amount=2, timeout_s=60)
    assert (hold.state, hold.amount, hold.created_at, hold.expires_at) == ("pending", 2, clock.now, clock.now + 60)
    balance = await ledger.balance("u1")
    assert (balance.pending, balance.available) == (2, 1)
    assert await ledger.get_hold("g1") == hold
    assert await ledger.get_hold("missing") is None


async def test_hold_replay_returns_the_existing_hold(ledger: LedgerService, clock: FakeClock) -> None:
    await _funded(ledger, credits=1)
    first = await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    clock.advance(5)
    assert await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60) == first
    assert (await ledger.balance("u1")).pending == 1
    await ledger.post("g1")
    assert (await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)).state == "posted"
    with pytest.raises(IdempotencyConflict):
        await ledger.hold(user_id="u2", generation_id="g1", timeout_s=60)
    with pytest.raises(IdempotencyConflict):
        await ledger.hold(user_id="u1", generation_id="g1", amount=2, timeout_s=60)


async def test_hold_without_enough_credits_is_402_and_writes_nothing(ledger: LedgerService) -> None:
    with pytest.raises(InsufficientCredits) as refused:
        await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    assert refused.value.status == 402 and refused.value.detail == INSUFFICIENT_CREDITS_MESSAGE
    await _funded(ledger, credits=1)
    with pytest.raises(InsufficientCredits):
        await ledger.hold(user_id="u1", generation_id="g2", amount=2, timeout_s=60)
    assert await ledger.get_hold("g1") is None and await ledger.get_hold("g2") is None
    # a refused generation id can be retried once there are credits
    assert (await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)).state == "pending"
    report = await ledger.reconcile()
    assert report.ok and report.totals["entries_hold"] == 1


# -- post ----------------------------------------------------------------------------------------------

async def test_post_spends_and_writes_the_burn_intent(ledger: LedgerService, clock: FakeClock) -> None:
    await _funded(ledger, credits=2)
    await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    clock.advance(3)
    posted = await ledger.post("g1")
    assert (posted.state, posted.resolved_at) == ("posted", clock.now)
    balance = await ledger.balance("u1")
    assert (balance.spent, balance.pending, balance.available) == (1, 0, 1)
    [intent] = await ledger.outbox()
    assert (intent.generation_id, intent.user_id, intent.amount, intent.created_at) == ("g1", "u1", 1, clock.now)
    assert await ledger.post("g1") == posted  # replay
    assert len(await ledger.outbox()) == 1


async def test_post_unknown_hold_is_404(ledger: LedgerService) -> None:
    with pytest.raises(HoldNotFound) as missing:
        await ledger.post("nope")
    assert missing.value.status == 404


async def test_post_of_a_voided_hold_is_409(ledger: LedgerService) -> None:
    await _funded(ledger)
    await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    await ledger.void("g1", reason="inference_failed")
    with pytest.raises(HoldResolved) as resolved:
        await ledger.post("g1")
    assert resolved.value.status == 409 and not isinstance(resolved.value, HoldExpired)
    assert await ledger.outbox() == []


async def test_post_after_expiry_voids_it_and_raises_hold_expired(ledger: LedgerService, clock: FakeClock) -> None:
    await _funded(ledger, credits=1)
    await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    clock.advance(60)  # expires_at is exclusive: at expires_at the hold is already expired
    with pytest.raises(HoldExpired):
        await ledger.post("g1")
    hold = await ledger.get_hold("g1")
    assert hold is not None and (hold.state, hold.reason) == ("voided", "expired")
    assert (await ledger.balance("u1")).available == 1
    with pytest.raises(HoldExpired):  # and stays unpostable
        await ledger.post("g1")
    assert await ledger.outbox() == []
    assert (await ledger.reconcile()).ok


# -- void ----------------------------------------------------------------------------------------------

async def test_void_releases_once(ledger: LedgerService, clock: FakeClock) -> None:
    await _funded(ledger, credits=1)
    await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    voided = await ledger.void("g1", reason="safety_filtered")
    assert (voided.state, voided.reason, voided.resolved_at) == ("voided", "safety_filtered", clock.now)
    assert await ledger.void("g1", reason="other") == voided  # replay keeps the first reason
    assert (await ledger.balance("u1")).available == 1


async def test_void_of_a_posted_hold_is_409_and_unknown_is_404(ledger: LedgerService) -> None:
    await _funded(ledger)
    await ledger.hold(user_id="u1", generation_id="g1", timeout_s=60)
    await ledger.post("g1")
    with pytest.raises(HoldResolved):
        await ledger.void("g1", reason="cancelled")
    with pytest.raises(HoldNotFound):
        await ledger.void("nope", reason="cancelled")
    assert (await ledger.balance("u1")).spent == 1


async def test_void_expired_sweeps_only_due_holds(ledger: LedgerService, clock: FakeClock) -> None:
    await _funded(ledger, credits=5)
    for i, timeout in enumerate((10, 20, 30)):
        await ledger.hold(user_id="u1", generation_id=f"g{i}", timeout_s=timeout)
    assert await ledger.void_expired() == 0
    clock.advance(20)
    assert await ledger.void_expired() == 2
    assert await ledger.void_expired() == 0
    states = [(h.state, h.reason) for h in [await ledger.get_hold(f"g{i}") for i in range(3)] if h]
    assert states == [("voided", "expired"), ("voided", "expired"), ("pending", "")]
    assert await ledger.void_expired(now=clock.now + 100, limit=1) == 1
    with pytest.raises(HoldExpired):
        await ledger.post("g2")
    assert (await ledger.balance("u1")).available == 5


# -- outbox and burn settlement ------------------------------------------------------------------------

async def test_outbox_pages_and_settle_burn_drains_it(ledger: LedgerService) -> None:
    await _funded(ledger, credits=5)
    for i in range(4):
        await ledger.hold(user_id="u1", generation_id=f"g{i}", timeout_s=60)
        await ledger.post(f"g{i}")
    intents = await ledger.outbox()
    assert [i.generation_id for i in intents] == ["g0", "g1", "g2", "g3"]
    assert [i.generation_id for i in await ledger.outbox(after_seq=intents[1].seq, limit=1)] == ["g2"]
    entry = await ledger.settle_burn(key="burn:tx1", generation_ids=["g0", "g2"], tx_id="tx1")
    assert (entry.kind, entry.debit_account, entry.credit_account, entry.amount) == (
        "burn_settle", "burn:outbox", "burn:settled", 2)
    assert await ledger.settle_burn(key="burn:tx1", generation_ids=["g0", "g2"], tx_id="tx1") == entry
    assert [i.generation_id for i in await ledger.outbox()] == ["g1", "g3"]
    assert await ledger.outbox_depth() == 2
    with pytest.raises(BurnAlreadySettled):
        await ledger.settle_burn(key="burn:tx2", generation_ids=["g1", "g2"], tx_id="tx2")
    with pytest.raises(BurnIntentNotFound):
        await ledger.settle_burn(key="burn:tx3", generation_ids=["nope"], tx_id="tx3")
    with pytest.raises(IdempotencyConflict):
        await ledger.settle_burn(key="burn:tx1", generation_ids=["g1"], tx_id="other")
    report = await ledger.reconcile()
    assert report.ok, report.breaches
    assert (report.totals["credits_in_outbox"], report.totals["credits_settled"]) == (2, 2)


# -- input checks --------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda lg: lg.credit_purchase(user_id="", credits=1, key="k"),
    lambda lg: lg.credit_purchase(user_id="u", credits=0, key="k"),
    lambda lg: lg.credit_purchase(user_id="u", credits=True, key="k"),
    lambda lg: lg.credit_purchase(user_id="u", credits=10**10, key="k"),
    lambda lg: lg.credit_purchase(user_id="u", credits=1, key="hold:g1"),
    lambda lg: lg.credit_purchase(user_id="u", credits=1, key="x" * 201),
    lambda lg: lg.credit_purchase(user_id="u\n", credits=1, key="k"),
    lambda lg: lg.credit_purchase(user_id="u", credits=1, key="k", reference={"x": float("nan")}),
    lambda lg: lg.credit_purchase(user_id="u", credits=1, key="k", reference={"x": "y" * 5000}),
    lambda lg: lg.hold(user_id="u", generation_id="g", timeout_s=0),
    lambda lg: lg.hold(user_id="u", generation_id="g", timeout_s=float("inf")),
    lambda lg: lg.hold(user_id="u", generation_id="g", amount=-1, timeout_s=5),
    lambda lg: lg.void("g", reason=""),
    lambda lg: lg.set_frozen("u", 1, reason="r", key="k"),
    lambda lg: lg.outbox(limit=0),
    lambda lg: lg.outbox(after_seq=-1),
    lambda lg: lg.settle_burn(key="k", generation_ids=[], tx_id="t"),
    lambda lg: lg.settle_burn(key="k", generation_ids=["a", "a"], tx_id="t"),
])
async def test_bad_arguments_are_400_and_write_nothing(ledger: LedgerService, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LedgerInputError) as bad:
        await call(ledger)
    assert bad.value.status == 400
    assert (await ledger.reconcile()).totals.get("entries_purchase", 0) == 0
