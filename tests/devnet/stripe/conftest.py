"""The Stripe sandbox fixtures (tests/support/stripe_fixture.py), plus ``sandbox``: one process per
module, reset before each test (a start costs about a second on a loaded box)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stripe_fixture import StripeSandboxProcess, stripe_sandbox, stripe_sandbox_factory

__all__ = ["sandbox", "stripe_sandbox", "stripe_sandbox_factory"]


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[StripeSandboxProcess]:
    with StripeSandboxProcess() as sbx:
        yield sbx


@pytest.fixture
def sandbox(module_sandbox: StripeSandboxProcess) -> StripeSandboxProcess:
    module_sandbox.reset()
    return module_sandbox
