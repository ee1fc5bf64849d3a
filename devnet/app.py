"""Run the devnet: build (or replay) the chain, serve Ogmios, Kupo and the control API in one loop,
produce blocks on a timer, and stop gracefully on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from common.logging import get_logger
from common.settings import ConfigError
from devnet.chain import Chain
from devnet.config import DevnetSettings
from devnet.control import ControlState, create_control_app
from devnet.genesis import Genesis
from devnet.ledger.types import LedgerError
from devnet.store import ChainStore, StoreError

__all__ = ["DevnetServer", "build_chain", "serve"]

log = get_logger("devnet")
# The protocol servers (devnet-protocols) expose ``build_app(chain) -> aiohttp.web.Application``.
_PROTOCOL_APPS = {"ogmios": "devnet.ogmios.server", "kupo": "devnet.kupo.server"}


def build_chain(settings: DevnetSettings) -> Chain:
    """A fresh chain, or the one persisted in ``state_dir`` (its genesis wins; a different seed is an error)."""
    store = None
    if settings.state_dir is not None:
        try:
            store = ChainStore(settings.state_dir)
        except (StoreError, OSError) as exc:
            raise ConfigError(f"DEVNET_STATE_DIR: {exc}") from None
    stored = store.load_genesis() if store is not None else None
    if stored is not None:
        genesis = Genesis.from_state(stored)
        if genesis.seed != settings.seed:
            raise ConfigError(f"DEVNET_SEED: {settings.state_dir} holds a chain seeded {genesis.seed!r}, "
                              f"not {settings.seed!r}; use another state dir or the same seed")
    else:
        genesis = Genesis(
            seed=settings.seed,
            system_start=settings.start_time(),
            network_magic=settings.network_magic,
            network_id=settings.network_id,
            key_count=settings.genesis_keys,
            key_lovelace=settings.genesis_key_lovelace,
            extra_funds=settings.genesis_funds(),
        )
        if store is not None:
            store.save_genesis(genesis.to_state())
    try:
        return Chain.create(genesis, settings.protocol_parameters(), store=store)
    except LedgerError as exc:
        raise ConfigError(f"DEVNET_STATE_DIR: cannot replay the chain: {exc}") from None


def _protocol_factory(name: str) -> Callable[[Chain], web.Application] | None:
    try:
        module = importlib.import_module(_PROTOCOL_APPS[name])
    except ModuleNotFoundError as exc:
        if exc.name and _PROTOCOL_APPS[name].startswith(exc.name):
            return None
        raise
    factory: Callable[[Chain], web.Application] = getattr(module, "build_app", None) or module.create_app
    return factory


class DevnetServer:
    """The three HTTP servers and the block timer around one :class:`Chain`."""

    def __init__(self, settings: DevnetSettings, chain: Chain) -> None:
        self.settings = settings
        self.chain = chain
        self.ports: dict[str, int] = {}
        self.control = ControlState(chain, self.ports, settings.block_time,
                                    state_dir=str(settings.state_dir) if settings.state_dir else None)
        self._runners: list[web.AppRunner] = []
        self._timer: asyncio.Task[None] | None = None

    async def _serve(self, name: str, app: web.Application, port: int) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, port, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        address: Any = runner.addresses[0] if runner.addresses else (self.settings.host, port)
        self.ports[name] = int(address[1])

    async def start(self) -> None:
        for name, port in (("ogmios", self.settings.ogmios_port), ("kupo", self.settings.kupo_port)):
            factory = _protocol_factory(name)
            if factory is None:
                log.warning("protocol_server_missing", server=name)
                continue
            await self._serve(name, factory(self.chain), port)
        await self._serve("control", create_control_app(self.control), self.settings.control_port)
        if self.settings.block_time > 0:
            self._timer = asyncio.create_task(self._block_timer(self.settings.block_time))
        log.info("devnet_ready", ports=self.ports, tip=self.chain.tip_json(),
                 network_magic=self.chain.genesis.network_magic)

    async def _block_timer(self, interval_s: float) -> None:
        started = time.monotonic()
        ticks = 0
        while True:
            ticks += 1
            await asyncio.sleep(max(0.0, started + ticks * interval_s - time.monotonic()))
            async with self.control.lock:
                try:
                    self.chain.produce_blocks(1)
                except LedgerError as exc:  # keep the chain going; the operator sees why
                    log.error("block_production_failed", error=str(exc))

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self.chain.store is not None:
            self.chain.store.close()
        log.info("devnet_stopped", tip=self.chain.tip_json())


async def serve(settings: DevnetSettings) -> None:
    chain = build_chain(settings)
    server = DevnetServer(settings, chain)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
    except OSError as exc:
        await server.stop()
        raise ConfigError(f"DEVNET_HOST/ports: cannot listen: {exc}") from None
    await stop.wait()
    await server.stop()
