"""The Stripe sandbox fixtures (tests/support/stripe_fixture.py) for these tests."""

from tests.support.stripe_fixture import stripe_sandbox, stripe_sandbox_factory  # noqa: F401
