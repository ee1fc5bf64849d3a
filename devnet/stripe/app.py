"""Assemble and run the sandbox: one aiohttp server for the API, the pages, Stripe.js and the controls;
a webhook dispatcher; a one-second housekeeping tick (expire Checkout Sessions, save the state file)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Any

from aiohttp import web

from common.logging import get_logger
from common.settings import ConfigError
from devnet.stripe.api import SANDBOX_KEY, add_api_routes, json_response
from devnet.stripe.checkout import expire_overdue
from devnet.stripe.control import DISPATCHER_KEY, add_control_routes
from devnet.stripe.endpoints import add_settings_endpoints
from devnet.stripe.pages import add_page_routes
from devnet.stripe.sandbox import Sandbox
from devnet.stripe.settings import StripeSandboxSettings
from devnet.stripe.store import write_json_atomically
from devnet.stripe.webhooks import Dispatcher

__all__ = ["StripeSandboxServer", "build_app", "serve"]

log = get_logger("devnet.stripe")
TICK_S = 1.0


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPRedirection:
        raise
    except web.HTTPRequestEntityTooLarge:
        return json_response(413, {"error": {"type": "invalid_request_error",
                                             "message": "The request body is too large."}})
    except web.HTTPException as exc:
        return json_response(exc.status, {"error": {"type": "invalid_request_error", "message": exc.reason}})
    except Exception:  # a bug: log it and answer Stripe's api_error shape, never a stack trace
        log.exception("request_failed", path=request.path[:200])
        return json_response(500, {"error": {"type": "api_error",
                                             "message": "The sandbox failed to handle this request; see its log."}})


def build_app(sb: Sandbox, dispatcher: Dispatcher) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=sb.settings.max_body_bytes)
    app[SANDBOX_KEY] = sb
    app[DISPATCHER_KEY] = dispatcher
    add_api_routes(app)
    add_control_routes(app)
    add_page_routes(app)
    return app


class StripeSandboxServer:
    def __init__(self, settings: StripeSandboxSettings) -> None:
        self.settings = settings
        self.sandbox = Sandbox(settings)
        self.dispatcher = Dispatcher(self.sandbox)
        self._runner: web.AppRunner | None = None
        self._tick: asyncio.Task[None] | None = None
        self.port = settings.port

    def _load_state(self) -> None:
        path = self.settings.state_file
        if path is None or not path.exists():
            return
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            self.sandbox.store.load_state(state["store"])
            self.dispatcher.load_state(state.get("deliveries", []))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"STRIPE_SANDBOX_STATE_FILE: cannot load {path}: {exc}") from None

    def save_state(self) -> None:
        path = self.settings.state_file
        if path is None:
            return
        write_json_atomically(path, {"store": self.sandbox.store.to_state(), "deliveries": self.dispatcher.to_state()})
        self.sandbox.store.dirty = False

    async def start(self) -> None:
        self._load_state()
        add_settings_endpoints(self.sandbox)
        self.dispatcher.start()
        runner = web.AppRunner(build_app(self.sandbox, self.dispatcher), access_log=None, handle_signals=False,
                               shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            await self.dispatcher.stop()
            raise ConfigError(f"STRIPE_SANDBOX_HOST/PORT: cannot listen: {exc}") from None
        self._runner = runner
        if runner.addresses:
            self.port = int(runner.addresses[0][1])
        if not self.settings.public_url:
            self.sandbox.public_url = f"http://{self.settings.host}:{self.port}"
        self._tick = asyncio.create_task(self._housekeeping())
        log.info("stripe_sandbox_ready", url=self.sandbox.public_url, port=self.port,
                 webhook_endpoints=[e["url"] for e in self.sandbox.store.of_kind("webhook_endpoint")],
                 chaos=self.settings.chaos_seed is not None, state_file=str(self.settings.state_file or ""))

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                expire_overdue(self.sandbox)
                if self.sandbox.store.dirty:
                    self.save_state()  # on the loop: the state must not change while it is written
            except Exception:  # keep ticking; the operator sees why
                log.exception("housekeeping_failed")

    async def stop(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick
        if self._runner is not None:
            await self._runner.cleanup()
        await self.dispatcher.stop()
        self.save_state()
        log.info("stripe_sandbox_stopped")


async def serve(settings: StripeSandboxSettings) -> None:
    server = StripeSandboxServer(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    await stop.wait()
    await server.stop()
