"""The browser side in Debian's Chromium (Playwright): a page on another origin loads the sandbox's
Stripe.js, mounts the card element, creates a PaymentMethod with a pk_test_ key, confirms a
PaymentIntent through 3-D Secure (the challenge iframe's button), and sees a decline."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stripe_fixture import StripeSandboxProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAGE = """<!doctype html><html><body><div id="card"></div><script src="{api}/v3/"></script><script>
const stripe = Stripe("{pk}");
const card = stripe.elements().create("card");
card.mount("#card");
window.createPm = async () => {{
  const r = await stripe.createPaymentMethod({{type: "card", card: card, billing_details: {{email: "a@example.com"}}}});
  return r.paymentMethod ? r.paymentMethod.id : "error:" + r.error.code;
}};
window.pay = (clientSecret) => {{
  window.result = stripe.confirmCardPayment(clientSecret, {{payment_method: {{card: card}}}}).then(
    (r) => r.paymentIntent ? r.paymentIntent.status : "error:" + r.error.code + ":" + (r.error.decline_code || ""));
}};
</script></body></html>"""


@pytest.fixture
def page_server(module_sandbox: StripeSandboxProcess) -> Iterator[str]:
    html = PAGE.format(api=module_sandbox.url, pk=module_sandbox.publishable_key).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/studio"
    server.shutdown()
    server.server_close()


def test_card_element_payment_method_3ds_and_decline(sandbox: StripeSandboxProcess, page_server: str) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make system` (tools/setup-system.sh installs it)")
    from playwright.sync_api import sync_playwright

    client = sandbox.client()
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(page_server)
        page.fill("[data-stripe-sandbox=number]", "4000 0000 0000 3220")
        page.fill("[data-stripe-sandbox=exp]", "12 / 34")
        page.fill("[data-stripe-sandbox=cvc]", "123")
        pm_id = page.evaluate("createPm()")
        assert pm_id.startswith("pm_")
        assert client.v1.payment_methods.retrieve(pm_id).card.last4 == "3220"

        pi = client.v1.payment_intents.create(params={"amount": 500, "currency": "usd",
                                                      "payment_method_types": ["card"]})
        page.evaluate("(cs) => pay(cs)", pi.client_secret)
        frame_element = page.wait_for_selector("iframe[title='3-D Secure']", timeout=30_000)
        assert frame_element is not None
        frame = frame_element.content_frame()
        assert frame is not None
        frame.click("#complete", timeout=30_000)
        assert page.evaluate("window.result") == "succeeded"
        assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
        assert page.query_selector("iframe[title='3-D Secure']") is None

        page.fill("[data-stripe-sandbox=number]", "4000000000009995")
        declined = client.v1.payment_intents.create(params={"amount": 500, "currency": "usd",
                                                            "payment_method_types": ["card"]})
        page.evaluate("(cs) => pay(cs)", declined.client_secret)
        assert page.evaluate("window.result") == "error:card_declined:insufficient_funds"
        browser.close()
    assert errors == [] or all("402" in e for e in errors), errors
