"""Request and response bodies of the accounts API (msgspec Structs; validation in ``validation``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["AccountView", "Credentials", "LogoutRequest", "RefreshRequest", "TokenPair"]

# Bounds on raw input before any normalisation: an email is at most 254 characters (RFC 5321);
# a password longer than 1 KiB is refused rather than hashed (argon2 would accept it, at a cost).
MAX_EMAIL_CHARS = 320
MAX_PASSWORD_CHARS = 1024
MAX_REFRESH_TOKEN_CHARS = 256


class Credentials(msgspec.Struct, forbid_unknown_fields=False):
    """``POST /v1/auth/signup`` and ``POST /v1/auth/login``."""

    email: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EMAIL_CHARS, description="The artist's email")]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PASSWORD_CHARS,
                                          description="At least GATEWAY_PASSWORD_MIN_LENGTH characters")]


class RefreshRequest(msgspec.Struct):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REFRESH_TOKEN_CHARS)]


class LogoutRequest(msgspec.Struct):
    """Optional body of ``POST /v1/auth/logout``: the refresh token to revoke (else the bearer's session)."""

    refresh_token: Annotated[str, msgspec.Meta(max_length=MAX_REFRESH_TOKEN_CHARS)] = ""


class TokenPair(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int  # seconds until the access token expires
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


class AccountView(msgspec.Struct):
    """``GET /v1/account``: the card account's credits (available = credited - spent - pending)."""

    email: str
    credits_available: int
    credits_pending: int
    frozen: bool
    frozen_reason: str = ""
