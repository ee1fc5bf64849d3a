"""A real Stripe sandbox process for tests: ``python -m devnet.stripe`` on a free loopback port.

Stable API (the gateway's tests rely on it)::

    sbx = StripeSandboxProcess(webhook_urls=(), webhook_secret=None, webhook_events=(), retry_scale=0.001,
                               chaos_seed=None, webhook_timeout_s=5.0, state_file=None, extra_args=(), env=None)
                                     # webhook_events: types the webhook_urls endpoints get; () = all ("*")
    sbx.start()                      # waits (bounded) until GET /_sandbox/health answers; returns self
    sbx.url                          # "http://127.0.0.1:<port>" -- the api base, pages, /v3/ Stripe.js, controls
    sbx.port
    sbx.secret_key                   # "sk_test_sandbox..." (any sk_test_ key is accepted)
    sbx.publishable_key              # "pk_test_sandbox..."
    sbx.webhook_secret               # whsec_ secret of the endpoints given by webhook_urls
    sbx.client(api_key=None, max_network_retries=0) -> stripe.StripeClient   # base_addresses={"api": url}
    sbx.info() -> dict               # GET /_sandbox/info (webhook endpoints with secrets, counts)
    sbx.deliveries(event=None, endpoint=None) -> {"attempts": [...newest first], "pending": [...]}
    sbx.deliver_now() -> {"attempted", "delivered", "failed", "pending"}   # pending retries, now
    sbx.trigger(event_type, **body) -> {"object", "events": [{"id", "type"}]}
    sbx.close_dispute(dispute_id, "won" | "lost") -> dispute
    sbx.authenticate(pi_id, "complete" | "fail") -> payment intent     # the 3-D Secure page's buttons
    sbx.pay_checkout(session_id, card=None | {"number", "exp_month", "exp_year", "cvc"},
                     payment_method=None | "pm_card_visa", email=None) -> (status, body)
    sbx.reset()
    sbx.control(method, path, body=None) -> (status, json)               # any /_sandbox call
    sbx.stop() / sbx.kill() / sbx.restart() / sbx.log_text()

    WebhookReceiver(responses=(200,)) -- a loopback HTTP server recording every POST
        .url, .requests -> [(headers, raw body bytes)], .wait_for(count, timeout_s), .close()
        answers responses[i] to the i-th request (the last one repeats); a str entry "hang" never answers

Fixtures: ``stripe_sandbox`` (function scope, no webhook endpoints) and ``stripe_sandbox_factory``
(``make(**kwargs)`` -> started StripeSandboxProcess; all closed at teardown). Import them in a conftest:
``from tests.support.stripe_fixture import stripe_sandbox, stripe_sandbox_factory  # noqa: F401``.
"""

from __future__ import annotations

import http.server
import secrets
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import REPO_ROOT as REPO_ROOT  # re-exported: tests read the checkout's files
from tests.support.process import ManagedProcess, free_ports, http_json, service_environment

__all__ = ["StripeSandboxError", "StripeSandboxProcess", "WebhookReceiver", "stripe_sandbox",
           "stripe_sandbox_factory"]

STARTUP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0


class StripeSandboxError(RuntimeError):
    """The sandbox failed to start, died, or answered a control call with an error."""


class StripeSandboxProcess(ManagedProcess):
    def __init__(
        self,
        *,
        webhook_urls: Sequence[str] = (),
        webhook_secret: str | None = None,
        webhook_events: Sequence[str] = (),
        retry_scale: float = 0.001,
        chaos_seed: int | None = None,
        webhook_timeout_s: float = 5.0,
        state_file: str | Path | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self.webhook_urls = list(webhook_urls)
        self.webhook_secret = webhook_secret or "whsec_" + secrets.token_hex(16)
        self.webhook_events = list(webhook_events)
        self.retry_scale = retry_scale
        self.chaos_seed = chaos_seed
        self.webhook_timeout_s = webhook_timeout_s
        self.state_file = Path(state_file) if state_file is not None else None
        self.extra_args = list(extra_args)
        self.env = env
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.port = free_ports(1, host)[0]
        self.secret_key = "sk_test_sandbox" + secrets.token_hex(8)
        self.publishable_key = "pk_test_sandbox" + secrets.token_hex(8)
        super().__init__("stripe-sandbox")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "devnet.stripe", "--host", self.host, "--port", str(self.port),
               "--webhook-retry-scale", str(self.retry_scale), "--webhook-timeout-s", str(self.webhook_timeout_s),
               "--log-json", "false"]
        for url in self.webhook_urls:
            cmd += ["--webhook-url", url]
        for event_type in self.webhook_events:
            cmd += ["--webhook-events", event_type]
        if self.chaos_seed is not None:
            cmd += ["--chaos-seed", str(self.chaos_seed)]
        if self.state_file is not None:
            cmd += ["--state-file", str(self.state_file)]
        return cmd + self.extra_args

    def start(self) -> StripeSandboxProcess:
        if self.is_running():
            raise StripeSandboxError("the sandbox is already running")
        settings = {"STRIPE_SANDBOX_WEBHOOK_SECRET": self.webhook_secret}
        self.spawn(self.command(), service_environment("STRIPE_SANDBOX_", settings, self.env))
        self.wait_ready(self._answers, timeout_s=self.startup_timeout_s, error=StripeSandboxError, name="sandbox",
                        retry_on=(OSError, StripeSandboxError))
        return self

    def _answers(self) -> bool:
        self._call("GET", "/_sandbox/health")
        return True

    # -- the real stripe library ------------------------------------------------------------------

    def client(self, api_key: str | None = None, max_network_retries: int = 0) -> Any:
        import stripe

        return stripe.StripeClient(api_key or self.secret_key, base_addresses={"api": self.url},
                                   max_network_retries=max_network_retries)

    # -- controls -----------------------------------------------------------------------------------

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http_json(method, self.url + path, body, REQUEST_TIMEOUT_S)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.control(method, path, body)
        if status != 200:
            raise StripeSandboxError(f"{method} {path} -> {status}: {payload}")
        return payload

    def info(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/info")  # type: ignore[no-any-return]

    def deliveries(self, event: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in (("event", event), ("endpoint", endpoint)) if v)
        return self._call("GET", "/_sandbox/deliveries" + (f"?{query}" if query else ""))  # type: ignore[no-any-return]

    def deliver_now(self) -> dict[str, Any]:
        return self._call("POST", "/_sandbox/deliveries/deliver_now", {})  # type: ignore[no-any-return]

    def trigger(self, event_type: str, **body: Any) -> dict[str, Any]:
        return self._call("POST", "/_sandbox/events/trigger", {"type": event_type, **body})  # type: ignore[no-any-return]

    def close_dispute(self, dispute_id: str, outcome: str) -> dict[str, Any]:
        return self._call("POST", f"/_sandbox/disputes/{dispute_id}/close",  # type: ignore[no-any-return]
                          {"outcome": outcome})

    def authenticate(self, pi_id: str, outcome: str = "complete") -> dict[str, Any]:
        return self._call("POST", f"/_sandbox/payment_intents/{pi_id}/authenticate",  # type: ignore[no-any-return]
                          {"outcome": outcome})

    def pay_checkout(self, session_id: str, card: dict[str, Any] | None = None, payment_method: str | None = None,
                     email: str | None = None) -> tuple[int, Any]:
        body: dict[str, Any] = {"card": card or {"number": "4242424242424242", "exp_month": 12,
                                                 "exp_year": 2034, "cvc": "123"}}
        if payment_method is not None:
            body = {"payment_method": payment_method}
        if email is not None:
            body["email"] = email
        return self.control("POST", f"/_sandbox/checkout/sessions/{session_id}/pay", body)

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset", {})


class WebhookReceiver:
    """A loopback HTTP server that records webhook POSTs and answers a scripted status sequence."""

    def __init__(self, responses: Sequence[int | str] = (200,)) -> None:
        self.responses = list(responses) or [200]
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._cond = threading.Condition()
        self._release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._cond:
                    index = len(receiver.requests)
                    receiver.requests.append(({k: v for k, v in self.headers.items()}, body))
                    receiver._cond.notify_all()
                answer = receiver.responses[min(index, len(receiver.responses) - 1)]
                if answer == "hang":
                    receiver._release.wait(30)
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhook"

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[tuple[dict[str, str], bytes]]:
        """Block until ``count`` requests arrived (or fail after ``timeout_s``); all requests so far."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout_s):
                raise AssertionError(f"{len(self.requests)} webhook requests after {timeout_s} s, wanted {count}")
            return list(self.requests)

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stripe_sandbox_factory() -> Iterator[Callable[..., StripeSandboxProcess]]:
    started: list[StripeSandboxProcess] = []

    def make(**kwargs: Any) -> StripeSandboxProcess:
        sbx = StripeSandboxProcess(**kwargs)
        started.append(sbx)
        return sbx.start()

    yield make
    for sbx in started:
        sbx.close()


@pytest.fixture
def stripe_sandbox(stripe_sandbox_factory: Callable[..., StripeSandboxProcess]) -> StripeSandboxProcess:
    """A started sandbox with no webhook endpoints (create them with the stripe library if needed)."""
    return stripe_sandbox_factory()
