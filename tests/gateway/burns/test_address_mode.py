"""Address mode: a token the studio did not mint is burned by paying it to the unspendable 'any of []'
script address; the receipt verifies the same way (devnet, indexer, signer, gateway as processes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.burns.conftest import Stack, batches_for, build_stack, settled, spend, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def address_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with build_stack(tmp_path_factory.mktemp("burns-address"), mode="address") as built:
        yield built


async def test_address_mode_burns_to_the_sink_and_receipts_verify(address_stack: Stack, tmp_path: Path) -> None:
    stack = address_stack
    assert stack.identity.sink_address.startswith("addr_test1w")
    user, token = stack.new_user()
    before = stack.treasury_tokens()
    ids = await spend(stack, user, 45, "addr")
    wait_for(lambda: settled(stack, ids) == len(ids), 90, "every intent settled")
    assert all(b["state"] == "final" for b in batches_for(stack, ids))
    wait_for(lambda: stack.treasury_tokens(stack.identity.sink_address) == len(ids), 20, "the sink in Kupo")
    assert stack.treasury_tokens() == before - len(ids)

    status, receipt = stack.gateway.call("GET", f"/v1/generations/{ids[-1]}/receipt", token=token)
    assert status == 200 and receipt["sink_mode"] == "address", receipt
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    verified = stack.gateway_cli("verify-receipt", str(path))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "sent to the unspendable sink" in verified.stdout
    result = stack.gateway_cli("reconcile", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["ok"], result.stdout
