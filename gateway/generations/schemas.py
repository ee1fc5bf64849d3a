"""Request and response bodies of the generations API (msgspec Structs, bounds checked on decode)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = [
    "GenerateArtRequest",
    "GenerateArtResponse",
    "GenerationCreated",
    "GenerationPage",
    "GenerationParams",
    "GenerationRequest",
    "GenerationView",
    "ImageView",
]

MAX_PROMPT_CHARS = 2000
MAX_IMAGES = 4


class GenerationParams(msgspec.Struct, forbid_unknown_fields=True):
    """What inference accepts; 0 means the model's default. Unknown fields are refused (a typo is
    better reported than silently ignored)."""

    width: Annotated[int, msgspec.Meta(ge=0, le=1024, multiple_of=8)] = 0
    height: Annotated[int, msgspec.Meta(ge=0, le=1024, multiple_of=8)] = 0
    steps: Annotated[int, msgspec.Meta(ge=0, le=50)] = 0
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None
    num_images: Annotated[int, msgspec.Meta(ge=1, le=MAX_IMAGES)] = 1
    negative_prompt: Annotated[str, msgspec.Meta(max_length=MAX_PROMPT_CHARS)] = ""
    model: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9._-]*$")] = ""


class GenerationRequest(msgspec.Struct, forbid_unknown_fields=True):
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=r"\S",
                                        description="What to draw (not only whitespace)")]
    params: GenerationParams = msgspec.field(default_factory=GenerationParams)


class GenerationCreated(msgspec.Struct):
    id: str
    status: str
    events_url: str
    url: str


class ImageView(msgspec.Struct):
    url: str  # signed, expiring; works in <img src> without a bearer token
    sha256: str
    index: int
    width: int
    height: int
    seed: int
    model: str


class GenerationView(msgspec.Struct):
    id: str
    status: str  # queued | running | succeeded | failed
    prompt: str
    params: dict[str, Any]
    images: list[ImageView]
    error: str | None
    error_code: str | None
    payment: str
    created_at: str
    updated_at: str
    events_url: str


class GenerationPage(msgspec.Struct):
    items: list[GenerationView]
    next_cursor: str | None


class GenerateArtRequest(msgspec.Struct):
    """The seed's ``POST /api/generate-art``: ``{prompt}`` with a JWT (card credits), or
    ``{prompt, address}`` without one (the artist's wallet, handled by the web3 domain)."""

    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=r"\S",
                                        description="What to draw (not only whitespace)")]
    address: Annotated[str, msgspec.Meta(max_length=200)] = ""


class GenerateArtResponse(msgspec.Struct):
    imageUrls: list[str]
    id: str
