"""Chain-sync: findIntersection / nextBlock, the backward-first rule, rollbacks, pipelining, waiting at tip."""

from __future__ import annotations

import asyncio

from tests.devnet.schemas import validate_ogmios


def _point(block) -> dict:
    return {"slot": block.slot, "id": block.id}


def _fork(chain, rollback: int, new_blocks: int) -> None:
    """Roll back and grow a different branch (a fresh tx makes the first new block differ)."""
    chain.rollback(rollback, drop_transactions=True)
    chain.fund(chain.genesis.keys[2].address, 1_000_000 + chain.version)
    chain.produce_blocks(new_blocks)


async def _next(client) -> dict:
    message = await client.call("nextBlock", request_id="n")
    validate_ogmios("NextBlockResponse", message)
    return message["result"]


async def _sync_to_tip(client, chain) -> list[dict]:
    """Consume the initial backward then every block up to the tip; returns the forward blocks."""
    first = await _next(client)
    assert first["direction"] == "backward"
    blocks = []
    while not blocks or blocks[-1]["id"] != chain.tip.id:
        result = await _next(client)
        assert result["direction"] == "forward"
        blocks.append(result["block"])
    return blocks


async def test_a_fresh_cursor_rolls_back_to_origin_then_replays_the_chain(ogmios_client, devnet_chain) -> None:
    first = await _next(ogmios_client)
    assert first == {"direction": "backward", "point": "origin", "tip": devnet_chain.tip_json()}
    blocks = []
    for expected in devnet_chain.blocks:
        result = await _next(ogmios_client)
        assert result["direction"] == "forward"
        assert result["tip"] == devnet_chain.tip_json()
        block = result["block"]
        assert (block["id"], block["height"], block["slot"], block["ancestor"]) == (
            expected.id, expected.height, expected.slot, expected.ancestor,
        )  # fmt: skip
        assert [tx["id"] for tx in block["transactions"]] == [tx.id for tx in expected.transactions]
        blocks.append(block)
    assert blocks[0]["ancestor"] == "genesis"


async def test_find_intersection(ogmios_client, devnet_chain) -> None:
    middle = devnet_chain.blocks[1]
    unknown = {"slot": 1, "id": "ab" * 32}
    message = await ogmios_client.call("findIntersection", {"points": [unknown, _point(middle), "origin"]}, "i")
    validate_ogmios("FindIntersectionResponse", message)
    assert message["result"] == {"intersection": _point(middle), "tip": devnet_chain.tip_json()}
    assert await _next(ogmios_client) == {
        "direction": "backward",
        "point": _point(middle),
        "tip": devnet_chain.tip_json(),
    }
    assert (await _next(ogmios_client))["block"]["id"] == devnet_chain.blocks[2].id

    wrong_slot = {"slot": middle.slot + 1, "id": middle.id}
    for points in ([unknown], [], [wrong_slot]):
        message = await ogmios_client.call("findIntersection", {"points": points}, "i")
        validate_ogmios("FindIntersectionResponse", message)
        assert message["error"] == {
            "code": 1000,
            "message": "No intersection found.",
            "data": {"tip": devnet_chain.tip_json()},
        }

    message = await ogmios_client.call("findIntersection", {"points": ["origin"]})
    assert message["result"]["intersection"] == "origin"
    assert (await _next(ogmios_client))["point"] == "origin"


async def test_rollback_after_the_client_reached_the_tip(ogmios_client, devnet_chain) -> None:
    await _sync_to_tip(ogmios_client, devnet_chain)
    fork_point = devnet_chain.blocks[-3]
    _fork(devnet_chain, 2, 3)
    backward = await _next(ogmios_client)
    assert backward == {"direction": "backward", "point": _point(fork_point), "tip": devnet_chain.tip_json()}
    replayed = [(await _next(ogmios_client))["block"] for _ in range(3)]
    assert [b["id"] for b in replayed] == [b.id for b in devnet_chain.blocks[-3:]]
    assert replayed[0]["ancestor"] == fork_point.id


async def test_rollback_while_waiting_at_the_tip_answers_the_pending_request(ogmios_client, devnet_chain) -> None:
    await _sync_to_tip(ogmios_client, devnet_chain)
    await ogmios_client.send("nextBlock", request_id="waiting")
    # prove the request is pending: a query on another mini-protocol is answered first
    assert (await ogmios_client.call("queryNetwork/tip", request_id="q"))["id"] == "q"
    parent = devnet_chain.blocks[-2]
    devnet_chain.rollback(1)
    message = await ogmios_client.receive()
    validate_ogmios("NextBlockResponse", message)
    assert message["id"] == "waiting"
    assert message["result"] == {"direction": "backward", "point": _point(parent), "tip": devnet_chain.tip_json()}


async def test_waiting_at_the_tip_ends_with_the_next_block(ogmios_client, devnet_chain) -> None:
    await _sync_to_tip(ogmios_client, devnet_chain)
    pending = asyncio.ensure_future(_next(ogmios_client))
    await asyncio.sleep(0)
    (block,) = devnet_chain.produce_blocks(1)
    result = await asyncio.wait_for(pending, 10)
    assert result["direction"] == "forward" and result["block"]["id"] == block.id


async def test_rollback_deeper_than_the_intersection(ogmios_client, devnet_chain) -> None:
    devnet_chain.produce_blocks(3)
    await ogmios_client.call("findIntersection", {"points": [_point(devnet_chain.blocks[-2])]})
    assert (await _next(ogmios_client))["direction"] == "backward"
    survivor = devnet_chain.blocks[-5]
    _fork(devnet_chain, 4, 1)
    assert await _next(ogmios_client) == {
        "direction": "backward",
        "point": _point(survivor),
        "tip": devnet_chain.tip_json(),
    }
    assert (await _next(ogmios_client))["block"]["ancestor"] == survivor.id


async def test_rollback_to_before_the_first_block_goes_back_to_origin(ogmios_client, devnet_chain) -> None:
    await _sync_to_tip(ogmios_client, devnet_chain)
    _fork(devnet_chain, len(devnet_chain.blocks), 1)
    assert (await _next(ogmios_client))["point"] == "origin"
    assert (await _next(ogmios_client))["block"]["ancestor"] == "genesis"


async def test_pipelined_requests_are_answered_in_order(ogmios_client, devnet_chain) -> None:
    devnet_chain.produce_blocks(20)
    count = len(devnet_chain.blocks) + 1
    for i in range(count):
        await ogmios_client.send("nextBlock", request_id=i)
    answers = [await ogmios_client.receive() for _ in range(count)]
    assert [a["id"] for a in answers] == list(range(count))
    assert answers[0]["result"]["direction"] == "backward"
    heights = [a["result"]["block"]["height"] for a in answers[1:]]
    assert heights == list(range(1, count))
