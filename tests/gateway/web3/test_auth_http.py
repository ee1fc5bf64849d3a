"""Wallet sign-in over HTTP: challenge → signData → session; forged, stake-key and replayed answers refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from gateway.accounts.principal import Principal
from gateway.accounts.tokens import TokenService
from gateway.server.core import GatewayApp
from tests.gateway.conftest import MakeGateway, signup
from tests.gateway.web3.conftest import ASSET
from tests.gateway.web3.wallet import TestWallet

TREASURY = TestWallet()


@pytest.fixture
async def auth_app(make_gateway: MakeGateway, tmp_path: Path) -> GatewayApp:
    # no chain call is made on this path: the indexer target only has to be syntactically valid
    return await make_gateway(web3_pay_to_address=TREASURY.bech32, asset_policy_id=ASSET.policy_id,
                              asset_name_hex=ASSET.asset_name, public_url="https://studio.example")


async def _challenge(client: AsyncTestClient[Any], wallet: TestWallet) -> dict[str, str]:
    response = await client.get("/v1/auth/wallet/challenge", params={"address": wallet.bech32})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_sign_in_with_a_wallet_and_replay_refused(auth_app: GatewayApp) -> None:
    wallet = TestWallet()
    async with AsyncTestClient(app=auth_app.app) as client:
        challenge = await _challenge(client, wallet)
        text = bytes.fromhex(challenge["payload"]).decode()
        assert "studio.example" in text and wallet.bech32 in text and "Network ID: 0" in text
        answer = wallet.sign_data(challenge["payload"])
        body = {"address": wallet.bech32, **answer}
        response = await client.post("/v1/auth/wallet/verify", json=body)
        assert response.status_code == 200, response.text
        principal = auth_app.container.get(TokenService).verify(response.json()["access_token"])
        assert principal == Principal(kind="wallet", subject=wallet.bech32)
        replay = await client.post("/v1/auth/wallet/verify", json=body)
        assert replay.status_code == 401 and replay.json()["code"] == "invalid_signature"
        assert "already used" in replay.json()["error"]


async def test_hashed_payload_and_hex_address_accepted(auth_app: GatewayApp) -> None:
    wallet = TestWallet()
    async with AsyncTestClient(app=auth_app.app) as client:
        challenge = await _challenge(client, wallet)
        answer = wallet.sign_data(challenge["payload"], hashed=True)
        response = await client.post("/v1/auth/wallet/verify", json={"address": wallet.raw.hex(), **answer})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("attack", ["forged", "stake_key", "other_wallet", "unknown_nonce"])
async def test_bad_sign_data_refused(auth_app: GatewayApp, attack: str) -> None:
    wallet, attacker = TestWallet(), TestWallet()
    async with AsyncTestClient(app=auth_app.app) as client:
        challenge = await _challenge(client, wallet)
        if attack == "forged":  # signed by the attacker's key, claiming the victim's address
            from tests.gateway.web3.wallet import cose_sign1

            answer = cose_sign1(bytes(attacker.payment.payload), wallet.raw, bytes.fromhex(challenge["payload"]))
        elif attack == "stake_key":
            answer = wallet.sign_data_with_stake_key(challenge["payload"])
        elif attack == "other_wallet":  # the attacker's valid signature over the victim's challenge
            answer = attacker.sign_data(challenge["payload"])
        else:
            other = bytes.fromhex(challenge["payload"]).decode().replace("Nonce: ", "Nonce: 0").replace("\n", "\n", 1)
            answer = wallet.sign_data(other.encode().hex())
        response = await client.post("/v1/auth/wallet/verify", json={"address": wallet.bech32, **answer})
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "invalid_signature"


async def test_bad_input_is_a_clear_400(auth_app: GatewayApp) -> None:
    async with AsyncTestClient(app=auth_app.app) as client:
        response = await client.get("/v1/auth/wallet/challenge", params={"address": "stake_test1uq"})
        assert response.status_code == 400 and response.json()["code"] == "invalid_address"
        response = await client.post("/v1/auth/wallet/verify", json={"address": "x"})
        assert response.status_code == 400


async def test_challenges_are_rate_limited(make_gateway: MakeGateway) -> None:
    app = await make_gateway(web3_pay_to_address=TREASURY.bech32, asset_policy_id=ASSET.policy_id,
                             asset_name_hex=ASSET.asset_name, auth_rate_per_minute=3)
    wallet = TestWallet()
    async with AsyncTestClient(app=app.app) as client:
        statuses = [(await client.get("/v1/auth/wallet/challenge", params={"address": wallet.bech32})).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


async def test_wallet_session_linked_to_the_signed_in_card_account(auth_app: GatewayApp) -> None:
    wallet = TestWallet()
    async with AsyncTestClient(app=auth_app.app) as client:
        account = await signup(client, "linked@example.com")
        challenge = await _challenge(client, wallet)
        response = await client.post("/v1/auth/wallet/verify", headers=account["headers"],
                                     json={"address": wallet.bech32, **wallet.sign_data(challenge["payload"])})
        assert response.status_code == 200, response.text
        tokens = auth_app.container.get(TokenService)
        principal = tokens.verify(response.json()["access_token"])
        user = tokens.verify(account["access_token"])
        assert principal.kind == "wallet" and principal.subject == wallet.bech32
        assert principal.linked_user_id == user.subject and principal.user_id == user.subject


async def test_expired_challenge_refused(auth_app: GatewayApp) -> None:
    wallet = TestWallet()
    async with AsyncTestClient(app=auth_app.app) as client:
        challenge = await _challenge(client, wallet)
        await auth_app.container.db.write(lambda conn: conn.execute(
            "UPDATE web3_challenges SET expires_at = expires_at - 3600"))
        response = await client.post("/v1/auth/wallet/verify",
                                     json={"address": wallet.bech32, **wallet.sign_data(challenge["payload"])})
        assert response.status_code == 401 and "expired" in response.json()["error"], response.text


async def test_web3_routes_answer_503_when_not_configured(make_gateway: MakeGateway) -> None:
    app = await make_gateway()
    async with AsyncTestClient(app=app.app) as client:
        response = await client.get("/v1/web3/config")
        assert response.status_code == 503 and response.json()["code"] == "web3_disabled"
