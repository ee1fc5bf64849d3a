"""Finding an SD-Turbo-style model directory's parts, its optional model.json, and its tokenizer.

Two layouts are accepted (the first is what ``optimum-cli export onnx`` writes)::

    <dir>/text_encoder/model.onnx   or  <dir>/text_encoder.onnx
    <dir>/unet/model.onnx           or  <dir>/unet.onnx          (+ external weight files beside it)
    <dir>/vae_decoder/model.onnx    or  <dir>/vae_decoder.onnx
    <dir>/tokenizer/tokenizer.json  or  <dir>/tokenizer.json
    <dir>/model.json                (optional: name, description, defaults; see README)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from inference.errors import ModelLoadError

__all__ = ["PARTS", "ModelMeta", "SdLayout", "find_model_dirs", "load_tokenizer", "looks_like_model_dir", "read_meta"]

PARTS = ("text_encoder", "unet", "vae_decoder")
MAX_META_BYTES = 64 * 1024


@dataclass(frozen=True)
class ModelMeta:
    name: str
    description: str = "Stable-Diffusion-Turbo-style pipeline (text encoder, UNet, VAE decoder)"
    default_width: int = 512
    default_height: int = 512
    default_steps: int = 1
    max_steps: int = 4
    size_multiple: int = 64
    scaling_factor: float = 0.18215
    vae_scale: int = 8
    max_length: int = 77
    pad_token_id: int | None = None


@dataclass(frozen=True)
class SdLayout:
    root: Path
    text_encoder: Path
    unet: Path
    vae_decoder: Path
    tokenizer: Path
    meta: ModelMeta

    @classmethod
    def resolve(cls, root: Path) -> SdLayout:
        if not root.is_dir():
            raise ModelLoadError(f"{root}: not a directory")
        parts = {}
        for part in PARTS:
            candidates = [root / part / "model.onnx", root / f"{part}.onnx"]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise ModelLoadError(f"{root}: missing {part} (expected {part}/model.onnx or {part}.onnx)")
            parts[part] = found
        tokenizer = next((c for c in (root / "tokenizer" / "tokenizer.json", root / "tokenizer.json")
                          if c.is_file()), None)
        if tokenizer is None:
            raise ModelLoadError(f"{root}: missing tokenizer (expected tokenizer/tokenizer.json or tokenizer.json)")
        return cls(root, parts["text_encoder"], parts["unet"], parts["vae_decoder"], tokenizer, read_meta(root))


def read_meta(root: Path) -> ModelMeta:
    path = root / "model.json"
    if not path.is_file():
        return ModelMeta(name=root.name)
    try:
        if path.stat().st_size > MAX_META_BYTES:
            raise ModelLoadError(f"{path}: larger than {MAX_META_BYTES} bytes")
        raw: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: unreadable: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    known = set(ModelMeta.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ModelLoadError(f"{path}: unknown keys {', '.join(unknown)}")
    raw.setdefault("name", root.name)
    try:
        meta = ModelMeta(**raw)
    except TypeError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    if not (1 <= meta.default_steps <= meta.max_steps <= 50) or meta.vae_scale < 1 or meta.size_multiple < 8:
        raise ModelLoadError(f"{path}: inconsistent steps, vae_scale or size_multiple")
    return meta


def looks_like_model_dir(path: Path) -> bool:
    """True when ``path`` holds any part of a model (so a broken one is reported, not skipped)."""
    names = {*PARTS, *(f"{p}.onnx" for p in PARTS), "model.json"}
    return path.is_dir() and any((path / n).exists() for n in names)


def find_model_dirs(model_dir: Path) -> list[Path]:
    """``model_dir`` itself if it is a model, else its subdirectories that are (sorted by name)."""
    if looks_like_model_dir(model_dir):
        return [model_dir]
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir}: model directory does not exist")
    return sorted(p for p in model_dir.iterdir() if looks_like_model_dir(p))


def _special_pad_token(tokenizer_path: Path) -> str | None:
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = tokenizer_path.parent / name
        if not path.is_file() or path.stat().st_size > MAX_META_BYTES:
            continue
        try:
            pad = json.loads(path.read_text()).get("pad_token")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(pad, dict):
            pad = pad.get("content")
        if isinstance(pad, str):
            return pad
    return None


def load_tokenizer(layout: SdLayout, length: int) -> Tokenizer:
    """The tokenizer, truncating and padding to ``length`` (the text encoder's sequence length)."""
    try:
        tokenizer = Tokenizer.from_file(str(layout.tokenizer))
    except Exception as exc:  # tokenizers raises plain Exception subclasses from Rust
        raise ModelLoadError(f"{layout.tokenizer}: cannot load tokenizer: {exc}") from None
    pad_id = layout.meta.pad_token_id
    padding = tokenizer.padding
    if pad_id is None and padding is not None:
        pad_id = int(padding["pad_id"])
    if pad_id is None:
        pad_token = _special_pad_token(layout.tokenizer)
        pad_id = tokenizer.token_to_id(pad_token) if pad_token else None
    if pad_id is None:
        pad_id = tokenizer.token_to_id("<|endoftext|>")
    if pad_id is None:
        pad_id = 0
    tokenizer.enable_truncation(max_length=length)
    tokenizer.enable_padding(length=length, pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or "")
    return tokenizer
