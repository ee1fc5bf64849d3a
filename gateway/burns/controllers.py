"""HTTP surface of burns: a generation's receipt (owner only) and the public list of burn batches.

``/v1/generations/{id}`` belongs to the generations domain; the receipt is a separate controller here.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter

from gateway.accounts.principal import Principal
from gateway.burns.deps import provide_burn_service
from gateway.burns.services import BurnService

__all__ = ["BurnsController", "ReceiptController"]

BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]
DEPENDENCIES = {"burns": Provide(provide_burn_service)}
GenerationId = Annotated[str, PathParameter(min_length=1, max_length=140, pattern=r"^[\x21-\x7e]+$")]
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Batches per page (1-100)")]
Before = Annotated[str | None, QueryParameter(required=False, min_length=1, max_length=64,
                                              pattern=r"^[A-Za-z0-9_-]+$",
                                              description="The `next` cursor of the previous page")]


class ReceiptController(Controller):
    path = "/v1/generations"
    tags = ["burns"]
    dependencies = DEPENDENCIES

    @get("/{generation_id:str}/receipt", security=BEARER,
         summary="The burn receipt of one generation (owner only): burn tx, Merkle leaf, proof, root, depth")
    async def receipt(self, generation_id: GenerationId, principal: NamedDependency[Principal],
                      burns: NamedDependency[BurnService]) -> dict[str, Any]:
        return await burns.receipt(generation_id, owner=principal.owner, user_id=principal.user_id)


class BurnsController(Controller):
    path = "/v1/burns"
    tags = ["burns"]
    dependencies = DEPENDENCIES

    @get("/", summary="Every custodial burn batch (newest first, paged) and the totals: credits spent, tokens "
                      "burned, pending")
    async def list_burns(self, burns: NamedDependency[BurnService], limit: Limit = 50,
                         before: Before = None) -> dict[str, Any]:
        return await burns.page(limit=limit, before=before)
