"""The web3 domain's errors: subclasses of the gateway's tree, each with its own problem ``code``."""

from __future__ import annotations

from gateway.lib.errors import (
    BadGateway,
    ClientError,
    Conflict,
    PaymentRequired,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)

__all__ = [
    "INSUFFICIENT_CREATE",
    "ChainError",
    "ChainUnavailable",
    "InsufficientCreate",
    "InvalidAddress",
    "InvalidSignature",
    "InvalidWitnessSet",
    "LedgerRefused",
    "PaymentNotValid",
    "QuoteExpired",
    "QuoteNotCoverable",
    "Redeemed",
]

INSUFFICIENT_CREATE = "Insufficient CREATE tokens. Please purchase more to continue."



class InvalidAddress(ClientError):
    code = "invalid_address"


class InvalidSignature(Unauthorized):
    """A ``signData`` answer that does not prove control of the address for our challenge."""

    code = "invalid_signature"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={})


class InvalidWitnessSet(ClientError):
    code = "invalid_witness_set"


class InsufficientCreate(PaymentRequired):
    code = "insufficient_create"

    def __init__(self, detail: str = INSUFFICIENT_CREATE, **kw: object) -> None:
        super().__init__(detail, **kw)  # type: ignore[arg-type]


class QuoteNotCoverable(Unprocessable):
    """The UTxOs we can see cannot pay fee and min-UTxO: the body names what is missing."""

    code = "quote_not_coverable"


class QuoteExpired(Conflict):
    code = "quote_expired"


class PaymentNotValid(Unprocessable):
    """The transaction offered as payment breaks one of the on-chain rules."""

    code = "payment_not_valid"


class Redeemed(Conflict):
    code = "already_redeemed"


class LedgerRefused(Unprocessable):
    code = "ledger_refused"


class ChainUnavailable(ServiceUnavailable):
    code = "chain_unavailable"


class ChainError(BadGateway):
    code = "chain_error"
