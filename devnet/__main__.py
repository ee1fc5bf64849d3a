"""``python -m devnet``: an offline Cardano devnet speaking Ogmios v6 and Kupo v2 (see devnet/README.md)."""

from __future__ import annotations

import asyncio

from common.logging import configure_logging
from common.settings import run_main
from devnet.app import serve
from devnet.config import parse_args


def main() -> int:
    settings = parse_args()
    configure_logging("devnet", settings.log_level, json=settings.log_json)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    run_main(main)
