"""``python -m indexer [serve | health-check | settings]``; configuration comes from ``INDEXER_*`` variables."""

from __future__ import annotations

import argparse
import asyncio
import sys
import urllib.error
import urllib.request

from common.logging import configure_logging
from common.settings import load_settings, run_main, settings_table
from indexer.config import IndexerSettings

HEALTH_CHECK_TIMEOUT_S = 5.0


def _health_check(settings: IndexerSettings) -> int:
    """Exit 0 while the indexer answers 200 (synced) or 202 (catching up); 1 otherwise."""
    host = "127.0.0.1" if settings.health_host in ("0.0.0.0", "") else settings.health_host
    url = f"http://{host}:{settings.health_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_CHECK_TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"indexer health check: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    print(f"indexer health check: {status}")
    return 0 if status in (200, 202) else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m indexer", description="creatorpass chain indexer")
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "health-check", "settings"))
    args = parser.parse_args()
    if args.command == "settings":
        print(settings_table(IndexerSettings))
        return 0
    settings = load_settings(IndexerSettings)
    if args.command == "health-check":
        return _health_check(settings)
    configure_logging("indexer", settings.log_level, settings.log_json)
    from indexer.app import run_until_signal

    asyncio.run(run_until_signal(settings))
    return 0


if __name__ == "__main__":
    run_main(main)
