"""The Kupo client against a real aiohttp server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from indexer.errors import KupoHttpError, KupoUnavailable, ResponseTooLarge
from indexer.kupo import KupoClient
from tests.indexer.fakes import FakeKupo, kupo_match
from tests.indexer.test_ogmios import free_port

ADDR = "addr_test1vz09v9yfxguvlp0zsnrpa3tdtm7el8xufp3m5lsm7qxzclgmzkket"
POLICY = "ab" * 28


@pytest.fixture
async def kupo() -> AsyncIterator[FakeKupo]:
    server = await FakeKupo().start()
    yield server
    await server.stop()


async def test_matches_sends_json_accept_and_bare_flags(kupo: FakeKupo) -> None:
    kupo.matches[ADDR] = [kupo_match("11" * 32, 0, ADDR, 5_000_000, {f"{POLICY}.43": 3})]
    client = KupoClient(kupo.url)
    response = await client.matches(ADDR, policy_id=POLICY, asset_name="43", resolve_hashes=True)
    assert response.body[0]["value"]["coins"] == 5_000_000
    assert response.checkpoint_slot == 42 and response.checkpoint_id == "ab" * 32
    path, query, accept = kupo.requests[-1]
    assert path == f"/matches/{ADDR}" and accept == "application/json"
    assert query == f"unspent&policy_id={POLICY}&asset_name=43&resolve_hashes"
    await client.close()


async def test_http_errors_are_typed(kupo: FakeKupo) -> None:
    client = KupoClient(kupo.url)
    with pytest.raises(KupoHttpError) as info:
        await client.matches("bad")
    assert info.value.status == 400 and info.value.hint == "Invalid pattern!"
    kupo.health_status = 503
    assert (await client.health()).status == 503  # health reports, never raises
    await client.close()


async def test_unreachable_and_slow_kupo_are_unavailable(kupo: FakeKupo) -> None:
    dead = KupoClient(f"http://127.0.0.1:{free_port()}", connect_timeout_s=1.0)
    with pytest.raises(KupoUnavailable, match="cannot reach"):
        await dead.matches(ADDR)
    await dead.close()
    kupo.delay_s = 0.4
    slow = KupoClient(kupo.url, timeout_s=0.1)
    with pytest.raises(KupoUnavailable, match="in time"):
        await slow.matches(ADDR)
    await slow.close()


async def test_oversized_answer_is_refused(kupo: FakeKupo) -> None:
    kupo.matches[ADDR] = [kupo_match(f"{i:064x}", 0, ADDR, 1) for i in range(200)]
    client = KupoClient(kupo.url, max_response_bytes=4096)
    with pytest.raises(ResponseTooLarge):
        await client.matches(ADDR)
    await client.close()
