"""Stripe's test cards (docs.stripe.com/testing): numbers, their ``pm_card_*`` / ``tok_*`` aliases and
what each does when charged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["CARDS", "PM_ALIASES", "Card", "brand_of", "card_for_number", "luhn_ok"]


@dataclass(frozen=True)
class Card:
    number: str
    brand: str = "visa"
    funding: str = "credit"
    country: str = "US"
    # "succeed", "decline", "authenticate" (3-D Secure required), "dispute" (succeeds, then disputed)
    outcome: str = "succeed"
    code: str | None = None  # error code of a decline (card_declined, expired_card, incorrect_cvc, ...)
    decline_code: str | None = None
    message: str | None = None
    dispute_reason: str = "fraudulent"

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.number.encode()).hexdigest()[:16]


_DECLINED = "Your card was declined."
CARDS: dict[str, Card] = {c.number: c for c in (
    Card("4242424242424242"),
    Card("4000056655665556", funding="debit"),
    Card("5555555555554444", brand="mastercard"),
    Card("378282246310005", brand="amex"),
    Card("4000000000000002", outcome="decline", code="card_declined", decline_code="generic_decline",
         message=_DECLINED),
    Card("4000000000009995", outcome="decline", code="card_declined", decline_code="insufficient_funds",
         message="Your card has insufficient funds."),
    Card("4000000000009987", outcome="decline", code="card_declined", decline_code="lost_card",
         message=_DECLINED),
    Card("4000000000009979", outcome="decline", code="card_declined", decline_code="stolen_card",
         message=_DECLINED),
    Card("4000000000000069", outcome="decline", code="expired_card", decline_code="expired_card",
         message="Your card has expired."),
    Card("4000000000000127", outcome="decline", code="incorrect_cvc", decline_code="incorrect_cvc",
         message="Your card's security code is incorrect."),
    Card("4000000000000119", outcome="decline", code="processing_error", decline_code="processing_error",
         message="An error occurred while processing your card. Try again in a little bit."),
    Card("4000002760003184", outcome="authenticate"),
    Card("4000002500003155", outcome="authenticate"),
    Card("4000000000003220", outcome="authenticate"),
    Card("4000000000000259", outcome="dispute", dispute_reason="fraudulent"),
    Card("4000000000002685", outcome="dispute", dispute_reason="product_not_received"),
)}

PM_ALIASES: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_createDisputeProductNotReceived": "4000000000002685",
}
# tok_* test tokens name the same cards (tok_visa, tok_chargeDeclined, ...)
PM_ALIASES.update({"tok_" + alias.removeprefix("pm_card_"): number for alias, number in list(PM_ALIASES.items())})


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith(("6011", "65")):
        return "discover"
    return "unknown"


def card_for_number(number: str) -> Card:
    """The test card's behaviour, or an ordinary succeeding card of the number's brand."""
    return CARDS.get(number) or Card(number, brand=brand_of(number))
