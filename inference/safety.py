"""Optional safety checker: an ONNX classifier whose per-image score decides whether an image is withheld.

Contract: one input, images float32 [B, 3, H, W] in 0..1 (H and W fixed in the graph → images are
resized to them; dynamic → passed at their own size); first output [B, 1] or [B], a score where
higher means "withhold". An image scoring at or above the threshold is flagged: its PNG is not sent
and the gateway does not charge for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from inference.errors import ModelLoadError
from inference.runtime import RuntimeConfig, create_session

__all__ = ["SafetyChecker"]


class SafetyChecker:
    def __init__(self, path: Path, config: RuntimeConfig, *, threshold: float) -> None:
        self.path = path
        self.threshold = threshold
        self.session, self.provider = create_session(path, config, label="safety_checker")
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].type != "tensor(float)":
            raise ModelLoadError(f"{path}: expected one float input [B, 3, H, W]")
        self.input_name = inputs[0].name
        h, w = inputs[0].shape[2], inputs[0].shape[3]
        self.size = (w, h) if isinstance(h, int) and isinstance(w, int) else None
        self.check(np.zeros((1, 64, 64, 3), np.uint8))  # fails loudly now rather than on the first request

    def _prepare(self, images: np.ndarray) -> np.ndarray:
        if self.size is not None and (images.shape[2], images.shape[1]) != self.size:
            images = np.stack([np.asarray(Image.fromarray(im).resize(self.size, Image.Resampling.BILINEAR))
                               for im in images])
        return (images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2)

    def check(self, images: np.ndarray) -> np.ndarray:
        """Scores (float32 [B]) for uint8 images [B, H, W, 3]."""
        out = np.asarray(self.session.run(None, {self.input_name: self._prepare(images)})[0], dtype=np.float32)
        if out.shape[0] != images.shape[0]:
            raise ModelLoadError(f"{self.path}: returned {out.shape[0]} scores for {images.shape[0]} images")
        return out.reshape(images.shape[0], -1)[:, 0]

    def flagged(self, scores: np.ndarray) -> np.ndarray:
        return scores >= self.threshold
