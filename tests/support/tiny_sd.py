"""Tiny random-weight ONNX graphs with the signatures of an SD-Turbo export, built in-process.

``build_tiny_sd(dir)`` writes text_encoder / unet / vae_decoder graphs and a WordLevel tokenizer.json
in the layout ``optimum-cli export onnx`` produces (or the flat one), small enough that a 64×64 image
takes milliseconds on a CPU. ``build_brightness_classifier`` writes a safety checker whose score is an
image's mean brightness. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

__all__ = ["build_brightness_classifier", "build_tiny_sd", "build_tokenizer", "corrupt_file"]

OPSET = 18
WORDS = (
    "a", "an", "the", "of", "in", "on", "at", "with", "and", "red", "green", "blue", "gold",
    "dark", "bright", "cat", "dog", "fox", "bird", "tree", "forest", "city", "ocean", "sea", "sky",
    "sunset", "night", "snow", "mountain", "river", "portrait", "abstract", "painting", "photo",
    "oil", "neon", "old", "small", "big", "calm", "storm", "fire", "ice", "glass", "stone",
    "flower", "garden", "castle", "robot", "dragon", "moon", "star",
)


def build_tokenizer(path: Path) -> Path:
    """A CLIP-shaped WordLevel tokenizer: lowercase, whitespace split, <|startoftext|> … <|endoftext|>."""
    vocab = {"[UNK]": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", 1), ("<|endoftext|>", 2)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tiny_sd")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def _init(name: str, value: Any, dtype: Any = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _text_encoder(path: Path, rng: np.random.Generator, vocab: int, dim: int, seq: int) -> Path:
    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["tokens"]),
        helper.make_node("Add", ["tokens", "positions"], ["summed"]),
        helper.make_node("Tanh", ["summed"], ["last_hidden_state"]),
        helper.make_node("ReduceMean", ["last_hidden_state", "axis1"], ["pooler_output"], keepdims=0),
    ]
    inits = [_init("embedding", rng.standard_normal((vocab, dim))), _init("positions", rng.standard_normal((seq, dim))
                                                                          * 0.1), _init("axis1", [1], np.int64)]
    graph = helper.make_graph(
        nodes, "text_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch_size", "sequence_length"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch_size", "sequence_length", dim]),
         helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, ["batch_size", dim])],
        inits)
    return _save(graph, path)


def _unet(path: Path, rng: np.random.Generator, dim: int, timestep_type: int, timestep_shape: list[Any]) -> Path:
    hidden = 8
    nodes = [
        helper.make_node("Conv", ["sample", "w_in", "b_in"], ["h0"], pads=[1, 1, 1, 1]),
        helper.make_node("Cast", ["timestep"], ["t_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["t_float", "t_scale"], ["t_norm"]),
        helper.make_node("Unsqueeze", ["t_norm", "axis1"], ["t_col"]),
        helper.make_node("MatMul", ["t_col", "w_t"], ["t_emb"]),
        helper.make_node("Unsqueeze", ["t_emb", "axes23"], ["t_map"]),
        helper.make_node("ReduceMean", ["encoder_hidden_states", "axis1"], ["ctx_mean"], keepdims=0),
        helper.make_node("MatMul", ["ctx_mean", "w_ctx"], ["ctx_emb"]),
        helper.make_node("Unsqueeze", ["ctx_emb", "axes23"], ["ctx_map"]),
        helper.make_node("Add", ["h0", "t_map"], ["h1"]),
        helper.make_node("Add", ["h1", "ctx_map"], ["h2"]),
        helper.make_node("Tanh", ["h2"], ["h3"]),
        helper.make_node("Conv", ["h3", "w_out", "b_out"], ["delta"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["sample", "delta"], ["out_sample"]),  # ε ≈ the scaled noise, plus structure
    ]
    inits = [
        _init("w_in", rng.standard_normal((hidden, 4, 3, 3)) * 0.3), _init("b_in", np.zeros(hidden)),
        _init("t_scale", [1.0 / 1000]), _init("w_t", rng.standard_normal((1, hidden))),
        _init("w_ctx", rng.standard_normal((dim, hidden)) * 1.5), _init("axis1", [1], np.int64),
        _init("axes23", [2, 3], np.int64),
        _init("w_out", rng.standard_normal((4, hidden, 3, 3)) * 0.05), _init("b_out", np.zeros(4)),
    ]
    graph = helper.make_graph(
        nodes, "unet",
        [helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch_size", 4, "height", "width"]),
         helper.make_tensor_value_info("timestep", timestep_type, timestep_shape),
         helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT,
                                       ["batch_size", "sequence_length", dim])],
        [helper.make_tensor_value_info("out_sample", TensorProto.FLOAT, ["batch_size", 4, "height", "width"])],
        inits)
    return _save(graph, path)


def _vae_decoder(path: Path, rng: np.random.Generator) -> Path:
    nodes = [
        helper.make_node("Conv", ["latent_sample", "w", "b"], ["expanded"]),
        helper.make_node("DepthToSpace", ["expanded"], ["pixels"], blocksize=8, mode="CRD"),
        helper.make_node("Tanh", ["pixels"], ["sample"]),
    ]
    inits = [_init("w", rng.standard_normal((3 * 64, 4, 1, 1)) * 0.08), _init("b", rng.standard_normal(3 * 64) * 0.3)]
    graph = helper.make_graph(
        nodes, "vae_decoder",
        [helper.make_tensor_value_info("latent_sample", TensorProto.FLOAT, ["batch_size", 4, "height", "width"])],
        [helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch_size", 3, "out_height", "out_width"])],
        inits)
    return _save(graph, path)


def build_tiny_sd(root: Path, *, flat: bool = False, timestep: str = "int64", timestep_per_image: bool = False,
                  dim: int = 16, seed: int = 7, meta: dict[str, Any] | None = None) -> Path:
    """Write a tiny SD-Turbo-layout model under ``root``; returns ``root``.

    ``timestep``: "int64" or "float"; ``timestep_per_image``: shape [B] instead of [1].
    ``meta``: written as model.json (defaults: 64×64, 1 step, at most 4, sizes in multiples of 64).
    """
    rng = np.random.default_rng(seed)
    tokenizer_path = root / "tokenizer.json" if flat else root / "tokenizer" / "tokenizer.json"
    tok = Tokenizer.from_file(str(build_tokenizer(tokenizer_path)))
    part = (lambda name: root / f"{name}.onnx") if flat else (lambda name: root / name / "model.onnx")
    _text_encoder(part("text_encoder"), rng, tok.get_vocab_size(), dim, 77)
    ts_type = {"int64": TensorProto.INT64, "float": TensorProto.FLOAT}[timestep]
    _unet(part("unet"), rng, dim, ts_type, ["batch_size"] if timestep_per_image else [1])
    _vae_decoder(part("vae_decoder"), rng)
    info = {"default_width": 64, "default_height": 64, "default_steps": 1, "max_steps": 4, **(meta or {})}
    (root / "model.json").write_text(json.dumps(info))
    return root


def build_brightness_classifier(path: Path, *, size: int | None = None) -> Path:
    """A safety checker scoring each image by its mean brightness (0..1); ``size`` fixes H = W."""
    dims: list[Any] = ["batch", 3, size or "height", size or "width"]
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images", "axes"], ["mean"], keepdims=0),
         helper.make_node("Unsqueeze", ["mean", "axis1"], ["score"])],
        "brightness",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        [_init("axes", [1, 2, 3], np.int64), _init("axis1", [1], np.int64)])
    return _save(graph, path)


def corrupt_file(path: Path) -> Path:
    """Overwrite an ONNX file with bytes that are not a model."""
    path.write_bytes(b"\x08\x07this is not an onnx model" + bytes(range(256)) * 4)
    return path
