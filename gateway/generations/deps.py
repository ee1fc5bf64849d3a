"""Litestar providers of the generations domain."""

from __future__ import annotations

from litestar.datastructures import State

from gateway.generations.services import GenerationService

__all__ = ["provide_generation_service"]


async def provide_generation_service(state: State) -> GenerationService:
    service: GenerationService = state.container.get(GenerationService)
    return service
