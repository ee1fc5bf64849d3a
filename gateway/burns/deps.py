"""Litestar dependencies of the burns domain (services looked up in the container)."""

from __future__ import annotations

from litestar.datastructures import State

from gateway.burns.services import BurnService

__all__ = ["provide_burn_service"]


async def provide_burn_service(state: State) -> BurnService:
    service: BurnService = state.container.get(BurnService)
    return service
