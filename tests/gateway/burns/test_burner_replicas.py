"""The burner on three gateway replicas sharing one real PostgreSQL server (devnet, indexer, signer and
the replicas are real processes on loopback).

- the three share the lanes out (each drives one of three);
- ``kill -9`` of the replica whose lane carries a batch in flight → another replica takes the lane over
  and finishes the batch: every intent settled once, the treasury down by exactly that many tokens (seen
  in Kupo), no superseded tx on chain, ``reconcile`` (its on-chain burn check included) clean;
- the public burn list pages on PostgreSQL, and a receipt verifies.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.burns.conftest import GatewayProcess, Stack, batches_for, build_stack, settled, spend, wait_for
from tests.gateway.credits.pg_server import PostgresServer

pytestmark = pytest.mark.slow
REPLICAS = 3
# Finality 4 blocks deep (1 s blocks): a batch stays in flight long enough to kill its replica mid-way.
ENV = {"GATEWAY_BURN_CONFIRMATIONS": "4", "GATEWAY_BURN_LEASE_S": "20", "GATEWAY_BURN_BATCH_WAIT_S": "0.3"}
IN_FLIGHT = ("submitted", "mempool", "confirmed")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer) -> Iterator[tuple[Stack, list[
        GatewayProcess]]]:
    url = pg_server.new_schema()
    with build_stack(tmp_path_factory.mktemp("burn-replicas"), database_url=url, env=ENV) as stack:
        others = [GatewayProcess(stack.gateway.base_env).start() for _ in range(REPLICAS - 1)]
        try:
            yield stack, [stack.gateway, *others]
        finally:
            for gateway in others:
                gateway.close()


def replica_of(gateway: GatewayProcess) -> str:
    status, body = gateway.call("GET", "/health")
    assert status in (200, 503), body
    return str(body["replica"])


def leases(stack: Stack) -> dict[int, str]:
    rows = stack.db().read_sync(lambda c: c.execute(
        "SELECT lane, owner FROM burn_lane_leases WHERE expires_at > ?", (time.time(),)).fetchall())
    return {int(lane): str(owner) for lane, owner in rows}


def all_final(stack: Stack, ids: list[str]) -> bool:
    batches = batches_for(stack, ids)
    return bool(batches) and all(b["state"] == "final" for b in batches) and settled(stack, ids) == len(ids)


async def test_replicas_share_lanes_and_a_killed_holders_batch_lands_once(
        replicas: tuple[Stack, list[GatewayProcess]], tmp_path: Path) -> None:
    stack, gateways = replicas
    by_replica = {replica_of(g): g for g in gateways}
    assert len(by_replica) == REPLICAS
    user, token = stack.new_user()
    before = stack.treasury_tokens()

    # A first spend makes the burners split the treasury into the three lanes; then each replica
    # leases one of them.
    warm = await spend(stack, user, 6, "warm")
    wait_for(lambda: all_final(stack, warm), 120, "the first intents burned")
    wait_for(lambda: sorted(leases(stack)) == [0, 1, 2] and set(leases(stack).values()) == set(by_replica),
             60, "each replica leasing one of the three lanes")

    ids = await spend(stack, user, 12, "kill")
    in_flight = wait_for(lambda: [b for b in batches_for(stack, ids) if b["state"] in IN_FLIGHT and b["depth"] < 3],
                         60, "a batch of the intents in flight")[0]
    holder = leases(stack)[in_flight["lane"]]
    victim = by_replica[holder]
    assert victim.process is not None
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait(timeout=10)
    killed_at = time.time()
    state = next(b for b in batches_for(stack, ids) if b["id"] == in_flight["id"])["state"]
    assert state != "final", "the batch went final before its replica was killed: nothing was taken over"

    new_holder = wait_for(lambda: (owner := leases(stack).get(in_flight["lane"])) not in (None, holder) and owner,
                          30, "a surviving replica leasing the killed replica's lane")
    assert new_holder in by_replica and new_holder != holder
    wait_for(lambda: all_final(stack, ids), 120, "every intent in a final batch after the kill")
    final_at = stack.db().read_sync(lambda c: c.execute(
        "SELECT final_at FROM burn_batches WHERE id = ?", (in_flight["id"],)).fetchone()[0])
    assert final_at > killed_at  # finished by the survivor, not before the kill

    # Burned once: the batches count each intent once, and so does the chain.
    batches = batches_for(stack, ids)
    assert sum(b["count"] for b in batches) == len(ids)
    assert settled(stack, ids) == len(ids)
    wait_for(lambda: stack.treasury_tokens() == before - len(warm) - len(ids), 30, "Kupo to show each burn once")
    report = stack.gateway_cli("reconcile", "--json")
    result = json.loads(report.stdout.strip().splitlines()[-1])
    assert report.returncode == 0 and result["ok"], report.stdout + report.stderr
    assert result["checks"]["burns_on_chain"]["ok"] is True
    assert result["totals"]["burns_on_chain.tokens_burned_on_chain"] == \
        result["totals"]["burns_on_chain.tokens_in_confirmed_batches"]

    # The public list pages on PostgreSQL (newest first, no batch twice), and a receipt verifies.
    survivor = next(g for r, g in by_replica.items() if r != holder)
    status, page = survivor.call("GET", "/v1/burns?limit=1")
    assert status == 200 and len(page["batches"]) == 1 and page["next"], page
    status, rest = survivor.call("GET", f"/v1/burns?limit=100&before={page['next']}")
    assert status == 200, rest
    listed = [b["id"] for b in page["batches"] + rest["batches"]]
    assert len(listed) == len(set(listed)) and in_flight["id"] in listed
    created = [b["created_at"] for b in page["batches"] + rest["batches"]]
    assert created == sorted(created, reverse=True)
    status, receipt = survivor.call("GET", f"/v1/generations/{ids[0]}/receipt", token=token)
    assert status == 200, receipt
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    verified = stack.gateway_cli("verify-receipt", str(path))
    assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stdout + verified.stderr
