"""The accounts tests run on both database backends (SQLite, and PostgreSQL for replicas)."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def gateway_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
