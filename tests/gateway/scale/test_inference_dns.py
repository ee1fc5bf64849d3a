"""One DNS name with several addresses: the gateway's only inference target is ``dns://<stub>/name:port``,
the name resolving (through a DNS server on loopback, tests/support/dns_stub.py) to three real
``python -m inference`` servers on 127.0.0.1, .2 and .3, same port — as a Kubernetes headless Service does.

- gRPC's round robin spreads generations over every address;
- the address running a generation is killed mid-stream → another address of the same name takes it (or,
  had an image already come back, it is voided): nobody is charged for an image not delivered;
- an address added to the name (a scale-up) gets work once the servers' connections age out
  (``INFERENCE_MAX_CONNECTION_AGE_S``: the client reconnects and resolves the name again);
- one address with a full queue (filled by calls straight to it) refuses; the next address of the name
  takes the work (no 503: one full server does not bench the whole name).

Which server did what is read from each server's own /metrics (``requests_total``, ``requests_in_flight``).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.rpc.creatorpass.v1 import inference_pb2, inference_pb2_grpc
from tests.gateway.scale.test_inference_fanout import SLOW, _artist, _done, _generate, _ledger
from tests.gateway.scale.test_replicas import wait_until
from tests.support.dns_stub import DnsStub, free_port_on
from tests.support.gateway_fixture import GatewayProcess
from tests.support.inference_fixture import InferenceProcess

pytestmark = pytest.mark.slow
NAME = "inference.creatorpass.test"
HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
GATEWAY_ENV = {"GATEWAY_GENERATION_TIMEOUT_S": "90", "GATEWAY_HOLD_TIMEOUT_S": "120"}


def metric(server: InferenceProcess, name: str, **labels: str) -> float:
    """The sum of ``creatorpass_inference_<name>`` samples whose labels include ``labels`` (0 when none)."""
    with urllib.request.urlopen(f"http://{server.host}:{server.health_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    full = f"creatorpass_inference_{name}"
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == full and all(sample.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture
def pool(inference_factory: Callable[..., InferenceProcess]) -> Callable[..., list[InferenceProcess]]:
    """``pool(count, first_env=None, env=None)``: that many servers on HOSTS[:count], one port for all."""
    def make(count: int, first_env: dict[str, str] | None = None,
             env: dict[str, str] | None = None) -> list[InferenceProcess]:
        port = free_port_on(HOSTS[:count])
        envs = [{**(env or {}), **((first_env or {}) if i == 0 else {})} for i in range(count)]
        return [inference_factory(host=host, grpc_port=port, env=envs[i]) for i, host in enumerate(HOSTS[:count])]

    return make


@pytest.fixture
def dns() -> Iterator[Callable[[list[InferenceProcess]], DnsStub]]:
    stubs: list[DnsStub] = []

    def serve(servers: list[InferenceProcess]) -> DnsStub:
        stubs.append(DnsStub({NAME: [s.host for s in servers]}))
        return stubs[-1]

    yield serve
    for stub in stubs:
        stub.close()


def gateway_on(gateway_factory: Callable[..., GatewayProcess], stub: DnsStub, servers: list[InferenceProcess]
               ) -> GatewayProcess:
    return gateway_factory(env={"GATEWAY_INFERENCE_TARGET": stub.target(NAME, servers[0].grpc_port), **GATEWAY_ENV})


def test_one_name_spreads_generations_over_every_address(
        gateway_factory: Callable[..., GatewayProcess], pool: Callable[..., list[InferenceProcess]],
        dns: Callable[[list[InferenceProcess]], DnsStub]) -> None:
    servers = pool(3)
    stub = dns(servers)
    gw = gateway_on(gateway_factory, stub, servers)
    user_id, headers = _artist(gw, credits=9)
    finals = [_done(gw, headers, _generate(gw, headers, {"width": 64, "height": 64})["id"]) for _ in range(9)]
    assert [f["status"] for f in finals] == ["succeeded"] * 9, finals
    served = [metric(s, "requests_total", code="OK") for s in servers]
    assert sum(served) == 9 and min(served) >= 1, served  # every address of the name got work
    assert (NAME, 1) in stub.queries  # resolved through the stub, not /etc/hosts
    assert _ledger(gw, lambda ledger: ledger.balance(user_id)).spent == 9


def test_an_address_killed_mid_stream_charges_nobody_for_undelivered_images(
        gateway_factory: Callable[..., GatewayProcess], pool: Callable[..., list[InferenceProcess]],
        dns: Callable[[list[InferenceProcess]], DnsStub]) -> None:
    servers = pool(3)
    gw = gateway_on(gateway_factory, dns(servers), servers)
    user_id, headers = _artist(gw, credits=4)
    generation = _generate(gw, headers, SLOW)
    victim = wait_until(lambda: next((s for s in servers if metric(s, "requests_in_flight") >= 1), None),
                        "a server running the generation")
    victim.kill()  # SIGKILL mid-stream
    final = _done(gw, headers, generation["id"])
    balance = _ledger(gw, lambda ledger: ledger.balance(user_id))
    delivered = len(final.get("images") or []) if final["status"] == "succeeded" else 0
    assert (balance.spent, balance.pending, balance.available) == (delivered, 0, 4 - delivered), (final, balance)
    survivors = [s for s in servers if s is not victim]
    if final["status"] == "succeeded":  # taken over by another address of the same name
        assert delivered == 4 and sum(metric(s, "requests_total", code="OK") for s in survivors) == 1
    else:  # an image had come back before the kill: not resumable, voided
        assert final["error_code"].startswith("inference_"), final
    assert _ledger(gw, lambda ledger: ledger.reconcile()).ok


def test_an_address_added_to_the_name_gets_work_once_connections_age_out(
        gateway_factory: Callable[..., GatewayProcess], pool: Callable[..., list[InferenceProcess]],
        dns: Callable[[list[InferenceProcess]], DnsStub]) -> None:
    first, added = pool(2, env={"INFERENCE_MAX_CONNECTION_AGE_S": "2"})
    stub = dns([first])  # the name answers with the first server only, as before a scale-up
    gw = gateway_on(gateway_factory, stub, [first])
    user_id, headers = _artist(gw, credits=40)
    assert _done(gw, headers, _generate(gw, headers, {"width": 64, "height": 64})["id"])["status"] == "succeeded"
    assert metric(added, "requests_total") == 0
    stub.set(NAME, [first.host, added.host])  # scale-up: the DNS answer now has both
    statuses = []

    def added_got_work() -> bool:
        final = _done(gw, headers, _generate(gw, headers, {"width": 64, "height": 64})["id"])
        statuses.append(final["status"])
        return metric(added, "requests_total", code="OK") >= 1

    wait_until(added_got_work, "a generation on the address added to the name", timeout_s=30)
    assert statuses == ["succeeded"] * len(statuses) and len(statuses) < 39, statuses
    assert _ledger(gw, lambda ledger: ledger.balance(user_id)).spent == 1 + len(statuses)


@contextlib.contextmanager
def queue_filled(server: InferenceProcess) -> Iterator[None]:
    """``server`` (queue of one, batches of one) made full by two slow Generate calls straight to it: one
    running, one waiting; held open for the block."""
    channel = grpc.insecure_channel(server.grpc_target)
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    request = inference_pb2.GenerateRequest(prompt="filler", width=SLOW["width"], height=SLOW["height"],
                                            steps=SLOW["steps"], num_images=SLOW["num_images"])
    streams: list[Any] = []
    with ThreadPoolExecutor(max_workers=2) as drain:
        try:
            for admitted in (lambda: metric(server, "requests_in_flight") >= 1 and not metric(server, "queue_depth"),
                             lambda: metric(server, "queue_depth") >= 1):
                streams.append(stub.Generate(request, timeout=120))
                drain.submit(lambda st: [None for _ in st], streams[-1])  # consume; a cancelled stream just ends
                wait_until(admitted, "a filler call running, then one waiting")
            yield
        finally:
            for stream in streams:
                stream.cancel()
    channel.close()


def test_a_full_address_does_not_bench_the_name(
        gateway_factory: Callable[..., GatewayProcess], pool: Callable[..., list[InferenceProcess]],
        dns: Callable[[list[InferenceProcess]], DnsStub]) -> None:
    small, roomy = pool(2, {"INFERENCE_QUEUE_MAX": "1", "INFERENCE_MAX_BATCH": "1"})
    gw = gateway_on(gateway_factory, dns([small, roomy]), [small, roomy])
    user_id, headers = _artist(gw, credits=6)
    with queue_filled(small), ThreadPoolExecutor(max_workers=6) as clients:  # small refuses all new work
        results = list(clients.map(lambda i: gw.request(
            "POST", "/v1/generations", headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json_body={"prompt": f"canvas {i}", "params": {"width": 64, "height": 64}}), range(6)))
        assert [status for status, _h, _b in results] == [202] * 6, results
        ids = [json.loads(body)["id"] for _s, _h, body in results]
        finals: list[Any] = [_done(gw, headers, gid) for gid in ids]
    assert [f["status"] for f in finals] == ["succeeded"] * 6, finals  # none refused as busy, none failed
    # Round robin sent some to the full address (refused), and the next address of the name took them.
    assert metric(small, "requests_total", code="RESOURCE_EXHAUSTED") >= 1
    assert metric(roomy, "requests_total", code="OK") == 6
    balance = _ledger(gw, lambda ledger: ledger.balance(user_id))
    assert (balance.available, balance.pending, balance.spent) == (0, 0, 6)
