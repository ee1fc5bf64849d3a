from tests.support.devnet_fixture import devnet, devnet_factory  # noqa: F401
from tests.support.indexer_fixture import indexer_factory  # noqa: F401
