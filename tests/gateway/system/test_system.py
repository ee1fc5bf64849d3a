"""System behaviour: health, metrics, OpenAPI, CORS, body limits, request ids, bad input, no stack traces."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from gateway.credits.ledger import Balance, Ledger
from gateway.credits.sqlite_store import SqliteLedger
from gateway.generations.inference import InferenceClient
from tests.gateway.conftest import MakeGateway, open_client, signup
from tests.gateway.generations.fakes import FakeInference


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["error"] == body["detail"] and body["code"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


async def test_health_checks_database_and_inference(make_gateway: MakeGateway) -> None:
    fake = FakeInference()
    gateway = await make_gateway(provide={InferenceClient: fake})
    async with open_client(gateway) as client:
        health = await client.get("/health")
        checks = health.json()["checks"]
        assert checks["database"]["ok"] and checks["inference"]["ok"]
        fake.healthy = False
        down = await client.get("/health")
        assert down.status_code == 503 and down.json()["status"] == "down"
        assert down.json()["checks"]["inference"]["ok"] is False


async def test_health_with_unreachable_inference_is_503(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(inference_target="127.0.0.1:9")  # nothing listens on the discard port
    async with open_client(gateway) as client:
        down = await client.get("/health")
        assert down.status_code == 503
        assert down.json()["checks"]["inference"]["ok"] is False


async def test_metrics_count_requests_and_generations(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(provide={InferenceClient: FakeInference()})
    async with open_client(gateway) as client:
        await client.get("/v1/account")
        text = (await client.get("/metrics")).text
        assert 'gateway_http_requests_total{method="GET",route="/v1/account",status="401"}' in text
        assert "gateway_generations_in_flight" in text


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/v1/auth/signup", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout", "/v1/account",
                 "/v1/generations", "/v1/generations/{generation_id}", "/v1/generations/{generation_id}/events",
                 "/v1/images/{sha256}", "/api/generate-art", "/health"):
        assert path in paths, path
    components = schema["components"]["schemas"]
    assert {"Credentials", "TokenPair", "AccountView", "GenerationRequest", "GenerationView"} <= set(components)
    assert "BearerToken" in schema["components"]["securitySchemes"]
    create = paths["/v1/generations"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])


async def test_cors_from_config(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(cors_origins=("https://studio.example",))
    async with open_client(gateway) as client:
        preflight = await client.options("/v1/generations", headers={
            "Origin": "https://studio.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key,content-type"})
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == "https://studio.example"
        other = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_request_ids(client: httpx.AsyncClient) -> None:
    given = await client.get("/v1/account", headers={"X-Request-Id": "req-abcdef-123"})
    assert given.headers["x-request-id"] == "req-abcdef-123"
    assert given.json()["request_id"] == "req-abcdef-123"
    made = await client.get("/v1/account", headers={"X-Request-Id": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces" and len(made.headers["x-request-id"]) == 32


class BrokenLedger(SqliteLedger):
    async def balance(self, user_id: str) -> Balance:
        raise RuntimeError("secret internal detail /etc/passwd")


async def test_no_stack_trace_reaches_a_client(make_gateway: MakeGateway, tmp_path: Any) -> None:
    gateway = await make_gateway(fake_ledger=False)
    gateway.container._services[Ledger] = BrokenLedger(gateway.container.db)
    async with open_client(gateway) as client:
        pair = await signup(client)
        response = await client.get("/v1/account", headers=pair["headers"])
        body = is_problem(response, 500)
        assert "secret" not in response.text and body["request_id"]


async def test_bad_input_on_every_endpoint(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(provide={InferenceClient: FakeInference()}, max_body_bytes=4096)
    async with open_client(gateway) as client:
        pair = await signup(client)
        auth = pair["headers"]
        json_type = {"Content-Type": "application/json"}
        gen = {**auth, **json_type, "Idempotency-Key": uuid.uuid4().hex}
        posts = {
            "/v1/auth/signup": json_type, "/v1/auth/login": json_type, "/v1/auth/refresh": json_type,
            "/v1/generations": gen, "/api/generate-art": {**auth, **json_type},
        }
        for path, headers in posts.items():
            is_problem(await client.post(path, content=b"{not json", headers=headers), 400)
            is_problem(await client.post(path, content=b"[1, 2]", headers=headers), 400)
            is_problem(await client.post(path, json={"prompt": 5, "email": [], "password": {},
                                                     "refresh_token": 7}, headers=headers), 400)
            is_problem(await client.post(path, content=b'{"x": "' + b"a" * 10000 + b'"}', headers=headers), 413)
        is_problem(await client.post("/v1/auth/logout", content=b"{not json", headers={**auth, **json_type}), 400)
        bad_generations = [
            {"prompt": ""}, {"prompt": "   \n"}, {"prompt": "x" * 2001}, {"prompt": "ok", "params": None},
            {"prompt": "ok", "params": {"width": 63}},
            {"prompt": "ok", "params": {"width": 4096}}, {"prompt": "ok", "params": {"num_images": 9}},
            {"prompt": "ok", "params": {"seed": -1}}, {"prompt": "ok", "params": {"unknown": 1}},
            {"prompt": "ok", "params": {"model": "../../etc"}}, {"prompt": "ok", "extra": True},
        ]
        for body in bad_generations:
            problem = is_problem(await client.post("/v1/generations", json=body, headers=gen), 400)
            assert problem["error"].startswith("Invalid request"), problem
        is_problem(await client.post("/v1/generations", json={"prompt": "ok"}, headers=auth), 400)
        is_problem(await client.post("/v1/generations", json={"prompt": "ok"},
                                     headers={**auth, "Idempotency-Key": "has spaces in it"}), 400)
        is_problem(await client.get("/v1/generations/nope", headers=auth), 404)
        is_problem(await client.get("/v1/generations", params={"limit": "many"}, headers=auth), 400)
        is_problem(await client.get("/v1/images/zz", headers=auth), 404)
        is_problem(await client.get("/v1/images/" + "a" * 64, params={"exp": "x" * 30}), 400)
        is_problem(await client.get("/v1/nothing-here"), 404)
        is_problem(await client.delete("/v1/account", headers=auth), 405)
