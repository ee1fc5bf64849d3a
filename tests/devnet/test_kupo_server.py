"""The Kupo HTTP API over a devnet chain: routes, filters, errors, headers, content negotiation."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import cbor2
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from devnet.chain import Chain
from devnet.kupo.server import build_app
from devnet.ogmios.encoding import bech32_encode
from tests.devnet.schemas import validate_kupo
from tests.support.devnet_protocols import new_chain, signed_tx

POLICY = "ab" * 28
STAKE = bytes(range(100, 128))
DATUM = cbor2.dumps(cbor2.CBORTag(121, [42]))
PLUTUS = bytes.fromhex("480100002221200101")
JSON = {"Accept": "application/json"}


def _rich_chain() -> Chain:
    """Typical blocks, then: an asset payment to a base address, an output with an inline datum and a
    reference script, and a metadata-carrying transaction, each confirmed."""
    chain = new_chain(2)
    key = chain.genesis.keys[1]
    base = b"\x00" + key.key_hash + STAKE
    chain.fund(bech32_encode("addr_test", base), 5_000_000, {f"{POLICY}.435245415445": 9, POLICY: 1})
    chain.produce_blocks(1)
    outputs = [
        {0: key.address_bytes, 1: 3_000_000, 2: [1, cbor2.CBORTag(24, DATUM)],
         3: cbor2.CBORTag(24, cbor2.dumps([2, PLUTUS]))},
    ]  # fmt: skip
    chain.submit(signed_tx(chain, 0, outputs, metadata={674: {"msg": ["kupo"]}, 7: b"\x01"}))
    chain.produce_blocks(1)
    return chain


@pytest.fixture
def rich_chain() -> Chain:
    return _rich_chain()


@pytest.fixture
async def kupo(rich_chain: Chain) -> AsyncIterator[tuple[ClientSession, TestServer]]:
    server = TestServer(build_app(rich_chain, patterns=("*",)))
    await server.start_server()
    try:
        async with ClientSession() as http:
            yield http, server
    finally:
        await server.close()


async def _get(kupo, path: str, headers=None) -> tuple[int, Any, Any]:
    http, server = kupo
    async with http.get(server.make_url(path), headers=headers or JSON) as resp:
        body = await resp.json(content_type=None) if resp.status != 304 else None
        return resp.status, resp.headers.copy(), body


async def test_matches_every_pattern_form(kupo, rich_chain: Chain) -> None:
    key1 = rich_chain.genesis.keys[1]
    base = bech32_encode("addr_test", b"\x00" + key1.key_hash + STAKE)
    some_tx = rich_chain.blocks[-1].transactions[0].id
    expectations = {
        "*": len(rich_chain.outputs),
        "*/*": len(rich_chain.outputs),
        base: 1,
        f"{key1.key_hash.hex()}/*": None,
        f"*/{STAKE.hex()}": 1,
        bech32_encode("stake_test", b"\xe0" + STAKE): 1,
        f"{key1.key_hash.hex()}/{STAKE.hex()}": 1,
        f"{POLICY}.*": 1,
        f"{POLICY}.435245415445": 1,
        f"{POLICY}.00": 0,
        f"0@{some_tx}": 1,
        f"*@{some_tx}": len(rich_chain.blocks[-1].transactions[0].outputs),
    }
    for pattern, count in expectations.items():
        status, headers, body = await _get(kupo, f"/matches/{pattern}")
        assert status == 200, (pattern, body)
        validate_kupo("Match", body, array=True)
        if count is not None:
            assert len(body) == count, pattern
        assert headers["X-Most-Recent-Checkpoint"] == str(rich_chain.tip.slot)
        assert headers["ETag"] == rich_chain.tip.id
        assert headers["Access-Control-Allow-Origin"] == "*"
    payment = (await _get(kupo, f"/matches/{key1.key_hash.hex()}/*"))[2]
    assert {m["address"] for m in payment} >= {key1.address, base}


async def test_match_fields_and_resolution(kupo, rich_chain: Chain) -> None:
    tx = rich_chain.blocks[-1].transactions[0]
    _, _, (match,) = await _get(kupo, f"/matches/0@{tx.id}")
    datum_hash = hashlib.blake2b(DATUM, digest_size=32).hexdigest()
    script_hash = hashlib.blake2b(b"\x02" + PLUTUS, digest_size=28).hexdigest()
    assert list(match) == [
        "transaction_index", "transaction_id", "output_index", "address", "value", "datum_hash", "datum_type",
        "script_hash", "created_at", "spent_at",
    ]  # fmt: skip
    assert match["datum_hash"] == datum_hash and match["datum_type"] == "inline"
    assert match["script_hash"] == script_hash
    assert match["created_at"] == {"slot_no": rich_chain.tip.slot, "header_hash": rich_chain.tip.id}
    _, _, (resolved,) = await _get(kupo, f"/matches/0@{tx.id}?resolve_hashes")
    validate_kupo("Match", [resolved], array=True)
    assert resolved["datum"] == DATUM.hex()
    assert resolved["script"] == {"language": "plutus:v2", "script": PLUTUS.hex()}
    assert (await _get(kupo, f"/datums/{datum_hash}"))[2] == {"datum": DATUM.hex()}
    assert (await _get(kupo, f"/scripts/{script_hash}"))[2] == {"language": "plutus:v2", "script": PLUTUS.hex()}
    assert (await _get(kupo, f"/datums/{'00' * 32}"))[2] is None
    _, _, (asset,) = await _get(kupo, f"/matches/{POLICY}.*")
    assert asset["value"]["assets"] == {POLICY: 1, f"{POLICY}.435245415445": 9}
    _, _, (as_string,) = await _get(kupo, f"/matches/{POLICY}.*", {"Accept": "application/json;asset-quantity=string"})
    validate_kupo("MatchQuantityAsString", [as_string], array=True)
    assert as_string["value"] == {"coins": "5000000", "assets": {POLICY: "1", f"{POLICY}.435245415445": "9"}}


async def test_filters(kupo, rich_chain: Chain) -> None:
    everything = (await _get(kupo, "/matches"))[2]
    spent = (await _get(kupo, "/matches?spent"))[2]
    unspent = (await _get(kupo, "/matches/*?unspent"))[2]
    assert len(spent) + len(unspent) == len(everything) and spent and unspent
    assert all(m["spent_at"] is not None for m in spent) and all(m["spent_at"] is None for m in unspent)
    slots = [m["created_at"]["slot_no"] for m in everything]
    assert slots == sorted(slots, reverse=True)
    oldest = (await _get(kupo, "/matches?order=oldest_first"))[2]
    assert [m["created_at"]["slot_no"] for m in oldest] == sorted(slots)
    second = rich_chain.blocks[1]
    after = (await _get(kupo, f"/matches?created_after={second.slot}"))[2]
    assert after and all(m["created_at"]["slot_no"] >= second.slot for m in after)
    window = (await _get(kupo, f"/matches?created_after={second.slot}.{second.id}&created_before={second.slot}"))[2]
    assert window and {m["created_at"]["slot_no"] for m in window} == {second.slot}
    spent_after = (await _get(kupo, f"/matches?spent_after={second.slot}"))[2]
    assert all(m["spent_at"]["slot_no"] >= second.slot for m in spent_after)
    by_policy = (await _get(kupo, f"/matches?policy_id={POLICY}&asset_name=435245415445"))[2]
    assert len(by_policy) == 1
    tx_id = rich_chain.blocks[-1].transactions[0].id
    by_tx = (await _get(kupo, f"/matches?transaction_id={tx_id}&output_index=0"))[2]
    assert [(m["transaction_id"], m["output_index"]) for m in by_tx] == [(tx_id, 0)]
    assert (await _get(kupo, f"/v1/matches?transaction_id={tx_id}"))[2] == (await _get(kupo, f"/matches/*@{tx_id}"))[2]


@pytest.mark.parametrize(
    "query",
    [
        "?spent&unspent",
        "?order=newest",
        "?asset_name=00",
        f"?policy_id={POLICY[:-2]}",
        "?output_index=1",
        "?created_after=1&spent_after=2",
        "?created_before=x",
        f"?created_after=5.{'00' * 32}",
    ],
)
async def test_bad_filters_get_400_with_a_hint(kupo, query: str) -> None:
    status, _, body = await _get(kupo, f"/matches{query}")
    assert status == 400 and isinstance(body["hint"], str)
    validate_kupo("BadRequest", body)


async def test_errors_and_methods(kupo) -> None:
    http, server = kupo
    for path, status in (("/nope", 404), ("/matches/a/b/c", 400), ("/matches/xyz", 400), ("/datums/xyz", 400),
                         ("/scripts/xyz", 400), ("/checkpoints/abc", 400), ("/metadata/abc", 400),
                         ("/checkpoints/1?foo", 400), ("/v1/v1/nope", 404), ("/", 404)):  # fmt: skip
        got, _, body = await _get(kupo, path)
        assert got == status, path
        validate_kupo("BadRequest", body)
    for method, path in (("POST", "/matches"), ("PUT", "/health"), ("POST", "/checkpoints"), ("PATCH", "/datums/x")):
        async with http.request(method, server.make_url(path)) as resp:
            assert resp.status == 406, (method, path)
            assert "hint" in await resp.json()


async def test_checkpoints_and_metadata(kupo, rich_chain: Chain) -> None:
    _, _, points = await _get(kupo, "/checkpoints")
    validate_kupo("Point", points, array=True)
    assert points[0] == {"slot_no": rich_chain.tip.slot, "header_hash": rich_chain.tip.id}
    assert [p["slot_no"] for p in points] == sorted((p["slot_no"] for p in points), reverse=True)
    tip = rich_chain.tip
    assert (await _get(kupo, f"/checkpoints/{tip.slot}?strict"))[2] == {"slot_no": tip.slot, "header_hash": tip.id}
    assert (await _get(kupo, f"/checkpoints/{tip.slot + 10}"))[2]["slot_no"] == tip.slot
    assert (await _get(kupo, f"/checkpoints/{tip.slot + 10}?strict"))[2] is None
    first = rich_chain.blocks[0]
    assert (await _get(kupo, f"/checkpoints/{first.slot}"))[2] == {"slot_no": first.slot, "header_hash": first.id}
    if first.slot > 0:
        assert (await _get(kupo, f"/checkpoints/{first.slot - 1}"))[2] is None

    _, headers, metadata = await _get(kupo, f"/metadata/{tip.slot}")
    validate_kupo("Metadata", metadata, array=True)
    assert headers["X-Block-Header-Hash"] == tip.id
    (entry,) = metadata
    assert entry["schema"] == {
        "7": {"bytes": "01"},
        "674": {"map": [{"k": {"string": "msg"}, "v": {"list": [{"string": "kupo"}]}}]},
    }
    assert hashlib.blake2b(bytes.fromhex(entry["raw"]), digest_size=32).hexdigest() == entry["hash"]
    tx_id = tip.transactions[0].id
    assert (await _get(kupo, f"/metadata/{tip.slot}?transaction_id={tx_id}"))[2] == metadata
    assert (await _get(kupo, f"/metadata/{tip.slot}?transaction_id={'00' * 32}"))[2] == []
    assert (await _get(kupo, f"/metadata/{tip.slot}?transaction_id=zz"))[0] == 400
    assert (await _get(kupo, "/metadata/0"))[2] == []
    assert (await _get(kupo, f"/metadata/{tip.slot + 100}"))[0] == 404


async def test_etag_304(kupo, rich_chain: Chain) -> None:
    for path in (
        "/matches",
        "/checkpoints",
        f"/datums/{'00' * 32}",
        f"/scripts/{'00' * 28}",
        f"/metadata/{rich_chain.tip.slot}",
    ):
        status, headers, _ = await _get(kupo, path, {**JSON, "If-None-Match": rich_chain.tip.id})
        assert status == 304, path
        assert headers["X-Most-Recent-Checkpoint"] == str(rich_chain.tip.slot)


async def test_health_content_negotiation(kupo) -> None:
    status, _, body = await _get(kupo, "/health")
    assert status == 200
    validate_kupo("Health", body)
    assert body["connection_status"] == "connected" and body["most_recent_checkpoint"] == body["most_recent_node_tip"]
    http, server = kupo
    async with http.get(server.make_url("/health"), headers={"Accept": "text/plain"}) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert "kupo_connection_status  1.0" in await resp.text()
    async with http.get(server.make_url("/health"), headers={"Accept": "*/*"}) as resp:  # Kupo's quirk
        assert resp.headers["Content-Type"].startswith("application/json")
        assert (await resp.text()).startswith("# TYPE")
    async with http.get(server.make_url("/health"), skip_auto_headers=["Accept"]) as resp:
        assert (await resp.json())["version"].startswith("v2.")
    async with http.get(server.make_url("/health"), headers={"Accept": "image/png"}) as resp:
        assert resp.status == 406
    async with http.get(server.make_url("/metrics"), headers=JSON) as resp:
        assert resp.status == 200


async def test_patterns_endpoints(kupo, rich_chain: Chain) -> None:
    http, server = kupo
    assert (await _get(kupo, "/patterns"))[2] == ["*"]
    assert (await _get(kupo, f"/patterns/{POLICY}.*"))[2] == ["*"]
    async with http.delete(server.make_url(f"/matches/{POLICY}.*")) as resp:
        assert resp.status == 400  # overlaps the active "*"
    tip = rich_chain.tip
    body = {"rollback_to": {"slot_no": tip.slot, "header_hash": tip.id}}
    async with http.put(server.make_url(f"/patterns/{POLICY}.*"), json=body) as resp:
        assert resp.status == 200 and await resp.json() == ["*", f"{POLICY}.*"]
    async with http.put(server.make_url("/patterns/*"), json={"rollback_to": {"slot_no": 1}}) as resp:
        assert resp.status == 400  # no block at slot 1
    async with http.put(server.make_url("/patterns/*"), data=b"{not json") as resp:
        assert resp.status == 400
    async with http.delete(server.make_url("/patterns/*")) as resp:
        assert await resp.json() == {"deleted": 1}
    # only the policy pattern is left: matches are restricted to it
    assert len((await _get(kupo, "/matches"))[2]) == 1
    async with http.put(server.make_url("/patterns"), json={"patterns": ["*"], "rollback_to": tip.slot}) as resp:
        assert resp.status == 200
    assert len((await _get(kupo, "/matches"))[2]) == len(rich_chain.outputs)


async def test_rollback_is_reflected(kupo, rich_chain: Chain) -> None:
    before = len((await _get(kupo, "/matches"))[2])
    rich_chain.rollback(1, drop_transactions=True)
    after = (await _get(kupo, "/matches"))[2]
    assert len(after) < before
    assert all(m["created_at"]["slot_no"] <= rich_chain.tip.slot for m in after)
    validate_kupo("Match", after, array=True)
