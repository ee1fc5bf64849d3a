"""The built-in generator: a CPPN defined in code and exported to ONNX with fixed weights.

A compositional pattern-producing network maps each pixel's coordinates (x, y, r) through a few
sin/tanh layers to a scalar field, which a cosine palette turns into colour. The prompt chooses the
network's first-layer weights, phases and palette through a latent vector (one hashed vector per
word, summed), and the seed perturbs it, so the same prompt and seed always give the same image and
different prompts give visibly different ones. ``detail`` (1..4, the request's steps) switches on
higher-frequency units, so more steps give finer structure.

The graph is built with ``onnx.helper`` from a fixed-seed numpy RNG: its bytes are deterministic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "CPPN_MAX_DETAIL",
    "LATENT_DIM",
    "CppnSpec",
    "build_cppn_model",
    "cppn_coords",
    "cppn_latent",
    "cppn_model_bytes",
]

LATENT_DIM = 32
CPPN_MAX_DETAIL = 4
_WEIGHT_SEED = 20240611
_WORD_RE = re.compile(r"[\w']+")


@dataclass(frozen=True)
class CppnSpec:
    """Shape of the network; the defaults are what the server ships."""

    hidden: int = 20
    latent_dim: int = LATENT_DIM
    weight_seed: int = _WEIGHT_SEED


class _Graph:
    """A small builder over onnx.helper: constants become initializers, nodes get unique names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, value: np.ndarray | float | list[int], dtype: type = np.float32) -> str:
        name = self._name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, shape: tuple[int, ...], scale: float) -> str:
        return self.const(self.rng.standard_normal(shape) * scale)

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _field(g: _Graph, h: int, z: int) -> tuple[str, str]:
    """The network proper: (x, y, r) per pixel → two scalar fields (hue index t, shade s), [B,N,1] each."""
    # Per-unit spatial frequency and the detail level that switches the unit on.
    freq = np.geomspace(0.9, 6.5, h).astype(np.float32)
    level = np.floor(np.linspace(0, CPPN_MAX_DETAIL - 0.01, h)).astype(np.float32)
    # First layer: weights = (base + f(latent)) * freq, phase = g(latent).
    mod = g.op("MatMul", "latent", g.weight((z, 3 * h), 0.9 / np.sqrt(z)))
    mod = g.op("Reshape", mod, g.const([-1, 3, h], np.int64))
    w1 = g.op("Mul", g.op("Add", mod, g.weight((3, h), 0.7)), g.const(freq))
    phase = g.op("Unsqueeze", g.op("MatMul", "latent", g.weight((z, h), 1.5 / np.sqrt(z))),
                 g.const([1], np.int64))
    gate = g.op("Sigmoid", g.op("Mul", g.op("Sub", g.op("Sub", "detail", g.const(level)), g.const(0.5)),
                                g.const(6.0)))
    gate = g.op("Unsqueeze", gate, g.const([1], np.int64))
    h1 = g.op("Mul", g.op("Sin", g.op("Add", g.op("MatMul", "coords", w1), phase)), gate)
    # Two mixing layers, each nudged by the latent.
    h2 = g.op("Tanh", g.op("Add", g.op("MatMul", h1, g.weight((h, h), 1.6 / np.sqrt(h))),
                           g.op("Unsqueeze", g.op("MatMul", "latent", g.weight((z, h), 0.8 / np.sqrt(z))),
                                g.const([1], np.int64))))
    h3 = g.op("Sin", g.op("Add", g.op("MatMul", h2, g.weight((h, h), 2.2 / np.sqrt(h))),
                          g.op("Unsqueeze", g.op("MatMul", "latent", g.weight((z, h), 1.0 / np.sqrt(z))),
                               g.const([1], np.int64))))
    field = g.op("MatMul", h3, g.weight((h, 2), 1.1 / np.sqrt(h)))  # [B,N,2]: hue index, shade
    t = g.op("Slice", field, g.const([0], np.int64), g.const([1], np.int64), g.const([2], np.int64))
    s = g.op("Slice", field, g.const([1], np.int64), g.const([2], np.int64), g.const([2], np.int64))
    return t, s


def _colour(g: _Graph, t: str, s: str, z: int) -> str:
    """Fields → RGB in 0..1 [B,N,3]."""
    # Cosine palette a + b*cos(2π(c*t + d)): one frequency c for all channels and small phase
    # offsets d between them keep the colours harmonious; the latent picks all four.
    pal = g.op("Sigmoid", g.op("MatMul", "latent", g.weight((z, 12), 1.6 / np.sqrt(z))))
    pal = g.op("Reshape", pal, g.const([-1, 1, 4, 3], np.int64))
    parts = [g.op("Squeeze", g.op("Slice", pal, g.const([i], np.int64), g.const([i + 1], np.int64),
                                  g.const([2], np.int64)), g.const([2], np.int64)) for i in range(4)]
    pa, pb, pc, pd = parts  # each [B,1,3], in (0, 1)
    pa = g.op("Add", g.const(0.40), g.op("Mul", pa, g.const(0.20)))
    pb = g.op("Add", g.const(0.26), g.op("Mul", pb, g.const(0.20)))
    pc_mean = g.op("ReduceMean", pc, g.const([2], np.int64), keepdims=1)
    pc = g.op("Add", g.op("Add", g.const(0.35), g.op("Mul", pc_mean, g.const(0.9))),
              g.op("Mul", g.op("Sub", pc, pc_mean), g.const(0.25)))
    pd_base = g.op("Slice", pd, g.const([0], np.int64), g.const([1], np.int64), g.const([2], np.int64))
    pd = g.op("Add", pd_base, g.op("Mul", pd, g.const(0.32)))
    angle = g.op("Mul", g.op("Add", g.op("Mul", t, pc), pd), g.const(2 * np.pi))
    colour = g.op("Add", pa, g.op("Mul", pb, g.op("Cos", angle)))
    # Soft shading from the second field channel and a gentle vignette.
    radius = g.op("Slice", "coords", g.const([2], np.int64), g.const([3], np.int64), g.const([2], np.int64))
    vignette = g.op("Sub", g.const(1.0), g.op("Mul", g.op("Mul", radius, radius), g.const(0.10)))
    shade = g.op("Mul", g.op("Add", g.const(0.86), g.op("Mul", g.const(0.18), g.op("Tanh", s))), vignette)
    return g.op("Clip", g.op("Mul", colour, shade), g.const(0.0), g.const(1.0))


def build_cppn_model(spec: CppnSpec = CppnSpec()) -> onnx.ModelProto:
    """Inputs: coords [1,N,3] (x, y, r), latent [B,Z], detail [B,1]. Output: image uint8 [B,N,3]."""
    g = _Graph(np.random.default_rng(spec.weight_seed))
    t, s = _field(g, spec.hidden, spec.latent_dim)
    rgb = _colour(g, t, s, spec.latent_dim)
    scaled = g.op("Add", g.op("Mul", rgb, g.const(255.0)), g.const(0.5))
    g.nodes.append(helper.make_node("Cast", [scaled], ["image"], name="to_uint8", to=TensorProto.UINT8))
    graph = helper.make_graph(
        g.nodes,
        "creatorpass_cppn",
        [
            helper.make_tensor_value_info("coords", TensorProto.FLOAT, [1, "pixels", 3]),
            helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", spec.latent_dim]),
            helper.make_tensor_value_info("detail", TensorProto.FLOAT, ["batch", 1]),
        ],
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", "pixels", 3])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="creatorpass")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@lru_cache(maxsize=4)
def cppn_model_bytes(spec: CppnSpec = CppnSpec()) -> bytes:
    return build_cppn_model(spec).SerializeToString()


@lru_cache(maxsize=16)
def cppn_coords(width: int, height: int) -> np.ndarray:
    """Pixel centres as (x, y, r), x in [-1, 1] across the width, square pixels; [1, H*W, 3]."""
    half_w, half_h = 1.0, height / width
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width * 2 * half_w - half_w
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height * 2 * half_h - half_h
    x, y = np.meshgrid(xs, ys)
    r = np.sqrt(x * x + y * y)
    coords = np.stack([x, y, r], axis=-1).reshape(1, -1, 3).astype(np.float32)
    coords.setflags(write=False)
    return coords


def _text_vector(text: str, dim: int) -> np.ndarray | None:
    words = _WORD_RE.findall(text.lower()) or ([text] if text.strip() else [])
    if not words:
        return None
    total = np.zeros(dim, np.float64)
    for word in words:
        digest = hashlib.blake2b(word.encode(), digest_size=8, person=b"cppn-word").digest()
        total += np.random.default_rng(int.from_bytes(digest, "little")).standard_normal(dim)
    norm = float(np.linalg.norm(total))
    return total / norm if norm > 0 else None


def cppn_latent(prompt: str, seed: int, negative_prompt: str = "", dim: int = LATENT_DIM) -> np.ndarray:
    """The latent for one image: the prompt's direction, pushed away from the negative prompt's,
    varied by the seed. Deterministic for a given (prompt, seed, negative_prompt)."""
    direction = _text_vector(prompt, dim)
    if direction is None:
        direction = np.zeros(dim)
    negative = _text_vector(negative_prompt, dim)
    if negative is not None:
        direction = direction - 0.5 * negative
    noise = np.random.default_rng(seed).standard_normal(dim)
    mixed = direction * np.sqrt(dim) + 0.35 * noise
    mixed *= np.sqrt(dim) / max(float(np.linalg.norm(mixed)), 1e-6)
    latent: np.ndarray = mixed.astype(np.float32)
    return latent
