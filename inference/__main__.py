"""``python -m inference [serve | health-check | settings | export-cppn PATH]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

from common.logging import configure_logging, get_logger
from common.settings import load_settings, run_main, settings_table
from inference.settings import InferenceSettings

log = get_logger("inference")


async def _serve(settings: InferenceSettings) -> None:
    from inference.server import InferenceServer  # heavy imports (onnxruntime) only when serving

    server = await InferenceServer(settings).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("inference_stopping")
    await server.stop(grace_s=5.0)
    log.info("inference_stopped")


def _health_check(settings: InferenceSettings, timeout_s: float = 3.0) -> int:
    host = "127.0.0.1" if settings.health_host in ("0.0.0.0", "") else settings.health_host
    url = f"http://{host}:{settings.health_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = resp.read(64 * 1024)
            print(body.decode(errors="replace"))
            return 0 if resp.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: HTTP {exc.code}", file=sys.stderr)
    except OSError as exc:
        print(f"unreachable: {url}: {exc}", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the gRPC server (the default)")
    sub.add_parser("health-check", help="exit 0 when /health answers 200 (for a container HEALTHCHECK)")
    sub.add_parser("settings", help="list the INFERENCE_* environment variables")
    export = sub.add_parser("export-cppn", help="write the built-in model's ONNX graph to PATH")
    export.add_argument("path", type=Path)
    args = parser.parse_args()
    if args.command == "settings":
        print(settings_table(InferenceSettings))
        return 0
    if args.command == "export-cppn":
        from inference.cppn import cppn_model_bytes

        args.path.write_bytes(cppn_model_bytes())
        print(json.dumps({"path": str(args.path), "bytes": args.path.stat().st_size}))
        return 0
    settings = load_settings(InferenceSettings)
    if args.command == "health-check":
        return _health_check(settings)
    configure_logging("inference", settings.log_level, settings.log_json)
    asyncio.run(_serve(settings))
    return 0


if __name__ == "__main__":
    run_main(main)
