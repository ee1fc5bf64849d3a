"""Sign-up, login, refresh rotation with reuse detection, logout, rate limits, the account view."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt

from gateway.accounts.principal import Principal
from gateway.accounts.tokens import TokenService
from gateway.credits.ledger import Ledger
from gateway.server.core import GatewayApp
from tests.gateway.conftest import MakeGateway, open_client, signup, user_id_of

PASSWORD = "correct horse battery"


async def test_signup_login_and_account(client: httpx.AsyncClient, gateway: GatewayApp) -> None:
    pair = await signup(client, email="  Artist@Example.COM ")
    assert pair["expires_in"] == gateway.container.settings.access_token_ttl_s
    account = await client.get("/v1/account", headers=pair["headers"])
    assert account.status_code == 200, account.text
    assert account.json() == {"email": "artist@example.com", "credits_available": 0, "credits_pending": 0,
                              "frozen": False, "frozen_reason": ""}
    login = await client.post("/v1/auth/login", json={"email": "ARTIST@example.com", "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert set(login.json()) >= {"access_token", "refresh_token", "expires_in"}


async def test_account_shows_ledger_credits(client: httpx.AsyncClient, gateway: GatewayApp) -> None:
    pair = await signup(client)
    user_id = user_id_of(gateway, pair["access_token"])
    ledger = gateway.container.get(Ledger)
    await ledger.credit_purchase(user_id=user_id, credits=10, key="test:credit")
    await ledger.hold(user_id=user_id, generation_id="g1", timeout_s=60)
    body = (await client.get("/v1/account", headers=pair["headers"])).json()
    assert (body["credits_available"], body["credits_pending"]) == (9, 1)


async def test_access_token_claims(client: httpx.AsyncClient, gateway: GatewayApp) -> None:
    pair = await signup(client)
    claims = gateway.container.get(TokenService).decode(pair["access_token"])
    assert claims["kind"] == "user"
    assert claims["exp"] - claims["iat"] == gateway.container.settings.access_token_ttl_s
    assert {"sub", "jti", "fam", "email"} <= set(claims)
    assert jwt.get_unverified_header(pair["access_token"])["alg"] == "HS256"


async def test_duplicate_signup_is_409(client: httpx.AsyncClient) -> None:
    await signup(client)
    again = await client.post("/v1/auth/signup", json={"email": "artist@EXAMPLE.com", "password": PASSWORD})
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


async def test_bad_emails_and_passwords(client: httpx.AsyncClient) -> None:
    cases = [
        ({"email": "not-an-email", "password": PASSWORD}, 422, "invalid_email"),
        ({"email": "a@b", "password": PASSWORD}, 422, "invalid_email"),
        ({"email": "x" * 70 + "@example.com", "password": PASSWORD}, 422, "invalid_email"),
        ({"email": "short@example.com", "password": "short"}, 422, "weak_password"),
        ({"email": "same@example.com", "password": "aaaaaaaaaaaaaa"}, 422, "weak_password"),
        ({"email": "sameasemail@example.com", "password": "sameasemail@example.com"}, 422, "weak_password"),
        ({"email": "x@example.com"}, 400, "invalid_request"),
        ({"email": 5, "password": PASSWORD}, 400, "invalid_request"),
        ({"email": "x@example.com", "password": "p" * 5000}, 400, "invalid_request"),
    ]
    for body, status, code in cases:
        response = await client.post("/v1/auth/signup", json=body)
        assert response.status_code == status, (body, response.text)
        problem = response.json()
        assert problem["code"] == code and problem["error"], (body, problem)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_wrong_password_and_unknown_email_look_the_same(client: httpx.AsyncClient) -> None:
    await signup(client)
    wrong = await client.post("/v1/auth/login", json={"email": "artist@example.com", "password": "wrong password!"})
    unknown = await client.post("/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    garbage = await client.post("/v1/auth/login", json={"email": "garbage", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == garbage.status_code == 401
    assert wrong.json()["error"] == unknown.json()["error"] == garbage.json()["error"]


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient) -> None:
    first = await signup(client)
    second = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert (await client.get("/v1/account", headers={"Authorization": f"Bearer {rotated['access_token']}"})
            ).status_code == 200
    # The first token again: someone replays a spent token -> the whole family is revoked.
    reuse = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and reuse.json()["code"] == "refresh_reused"
    after = await client.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401 and after.json()["code"] == "refresh_revoked"
    # Another session of the same artist is unaffected.
    login = (await client.post("/v1/auth/login", json={"email": "artist@example.com", "password": PASSWORD})).json()
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})).status_code == 200


async def test_unknown_and_expired_refresh_tokens(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway()
    tokens = gateway.container.get(TokenService)
    async with open_client(gateway) as client:
        unknown = await client.post("/v1/auth/refresh", json={"refresh_token": "no-such-token"})
        assert unknown.status_code == 401 and unknown.json()["code"] == "refresh_unknown"
        tokens.clock = lambda: time.time() - gateway.container.settings.refresh_token_ttl_s - 10
        old = await tokens.issue(Principal(kind="user", subject="u1"))
        tokens.clock = time.time
        expired = await client.post("/v1/auth/refresh", json={"refresh_token": old.refresh_token})
        assert expired.status_code == 401 and expired.json()["code"] == "refresh_expired"
        access = await client.get("/v1/account", headers={"Authorization": f"Bearer {old.access_token}"})
        assert access.status_code == 401 and access.json()["code"] == "token_expired"


async def test_logout_revokes_the_session(client: httpx.AsyncClient) -> None:
    pair = await signup(client)
    out = await client.post("/v1/auth/logout", headers=pair["headers"])
    assert out.status_code == 204, out.text
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refresh.status_code == 401 and refresh.json()["code"] == "refresh_revoked"
    other = await signup(client, email="other@example.com")
    by_refresh = await client.post("/v1/auth/logout", json={"refresh_token": other["refresh_token"]})
    assert by_refresh.status_code == 204
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})).status_code == 401
    assert (await client.post("/v1/auth/logout")).status_code == 401


async def test_bearer_problems(client: httpx.AsyncClient, gateway: GatewayApp) -> None:
    assert (await client.get("/v1/account")).status_code == 401
    for header in ("Basic abc", "Bearer", "Bearer not.a.jwt", "Bearer " + "x" * 5000):
        response = await client.get("/v1/account", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")
    forged = jwt.encode({"sub": "u", "kind": "user", "iat": int(time.time()), "exp": int(time.time()) + 60,
                         "jti": "x", "iss": "creatorpass-gateway"}, "another key of at least 32 bytes!!", "HS256")
    assert (await client.get("/v1/account", headers={"Authorization": f"Bearer {forged}"})).status_code == 401


async def test_wallet_sessions_from_token_service(client: httpx.AsyncClient, gateway: GatewayApp) -> None:
    tokens = gateway.container.get(TokenService)
    pair = await tokens.issue(Principal(kind="wallet", subject="addr_test1qexample"))
    assert tokens.verify(pair.access_token) == Principal(kind="wallet", subject="addr_test1qexample")
    account = await client.get("/v1/account", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert account.status_code == 403 and account.json()["code"] == "no_card_account"
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": pair.refresh_token})
    assert tokens.verify(rotated.json()["access_token"]).kind == "wallet"


async def test_rate_limits_per_address_and_email(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(auth_rate_per_minute=3)
    async with open_client(gateway) as client:
        await signup(client)
        statuses = [(await client.post("/v1/auth/login", json={"email": "artist@example.com",
                                                               "password": "wrong password!"})).status_code
                    for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        limited = await client.post("/v1/auth/login", json={"email": "artist@example.com", "password": PASSWORD})
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["code"] == "rate_limited"
        # Sign-ups from the same address: 1 done above, 2 more allowed, then 429.
        codes = [(await client.post("/v1/auth/signup", json={"email": f"a{i}@example.com", "password": PASSWORD})
                  ).status_code for i in range(3)]
        assert codes == [201, 201, 429]
        # The counters are rows in the database (shared by replicas), not process memory.
        rows = await gateway.container.db.read(
            lambda conn: conn.execute("SELECT bucket, hits FROM rate_limit_windows").fetchall())
        assert any(r["bucket"] == "login:email:artist@example.com" and r["hits"] >= 3 for r in rows)


async def test_concurrent_refreshes_of_one_token_revoke_the_family(client: httpx.AsyncClient) -> None:
    pair = await signup(client)
    replies = await asyncio.gather(*(client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
                                     for _ in range(5)))
    codes = sorted(r.status_code for r in replies)
    assert codes == [200, 401, 401, 401, 401], codes
    winner = next(r.json() for r in replies if r.status_code == 200)
    again = await client.post("/v1/auth/refresh", json={"refresh_token": winner["refresh_token"]})
    assert again.status_code == 401 and again.json()["code"] == "refresh_revoked"
