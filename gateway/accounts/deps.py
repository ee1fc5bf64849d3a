"""Litestar dependencies of the accounts domain, registered app-wide through ``ACCOUNT_DEPENDENCIES``.

A handler that declares ``principal: Principal`` requires a valid bearer token (401 problem
otherwise); ``optional_principal: Principal | None`` is None for an anonymous caller but still 401
for a bearer token that is present and invalid (a client should learn its token went bad).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from gateway.accounts.principal import Principal
from gateway.accounts.services import AccountService
from gateway.accounts.tokens import TokenService
from gateway.lib.errors import Unauthorized

__all__ = [
    "ACCOUNT_DEPENDENCIES",
    "bearer_token",
    "provide_account_service",
    "provide_optional_principal",
    "provide_principal",
    "provide_token_service",
]

MAX_TOKEN_CHARS = 4096


def bearer_token(request: Request[Any, Any, Any]) -> str:
    """The bearer token of ``Authorization``, '' when absent; Unauthorized when malformed."""
    header = request.headers.get("authorization", "")
    if not header:
        return ""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("The Authorization header must be 'Bearer <access token>'", code="token_invalid")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("The access token is not valid", code="token_invalid")
    return token


async def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal:
    token = bearer_token(request)
    if not token:
        raise Unauthorized()
    tokens: TokenService = state.container.get(TokenService)
    return tokens.verify(token)


async def provide_optional_principal(request: Request[Any, Any, Any], state: State) -> Principal | None:
    token = bearer_token(request)
    if not token:
        return None
    tokens: TokenService = state.container.get(TokenService)
    return tokens.verify(token)


async def provide_token_service(state: State) -> TokenService:
    service: TokenService = state.container.get(TokenService)
    return service


async def provide_account_service(state: State) -> AccountService:
    service: AccountService = state.container.get(AccountService)
    return service


ACCOUNT_DEPENDENCIES: dict[str, Provide] = {
    "principal": Provide(provide_principal),
    "optional_principal": Provide(provide_optional_principal),
}
