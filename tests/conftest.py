"""Root test configuration: shared fixtures live in tests/support and are registered here."""

from __future__ import annotations

import faulthandler
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins: list[str] = [
    "tests.support.devnet_fixture",
    "tests.support.devnet_protocols",
    "tests.support.indexer_fixture",
]

# pytest-timeout (300 s per test) does not reach every teardown: a scoped event loop's finalizer that
# waits forever on a task refusing to cancel would hang the run. This watchdog covers one test's whole
# protocol (setup, call, teardown, the scoped finalizers it triggers): past the limit it prints every
# thread's stack and ends the run with a failure, instead of hanging CI until its time limit.
WATCHDOG_S = 900


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Iterator[None]:
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
