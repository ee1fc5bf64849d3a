"""Inference service: ONNX image generation over gRPC with a bounded queue and dynamic batching.

Run it with ``python -m inference`` (settings from ``INFERENCE_*`` environment variables; see README).
"""

from inference.errors import (
    InferenceError,
    InvalidRequest,
    ModelLoadError,
    ModelNotReady,
    QueueFull,
    RequestCancelled,
)

__all__ = [
    "InferenceError",
    "InvalidRequest",
    "ModelLoadError",
    "ModelNotReady",
    "QueueFull",
    "RequestCancelled",
]
