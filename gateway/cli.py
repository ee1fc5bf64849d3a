"""``python -m gateway``: the gateway's subcommands.

- ``serve`` (default): the HTTP API.
- ``settings``: every ``GATEWAY_*`` variable with its default.
- ``health-check``: GET /health (exit 0 when 200), backing the container HEALTHCHECK.

Domains add their own subcommands (``reconcile``, ``verify-receipt``) through ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

from common.logging import configure_logging, get_logger
from common.settings import load_settings, settings_table
from gateway.settings import GatewaySettings

__all__ = ["COMMANDS", "main"]

log = get_logger("gateway")

# name -> (help, add_arguments, run(settings, args) -> exit code); filled by domain CLI modules below.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                          Callable[[GatewaySettings, argparse.Namespace], int]]] = {}


async def _serve(settings: GatewaySettings) -> int:
    import uvicorn

    class _Server(uvicorn.Server):
        """Signals are ours (installed explicitly, so SIGINT works even when inherited as ignored)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    from gateway.server.core import build_app

    built = await build_app(settings)
    config = uvicorn.Config(built.app, host=settings.host, port=settings.port, log_config=None,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=10,
                            limit_concurrency=2048, backlog=2048)
    server = _Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    log.info("gateway_listening", url=settings.base_url)
    await server.serve()
    log.info("gateway_stopped")
    return 0


def _health_check(settings: GatewaySettings, timeout_s: float = 5.0) -> int:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
    url = f"http://{host}:{settings.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            print(resp.read(64 * 1024).decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: HTTP {exc.code}: {exc.read(4096).decode(errors='replace')}", file=sys.stderr)
    except OSError as exc:
        print(f"unreachable: {url}: {exc}", file=sys.stderr)
    return 1


def _load_domain_commands() -> None:
    import importlib

    for module in ("gateway.credits.cli", "gateway.burns.cli", "gateway.billing.cli"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: list[str] | None = None) -> int:
    _load_domain_commands()
    parser = argparse.ArgumentParser(prog="python -m gateway", description="creatorpass HTTP gateway")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the HTTP API (default)")
    sub.add_parser("settings", help="list every GATEWAY_* variable with its default")
    sub.add_parser("health-check", help="exit 0 when /health answers 200")
    for name, (help_text, add_args, _run) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    command = args.command or "serve"
    if command == "settings":
        print(settings_table(GatewaySettings))
        return 0
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level, json=settings.log_json)
    if command == "health-check":
        return _health_check(settings)
    if command in COMMANDS:
        return COMMANDS[command][2](settings, args)
    return asyncio.run(_serve(settings))
