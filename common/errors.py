"""Root exception of the shared package."""

__all__ = ["CommonError"]


class CommonError(Exception):
    """Base class for errors raised by ``common``."""
