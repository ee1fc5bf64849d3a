"""HTTP surface of the generations domain: /v1/generations, /v1/images, and the seed's /api/generate-art."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from gateway.accounts.principal import Principal
from gateway.generations.deps import provide_generation_service
from gateway.generations.events import EventHub
from gateway.generations.images import ImageStore, ImageUrlSigner, is_sha256
from gateway.generations.payment import WalletGenerateArt
from gateway.generations.schemas import (
    GenerateArtRequest,
    GenerateArtResponse,
    GenerationCreated,
    GenerationPage,
    GenerationRequest,
    GenerationView,
)
from gateway.generations.services import GenerationService
from gateway.lib.errors import ClientError, GatewayError, NotFound, ServiceUnavailable, Unauthorized

__all__ = ["GenerateArtController", "GenerationController", "ImageController"]

BEARER: list[dict[str, list[str]]] = [{"BearerToken": []}]
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
SSE_KEEPALIVE_S = 15.0
GenerationId = Annotated[str, PathParameter(max_length=200)]
ImageHash = Annotated[str, PathParameter(max_length=128)]
IdempotencyHeader = Annotated[str, HeaderParameter(
    name="Idempotency-Key", required=False, max_length=1000,
    description="Required. Same key + same body = the same generation; same key + other body = 422")]


def idempotency_key(key: str) -> str:
    if not key:
        raise ClientError("The Idempotency-Key header is required (a fresh random value per new generation, "
                          "the same value when retrying)", code="idempotency_key_required")
    if not _KEY.match(key):
        raise ClientError("The Idempotency-Key header must be 1-255 visible ASCII characters",
                          code="idempotency_key_invalid")
    return key


async def _disconnected(request: Request[Any, Any, Any]) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


class GenerationController(Controller):
    path = "/v1/generations"
    tags = ["generations"]
    security = BEARER
    dependencies = {"generations": Provide(provide_generation_service)}

    @post("", status_code=202, summary="Start a generation (1 credit per image; Idempotency-Key header required)")
    async def create(self, principal: NamedDependency[Principal], generations: NamedDependency[GenerationService],
                     data: JSONBody[GenerationRequest],
                     idempotency: IdempotencyHeader = "") -> GenerationCreated:
        row = await generations.create(principal, data, idempotency_key(idempotency))
        return GenerationCreated(id=row.id, status=row.status, events_url=generations.events_url(row.id),
                                 url=f"{generations.settings.base_url}/v1/generations/{row.id}")

    @get("", summary="The caller's generations, newest first (cursor pagination)")
    async def list_generations(self, principal: NamedDependency[Principal],
                               generations: NamedDependency[GenerationService],
                               cursor: Annotated[str, QueryParameter(max_length=200)] = "",
                               limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20) -> GenerationPage:
        return await generations.page(principal, cursor, limit)

    @get("/{generation_id:str}", summary="One generation: status, images (signed URLs once succeeded), error")
    async def get_generation(self, principal: NamedDependency[Principal],
                             generations: NamedDependency[GenerationService],
                             generation_id: GenerationId) -> GenerationView:
        return generations.view(await generations.get(principal, generation_id))

    @get("/{generation_id:str}/events", summary="Server-Sent Events: state, queued, running, step, image, done, error")
    async def events(self, principal: NamedDependency[Principal], generations: NamedDependency[GenerationService],
                     generation_id: GenerationId, state: State) -> ServerSentEvent:
        await generations.get(principal, generation_id)  # 404 for anyone but the owner
        hub: EventHub = state.container.get(EventHub)
        return ServerSentEvent(_event_stream(generations, hub, principal, generation_id))


async def _event_stream(generations: GenerationService, hub: EventHub, principal: Principal,
                        generation_id: str) -> AsyncIterator[ServerSentEventMessage]:
    with hub.subscribe(generation_id) as queue:
        row = await generations.get(principal, generation_id)
        view = generations.view(row)
        yield ServerSentEventMessage(data=msgspec.json.encode(view).decode(), event="state")
        if row.status in ("succeeded", "failed"):
            yield ServerSentEventMessage(data=msgspec.json.encode(view).decode(),
                                         event="done" if row.status == "succeeded" else "error")
            return
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
            except TimeoutError:
                yield ServerSentEventMessage(comment="keep-alive")
                continue
            if event.terminal:
                final = generations.view(await generations.get(principal, generation_id))
                yield ServerSentEventMessage(data=msgspec.json.encode(final).decode(), event=event.kind)
                return
            yield ServerSentEventMessage(data=json.dumps(event.data), event=event.kind)


class ImageController(Controller):
    path = "/v1/images"
    tags = ["generations"]
    dependencies = {"generations": Provide(provide_generation_service)}

    @get("/{sha256:str}", summary="An image: to its owner's bearer token, or with a valid signed URL",
         media_type="image/png")
    async def image(self, sha256: ImageHash, optional_principal: NamedDependency[Principal | None],
                    generations: NamedDependency[GenerationService], state: State,
                    exp: Annotated[str, QueryParameter(max_length=20)] = "",
                    sig: Annotated[str, QueryParameter(max_length=128)] = "") -> Response[bytes]:
        missing = NotFound("No such image", code="image_not_found")
        if not is_sha256(sha256):
            raise missing
        signer: ImageUrlSigner = state.container.get(ImageUrlSigner)
        allowed = bool(exp and sig) and signer.valid(sha256, exp, sig)
        if not allowed and optional_principal is not None:
            allowed = await generations.owns_image(optional_principal, sha256)
        data = await state.container.get(ImageStore).get(sha256) if allowed else None
        if data is None:
            raise missing
        return Response(data, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600", "ETag": f'"{sha256}"'})


class GenerateArtController(Controller):
    """The seed's single call: with a JWT it pays with card credits and waits for the images."""

    path = "/api/generate-art"
    tags = ["seed"]
    dependencies = {"generations": Provide(provide_generation_service)}

    @post("", status_code=200, summary="Seed-compatible: {prompt} + JWT → {imageUrls}; {prompt, address} → web3")
    async def generate_art(self, optional_principal: NamedDependency[Principal | None],
                           generations: NamedDependency[GenerationService], request: Request[Any, Any, Any],
                           state: State, data: JSONBody[GenerateArtRequest]) -> Any:
        body = data
        if optional_principal is None or (body.address and optional_principal.kind == "wallet"):
            if not body.address:
                raise Unauthorized("Sign in (bearer token) to pay with credits, or send your wallet address")
            wallet = state.container.find(WalletGenerateArt)
            if wallet is None:
                raise ServiceUnavailable("Wallet payments are not enabled on this gateway", code="web3_disabled")
            return await wallet.generate_art(msgspec.json.decode(await request.body()), optional_principal)
        row = await generations.create(optional_principal, GenerationRequest(prompt=body.prompt),
                                       f"generate-art:{uuid.uuid4().hex}", fresh_key=True)
        waiter = asyncio.ensure_future(generations.wait(row.id))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not waiter.done():
            if generations.settings.on_client_disconnect == "cancel":
                generations.runner.cancel(row.id)
            waiter.cancel()
            raise ClientError("The client went away", code="client_gone")
        final = await generations.get(optional_principal, row.id)
        if final.status != "succeeded":
            raise _failure_problem(final.error_code, final.error)
        view = generations.view(final)
        return GenerateArtResponse(imageUrls=[image.url for image in view.images], id=row.id)


def _failure_problem(code: str, message: str) -> GatewayError:
    if code == "inference_busy":
        return ServiceUnavailable(message, code=code, retry_after_s=2)
    if code in ("safety_filtered", "inference_rejected"):
        error = GatewayError(message, code=code)
        error.status, error.title = 422, "Generation refused"
        return error
    error = GatewayError(message or "The generation failed; you were not charged", code=code or "generation_failed")
    error.status, error.title = 502, "Generation failed"
    return error


