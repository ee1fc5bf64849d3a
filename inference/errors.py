"""The inference package's error tree; the servicer maps each to one gRPC status code."""

__all__ = [
    "InferenceError",
    "InvalidRequest",
    "ModelLoadError",
    "ModelNotReady",
    "QueueFull",
    "RequestCancelled",
]


class InferenceError(Exception):
    """Root of every error raised by the inference package."""


class InvalidRequest(InferenceError):
    """The request is malformed or out of bounds (INVALID_ARGUMENT); the message says what to fix."""


class ModelNotReady(InferenceError):
    """The model exists but is loading or failed to load (UNAVAILABLE)."""


class QueueFull(InferenceError):
    """The bounded queue is full (RESOURCE_EXHAUSTED); the caller should retry later."""


class RequestCancelled(InferenceError):
    """Every request in a batch went away; the batch stopped early."""


class ModelLoadError(InferenceError):
    """A model directory or ONNX file is missing, corrupt or has the wrong signature."""
