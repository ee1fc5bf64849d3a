"""``python -m devnet.stripe``: the offline Stripe sandbox (see devnet/stripe/README.md)."""

from __future__ import annotations

import asyncio

from common.logging import configure_logging
from common.settings import run_main
from devnet.stripe.app import serve
from devnet.stripe.settings import parse_args


def main() -> int:
    settings = parse_args()
    configure_logging("stripe-sandbox", settings.log_level, json=settings.log_json)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    run_main(main)
