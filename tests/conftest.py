"""Root test configuration: shared fixtures live in tests/support and are registered here."""

pytest_plugins: list[str] = [
    "tests.support.devnet_fixture",
    "tests.support.devnet_protocols",
    "tests.support.indexer_fixture",
]
