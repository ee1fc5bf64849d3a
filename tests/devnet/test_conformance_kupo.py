"""Conformance of the devnet's Kupo API with the Kupo v2.12 OpenAPI, end to end through the real process."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientSession

from tests.devnet.schemas import validate_kupo

pytestmark = pytest.mark.slow

POLICY = "cd" * 28


async def _json(http: ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url, headers={"Accept": "application/json"}) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        return resp.status, await resp.json(content_type=None)


async def test_every_kupo_body_validates(devnet) -> None:
    devnet.blocks(2, fill="typical")
    key = devnet.genesis_key(2)
    devnet.fund(key["address"], 4_000_000, {f"{POLICY}.41": 2})
    devnet.blocks(1)
    devnet.rollback(1, drop_transactions=False)  # the fund tx returns to the mempool…
    devnet.blocks(2, fill="typical")  # …and is confirmed again on the new branch
    base = devnet.kupo_url
    async with ClientSession() as http:
        for path in ("/matches", "/matches/*?spent", "/v1/matches/*/*?unspent&order=oldest_first",
                     f"/matches/{key['address']}?resolve_hashes", f"/matches/{POLICY}.*",
                     f"/matches?policy_id={POLICY}&asset_name=41"):  # fmt: skip
            status, body = await _json(http, base + path)
            assert status == 200, (path, body)
            validate_kupo("Match", body, array=True)
        status, held = await _json(http, f"{base}/matches/{POLICY}.41")
        assert len(held) == 1 and held[0]["address"] == key["address"]
        async with http.get(base + "/matches", headers={"Accept": "application/json;asset-quantity=string"}) as resp:
            validate_kupo("MatchQuantityAsString", await resp.json(), array=True)

        status, points = await _json(http, base + "/checkpoints")
        validate_kupo("Point", points, array=True)
        tip = points[0]
        status, point = await _json(http, f"{base}/checkpoints/{tip['slot_no']}?strict")
        validate_kupo("Point", point)
        found = []
        for slot in sorted({p["slot_no"] for p in points}):
            status, metadata = await _json(http, f"{base}/metadata/{slot}")
            validate_kupo("Metadata", metadata, array=True)
            found += metadata
        assert found, "typical blocks carry metadata"
        status, patterns = await _json(http, base + "/patterns")
        assert patterns == ["*"]
        status, health = await _json(http, base + "/health")
        assert status == 200
        validate_kupo("Health", health)
        assert health["most_recent_checkpoint"] == tip["slot_no"]
        for path, expected in (("/matches/nope", 400), ("/unknown", 404), (f"/datums/{'0' * 63}", 400)):
            status, body = await _json(http, base + path)
            assert status == expected
            validate_kupo("BadRequest", body)
        async with http.post(base + "/matches") as resp:
            assert resp.status == 406
            validate_kupo("BadRequest", await resp.json())
