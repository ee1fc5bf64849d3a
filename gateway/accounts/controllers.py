"""HTTP surface of the accounts domain: /v1/auth/* and /v1/account."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from gateway.accounts.deps import bearer_token, provide_account_service, provide_token_service
from gateway.accounts.principal import Principal
from gateway.accounts.schemas import AccountView, Credentials, LogoutRequest, RefreshRequest, TokenPair
from gateway.accounts.services import AccountService
from gateway.accounts.tokens import TokenService
from gateway.credits.ledger import Ledger
from gateway.lib.errors import Unauthorized

__all__ = ["AccountController", "AuthController"]

BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["accounts"]
    dependencies = {"accounts": Provide(provide_account_service), "tokens": Provide(provide_token_service)}

    @post("/signup", status_code=201, summary="Create an account with email + password; starts a session")
    async def signup(self, data: JSONBody[Credentials], accounts: NamedDependency[AccountService],
                     request: Request[Any, Any, Any]) -> TokenPair:
        return await accounts.signup(email=data.email, password=data.password, client=client_address(request))

    @post("/login", status_code=200, summary="Sign in with email + password")
    async def login(self, data: JSONBody[Credentials], accounts: NamedDependency[AccountService],
                    request: Request[Any, Any, Any]) -> TokenPair:
        return await accounts.login(email=data.email, password=data.password, client=client_address(request))

    @post("/refresh", status_code=200,
          summary="Rotate a refresh token (each is single-use; reusing one revokes the whole session)")
    async def refresh(self, data: JSONBody[RefreshRequest], tokens: NamedDependency[TokenService]) -> TokenPair:
        return await tokens.refresh(data.refresh_token)

    @post("/logout", status_code=204, security=BEARER,
          summary="Revoke the session (the bearer's, and/or the one of refresh_token); access tokens expire")
    async def logout(self, accounts: NamedDependency[AccountService], tokens: NamedDependency[TokenService],
                     request: Request[Any, Any, Any], data: JSONBody[LogoutRequest | None] = None) -> None:
        token = bearer_token(request)
        refresh_token = data.refresh_token if data else ""
        if not token and not refresh_token:
            raise Unauthorized("Send the bearer token or the refresh token of the session to sign out")
        family_id = ""
        principal = Principal(kind="user", subject="")
        if token:
            claims = tokens.decode(token)
            family_id = str(claims.get("fam", ""))
            principal = tokens.verify(token)
        await accounts.logout(principal, family_id=family_id, refresh_token=refresh_token)


class AccountController(Controller):
    path = "/v1/account"
    tags = ["accounts"]
    dependencies = {"accounts": Provide(provide_account_service)}

    @get("", summary="The signed-in artist's account and credits", security=BEARER)
    async def account(self, principal: NamedDependency[Principal], accounts: NamedDependency[AccountService],
                      state: State) -> AccountView:
        return await accounts.account(principal, state.container.get(Ledger))
