"""Shared runtime of every creatorpass service: settings, logging, health/metrics, gRPC, Cardano helpers.

Services import only from here, never from each other. Generated gRPC stubs live in ``common.rpc``.
"""

__all__: list[str] = []
