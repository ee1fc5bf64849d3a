import json
import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from common.observability import HealthServer


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type"), err.read()


def test_health_reports_the_check_status_and_body():
    state = {"status": 202}
    registry = CollectorRegistry()
    server = HealthServer("127.0.0.1", 0, lambda: (state["status"], {"synced": state["status"] == 200}),
                          registry).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, ctype, body = _get(base + "/health")
        assert (status, ctype, json.loads(body)) == (202, "application/json", {"synced": False})
        state["status"] = 200
        status, _, body = _get(base + "/health")
        assert (status, json.loads(body)) == (200, {"synced": True})
    finally:
        server.stop()


def test_a_failing_check_is_a_503_not_a_crash():
    def broken():
        raise RuntimeError("database locked")

    server = HealthServer("127.0.0.1", 0, broken, CollectorRegistry()).start()
    try:
        status, _, body = _get(f"http://127.0.0.1:{server.port}/health")
        assert status == 503
        assert json.loads(body)["error"] == "RuntimeError"
        # still serving afterwards
        assert _get(f"http://127.0.0.1:{server.port}/health")[0] == 503
    finally:
        server.stop()


def test_metrics_serves_prometheus_text_of_the_registry():
    registry = CollectorRegistry()
    counter = Counter("creatorpass_demo_events", "demo events", registry=registry)
    counter.inc(3)
    server = HealthServer("127.0.0.1", 0, lambda: (200, {}), registry).start()
    try:
        status, ctype, body = _get(f"http://127.0.0.1:{server.port}/metrics")
        assert status == 200
        assert ctype.startswith("text/plain")
        assert "creatorpass_demo_events_total 3.0" in body.decode()
        assert _get(f"http://127.0.0.1:{server.port}/nope")[0] == 404
    finally:
        server.stop()
