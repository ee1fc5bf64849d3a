"""``python -m signer health-check``: exit 0 when the running signer answers SERVING (container HEALTHCHECK).

On a unix socket (the default, and the only way in the compose bundle, where the signer has no network)
it asks the standard gRPC health service over that socket. On TCP, where mTLS would need a client
certificate, it asks the HTTP side-server (``SIGNER_METRICS_LISTEN``) instead.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from signer.settings import SignerSettings

__all__ = ["health_check"]

TIMEOUT_S = 3.0
SERVICE_NAME = "creatorpass.v1.SignerService"


def _grpc_unix(target: str) -> tuple[bool, str]:
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=TIMEOUT_S)
        except grpc.RpcError as exc:
            return False, f"gRPC health on {target}: {exc.code().name}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"gRPC health on {target}: {status}"


def _http(listen: str) -> tuple[bool, str]:
    url = f"http://{listen}/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            return resp.status == 200, f"{url}: {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except OSError as exc:
        return False, f"{url}: {exc}"


def health_check(settings: SignerSettings) -> int:
    if settings.listen.startswith("unix:"):
        healthy, detail = _grpc_unix(settings.listen)
    elif settings.metrics_listen:
        healthy, detail = _http(settings.metrics_listen)
    else:
        print("signer health-check: TCP listening needs SIGNER_METRICS_LISTEN for the check", file=sys.stderr)
        return 2
    print(detail, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1
