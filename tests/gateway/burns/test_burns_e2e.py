"""Card-path spends → batched burns on the devnet → receipts that verify against the chain alone.

Devnet, indexer, signer and gateway are real processes (see conftest.py); intents are written through
the real ledger (purchase, hold, post), as the card path writes them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gateway.burns.verify import verify_receipt
from gateway.web3.chain import GrpcChain
from tests.gateway.burns.conftest import CONFIRMATIONS, Stack, batches_for, settled, spend, wait_for

pytestmark = pytest.mark.slow
# Rollback tests need time between a burn's block and its finality, and a TTL that passes in seconds.
SLOW_FINALITY = {"GATEWAY_BURN_CONFIRMATIONS": "5", "GATEWAY_BURN_TTL_SLOTS": "10"}


def all_final(stack: Stack, ids: list[str]) -> bool:
    batches = batches_for(stack, ids)
    return bool(batches) and all(b["state"] == "final" for b in batches) and settled(stack, ids) == len(ids)


def health_of_burns(stack: Stack) -> dict[str, object]:
    _, body = stack.gateway.call("GET", "/health")
    return dict(body["checks"]["burns"])


async def burned_exactly_once(stack: Stack, ids: list[str], before: int) -> None:
    wait_for(lambda: all_final(stack, ids), 90, "every intent in a final batch")
    assert sum(b["count"] for b in batches_for(stack, ids)) == len(ids)
    wait_for(lambda: stack.treasury_tokens() == before - len(ids), 20, "Kupo to show each burn once")
    result = stack.gateway_cli("reconcile", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"], report


def unsettled_in_outbox(stack: Stack, ids: list[str]) -> int:
    return len(ids) - settled(stack, ids)


async def test_spends_burn_in_batches_and_receipts_verify(stack: Stack, tmp_path: Path) -> None:
    user, token = stack.new_user()
    before = stack.treasury_tokens()
    ids = await spend(stack, user, 90, "e2e")
    wait_for(lambda: all_final(stack, ids), 90, "every intent in a final batch")

    batches = batches_for(stack, ids)
    assert sum(b["count"] for b in batches) == len(ids)
    assert len(batches) >= 3  # batch_max 40: 90 intents never fit one tx
    assert all(b["depth"] >= CONFIRMATIONS for b in batches)
    # The negative mint, seen in Kupo: the custodial address holds exactly that many tokens fewer.
    wait_for(lambda: stack.treasury_tokens() == before - len(ids), 20, "Kupo to show the burn")

    status, receipt = stack.gateway.call("GET", f"/v1/generations/{ids[7]}/receipt", token=token)
    assert status == 200, receipt
    assert receipt["generation_id"] == ids[7] and receipt["depth"] >= CONFIRMATIONS
    assert set(receipt) >= {"tx_id", "leaf", "index", "proof", "root", "count", "block", "depth"}
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    verified = stack.gateway_cli("verify-receipt", str(path))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "VERIFIED" in verified.stdout

    chain = GrpcChain(stack.indexer.grpc_target)
    try:
        for gen in ids:
            status, receipt = stack.gateway.call("GET", f"/v1/generations/{gen}/receipt", token=token)
            assert status == 200, receipt
            verdict = await verify_receipt(receipt, chain)
            assert verdict.ok, verdict.checks
        # A tampered receipt fails: another id under the same proof.
        forged = dict(receipt, generation_id=ids[0] + "x")
        assert not (await verify_receipt(forged, chain)).ok
    finally:
        await chain.close()
    path.write_text(json.dumps(dict(receipt, root="00" * 32)))
    assert stack.gateway_cli("verify-receipt", str(path)).returncode == 1

    _, other_token = stack.new_user()
    status, body = stack.gateway.call("GET", f"/v1/generations/{ids[0]}/receipt", token=other_token)
    assert status == 404, body
    assert stack.gateway.call("GET", f"/v1/generations/{ids[0]}/receipt")[0] == 401

    status, page = stack.gateway.call("GET", "/v1/burns?limit=2")
    assert status == 200 and len(page["batches"]) == 2 and page["next"]
    status, page2 = stack.gateway.call("GET", f"/v1/burns?limit=100&before={page['next']}")
    assert status == 200 and page2["batches"][0]["id"] != page["batches"][0]["id"]
    totals = page["totals"]
    assert totals["credits_spent"] == totals["tokens_burned"] + totals["pending"]

    result = stack.gateway_cli("reconcile", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"], report
    assert report["totals"]["burns_on_chain.tokens_burned_on_chain"] == \
        report["totals"]["burns_on_chain.tokens_in_confirmed_batches"]


async def test_signer_down_loses_nothing_and_recovers(stack: Stack) -> None:
    user, _ = stack.new_user()
    before = stack.treasury_tokens()
    stack.signer.stop()
    try:
        ids = await spend(stack, user, 10, "signer-down")
        wait_for(lambda: "burner retrying" in str(health_of_burns(stack).get("detail")), 30, "degraded health")
        assert unsettled_in_outbox(stack, ids) == len(ids)
    finally:
        stack.start_signer()
    await burned_exactly_once(stack, ids, before)
    wait_for(lambda: health_of_burns(stack)["detail"] == "ok", 30, "health back to ok")


async def test_indexer_down_loses_nothing_and_recovers(stack: Stack) -> None:
    user, _ = stack.new_user()
    before = stack.treasury_tokens()
    stack.indexer.stop()
    try:
        ids = await spend(stack, user, 10, "indexer-down")
        wait_for(lambda: "burner retrying" in str(health_of_burns(stack).get("detail")), 30, "degraded health")
        assert unsettled_in_outbox(stack, ids) == len(ids)
    finally:
        stack.indexer.start()
    await burned_exactly_once(stack, ids, before)


async def test_signer_refusal_is_retried_with_backoff_until_allowed(stack: Stack) -> None:
    user, _ = stack.new_user()
    before = stack.treasury_tokens()
    stack.signer.stop()
    stack.start_signer(SIGNER_MAX_TOKENS_PER_TX="1", SIGNER_MAX_TOKENS_PER_DAY="1")  # today's burns exceed it
    try:
        ids = await spend(stack, user, 10, "refused")
        wait_for(lambda: "_OVER_CAP" in stack.gateway.log_text(), 30, "the refusal in the log")
        time.sleep(1)
        assert unsettled_in_outbox(stack, ids) == len(ids)
        refusals = stack.gateway.log_text().count("_OVER_CAP")
        assert refusals < 20  # backoff, not a tight loop
    finally:
        stack.signer.stop()
        stack.start_signer()
    await burned_exactly_once(stack, ids, before)


@pytest.mark.parametrize("step", ["built", "sign_reply", "signed", "submitted", "confirmed"])
async def test_kill_9_at_each_step_burns_every_intent_once(stack: Stack, step: str) -> None:
    user, _ = stack.new_user()
    stack.gateway.stop()
    stack.gateway.start(CREATORPASS_TEST_BURN_CRASH_AT=step)
    before = stack.treasury_tokens()
    ids = await spend(stack, user, 25, f"crash-{step}")
    assert stack.gateway.process is not None
    code = stack.gateway.process.wait(60)
    assert code == 137, stack.gateway.log_text()[-2000:]
    assert "burn_test_crash" in stack.gateway.log_text()
    stack.gateway.start()
    await burned_exactly_once(stack, ids, before)


async def test_sigkill_at_random_moments_burns_every_intent_once(stack: Stack) -> None:
    """DESIGN §11: kill -9 at any moment. Seeded, so a failing run replays (the seed is in the message)."""
    import random

    seed = int(time.time())
    rng = random.Random(seed)
    user, _ = stack.new_user()
    before = stack.treasury_tokens()
    ids = await spend(stack, user, 150, "sigkill")
    for _ in range(3):
        time.sleep(rng.uniform(0.3, 2.5))
        stack.gateway.kill()
        stack.gateway.start()
    try:
        await burned_exactly_once(stack, ids, before)
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}: {exc}") from exc


@pytest.mark.parametrize("drop", [True, False], ids=["txs-dropped", "txs-kept"])
async def test_rollback_of_the_burn_block_burns_again_exactly_once(stack: Stack, drop: bool) -> None:
    from gateway.web3.chain import GrpcChain, TxState

    stack.gateway.ensure(**SLOW_FINALITY)
    user, _ = stack.new_user()
    before = stack.treasury_tokens()
    ids = await spend(stack, user, 20, "rollback")
    confirmed = wait_for(lambda: [b for b in batches_for(stack, ids) if b["state"] == "confirmed"], 60,
                         "a confirmed burn")
    tx_id = confirmed[0]["tx_id"]
    chain = GrpcChain(stack.indexer.grpc_target)
    try:
        status = await chain.tx_status(tx_id)
        assert status.state == TxState.CONFIRMED
        rolled = stack.devnet.rollback(status.depth, drop_transactions=drop)
        if drop:  # the burn's block is gone, and its tx with it
            assert tx_id in rolled["discarded_transaction_ids"]
        else:  # the burn's block is gone, its tx back in the mempool
            assert rolled["discarded_transaction_ids"] == [] and rolled["mempool"]["transactions"] >= 1
        wait_for(lambda: stack.treasury_tokens() > before - len(ids) or not drop, 10, "the rollback in Kupo")
    finally:
        await chain.close()
    wait_for(lambda: all_final(stack, ids), 90, "every intent in a final batch")
    assert tx_id in {b["tx_id"] for b in batches_for(stack, ids)}  # the same bytes landed again
    await burned_exactly_once(stack, ids, before)


async def test_burn_expired_after_rollback_is_rebuilt_and_resigned(stack: Stack) -> None:
    """The rolled-back tx's TTL passes while the gateway is down: the burner rebuilds it from the same
    inputs and the signer re-signs the same ids (its re-sign rule); only the new tx lands."""
    from gateway.web3.chain import GrpcChain, TxState

    stack.gateway.ensure(**SLOW_FINALITY)
    user, _ = stack.new_user()
    before = stack.treasury_tokens()
    ids = await spend(stack, user, 12, "expire")
    confirmed = wait_for(lambda: [b for b in batches_for(stack, ids) if b["state"] == "confirmed"], 60,
                         "a confirmed burn")
    old = {b["tx_id"] for b in batches_for(stack, ids)}
    stack.gateway.stop()
    chain = GrpcChain(stack.indexer.grpc_target)
    try:
        status = await chain.tx_status(confirmed[0]["tx_id"])
        assert status.state == TxState.CONFIRMED
        # From the burn's block to the tip: its lane's earlier tx (a block before) stays on chain.
        rolled = stack.devnet.rollback(status.depth, drop_transactions=True)
        assert confirmed[0]["tx_id"] in rolled["discarded_transaction_ids"]
        wait_for(lambda: stack.devnet.info()["tip"]["slot"] > status.block_slot + 12, 30, "the TTL to pass")
    finally:
        await chain.close()
    stack.gateway.start(**SLOW_FINALITY)
    wait_for(lambda: all_final(stack, ids), 90, "every intent in a final batch")
    assert old - {b["tx_id"] for b in batches_for(stack, ids)}, "a rebuilt tx replaced an expired one"
    assert "burn_expired_rebuilt" in stack.gateway.log_text()
    await burned_exactly_once(stack, ids, before)



async def test_treasury_exhausted_refuses_card_generations_then_recovers(stack: Stack) -> None:
    stack.gateway.ensure()
    user, token = stack.new_user()
    remaining = stack.treasury_tokens()
    ids = await spend(stack, user, remaining + 15, "exhaust")
    try:
        wait_for(lambda: settled(stack, ids) == remaining, 60, "every token burned")
    except AssertionError:
        print(stack.gateway.log_text()[-6000:])
        print(batches_for(stack, ids), settled(stack, ids), remaining)
        raise
    wait_for(lambda: "treasury low" in str(health_of_burns(stack)["detail"]), 30, "low-treasury health")
    time.sleep(1)
    assert settled(stack, ids) == remaining  # the 15 wait in the outbox, none lost
    await stack.ledger().credit_purchase(user_id=user, credits=1, key=f"test:gen:{user}")
    status, body = stack.gateway.call("POST", "/v1/generations", {"prompt": "a lighthouse"}, token=token,
                                      extra_headers={"Idempotency-Key": "treasury-low-1"})
    assert status == 503 and body["code"] == "treasury_low", body
    _, metrics = stack.gateway.call_text("/metrics")
    assert "gateway_burn_treasury_low 1.0" in metrics

    stack.devnet.fund(stack.identity.custodial_address, 50_000_000, {stack.unit: 100})
    wait_for(lambda: settled(stack, ids) == len(ids), 90, "the waiting intents burned after the top-up")
    wait_for(lambda: health_of_burns(stack)["detail"] == "ok", 30, "health back to ok")
    result = stack.gateway_cli("reconcile", "--json")
    assert result.returncode == 0, result.stdout
