"""The Creator's Studio page in a real browser against the embedded appliance (``make up``).

The wallet flow with the devnet test wallet, sign-up + buying credits + a card generation, the 402 an
empty wallet gets, and a declined card — each as a person would click through it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import SHOTS as ROOT_SHOTS
from tests.e2e.conftest import Appliance

pytestmark = pytest.mark.slow
GENERATION_TIMEOUT_MS = 120_000


def unexpected_errors(page: Any, *expected_statuses: int) -> list[str]:
    """Console errors, less the browser's own line for a response the test expects (a 402 is the point)."""
    allowed = tuple(f"status of {s}" for s in expected_statuses)
    return [e for e in page.console_errors
            if not (e.startswith("Failed to load resource") and e.endswith(allowed + tuple(f"{a} ()" for a in allowed)))
            and not (e.startswith("Failed to load resource") and any(a in e for a in allowed))]


def open_studio(page: Any, appliance: Appliance, wallet: str = "demo") -> None:
    page.goto(f"{appliance.url}/?devnet_wallet={wallet}")
    page.get_by_role("button", name="Connect wallet").wait_for()
    expect(page.locator("#wallet-choice option")).not_to_have_count(0)


def connect_wallet(page: Any) -> None:
    page.select_option("#wallet-choice", "devnet")
    page.get_by_role("button", name="Connect wallet").click()
    page.get_by_role("button", name="Sign", exact=True).click()  # the wallet's sign-in prompt (signData)
    expect(page.locator("#wallet-status")).to_contain_text("$CREATE")


def test_wallet_flow_with_the_devnet_wallet(page: Any, appliance: Appliance) -> None:
    open_studio(page, appliance)
    connect_wallet(page)
    assert re.search(r"\b25 \$CREATE", page.text_content("#wallet-status"))
    page.fill("#prompt", "a lighthouse made of stained glass")
    page.get_by_role("button", name="Generate — pay 1 $CREATE").click()
    page.get_by_role("button", name="Sign", exact=True).click()  # the payment (signTx)
    page.wait_for_selector("#reel-items img", timeout=GENERATION_TIMEOUT_MS)
    expect(page.locator("#generate-status")).to_contain_text("Done")
    img = page.locator("#reel-items img").first
    expect(img).to_have_js_property("complete", True)
    assert img.evaluate("(el) => el.naturalWidth") > 0  # the PNG really loaded in the page
    expect(page.locator("#wallet-status")).to_contain_text("24 $CREATE", timeout=GENERATION_TIMEOUT_MS)
    assert unexpected_errors(page) == []


def test_sign_up_buy_credits_and_generate_by_card(page: Any, appliance: Appliance) -> None:
    open_studio(page, appliance)
    page.fill("#email", f"artist-{uuid.uuid4().hex[:8]}@example.test")
    page.fill("#password", "a-long-enough-password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_selector("#signed-in:not([hidden])")
    assert page.text_content("#credits") == "0"
    page.wait_for_selector("#card-element input[data-stripe-sandbox=number]")
    page.fill("#card-element input[data-stripe-sandbox=number]", "4242 4242 4242 4242")
    page.fill("#card-element input[data-stripe-sandbox=exp]", "12 / 34")
    page.fill("#card-element input[data-stripe-sandbox=cvc]", "123")
    page.get_by_role("button", name="Buy").click()
    expect(page.locator("#credits")).to_have_text("10", timeout=30_000)
    page.fill("#prompt", "an otter reading a map")
    page.get_by_role("button", name="Generate — use 1 credit").click()
    page.wait_for_selector("#reel-items img", timeout=GENERATION_TIMEOUT_MS)
    expect(page.locator("#credits")).to_have_text("9")
    # The spent credit is backed by a burn: once its batch is on chain the receipt shows the burn tx.
    receipt = page.locator("#reel-items details").first
    for _ in range(30):
        page.reload()
        expect(page.locator("#signed-in")).to_be_visible()
        receipt = page.locator("#reel-items details").first
        receipt.locator("summary").click()
        text = receipt.locator("pre")
        expect(text).not_to_be_empty()
        if "burn tx" in text.text_content():
            break
        page.wait_for_timeout(1000)
    assert "burn tx" in receipt.locator("pre").text_content()
    assert unexpected_errors(page, 404) == []  # 404 receipt_pending until the batch lands


def test_an_empty_wallet_is_told_to_buy_create(page: Any, appliance: Appliance) -> None:
    open_studio(page, appliance, wallet=f"empty-{uuid.uuid4().hex[:6]}")
    connect_wallet_without_tokens(page)
    page.fill("#prompt", "anything")
    page.get_by_role("button", name="Generate — pay 1 $CREATE").click()
    expect(page.locator("#generate-status")).to_contain_text("Insufficient CREATE")
    assert page.text_content("#generate-status") == "Insufficient CREATE tokens. Please purchase more to continue."
    assert unexpected_errors(page, 402) == []


def connect_wallet_without_tokens(page: Any) -> None:
    page.select_option("#wallet-choice", "devnet")
    page.get_by_role("button", name="Connect wallet").click()
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.locator("#wallet-status")).to_contain_text(" 0 $CREATE")


def test_a_declined_card_says_so_and_adds_nothing(page: Any, appliance: Appliance) -> None:
    open_studio(page, appliance)
    page.fill("#email", appliance.email)
    page.fill("#password", appliance.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#signed-in:not([hidden])")
    before = page.text_content("#credits")
    page.wait_for_selector("#card-element input[data-stripe-sandbox=number]")
    page.fill("#card-element input[data-stripe-sandbox=number]", "4000 0000 0000 0002")
    page.fill("#card-element input[data-stripe-sandbox=exp]", "12 / 34")
    page.fill("#card-element input[data-stripe-sandbox=cvc]", "123")
    page.get_by_role("button", name="Buy").click()
    expect(page.locator("#account-status")).to_contain_text("declined")
    assert "generic_decline" in page.text_content("#account-status") or "declined" in page.text_content(
        "#account-status")
    assert page.text_content("#credits") == before
    assert unexpected_errors(page, 402) == []


def test_on_a_phone_everything_fits_and_every_field_is_labelled(browser: Any, appliance: Appliance) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(appliance.url + "/")
        expect(page.get_by_role("button", name="Connect wallet")).to_be_visible()
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, textarea, select')]
            .filter((el) => el.type !== 'radio' && el.type !== 'hidden')
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map((el) => el.id || el.name)""")
        assert unlabelled == []
        page.keyboard.press("Tab")  # the skip link comes first for keyboard users
        assert page.evaluate("() => document.activeElement.textContent") == "Skip to the prompt"
        page.screenshot(path=str(ROOT_SHOTS / "phone.png"), full_page=True)
    finally:
        context.close()
