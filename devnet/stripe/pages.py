"""The browser side: the hosted Checkout page (test-card form), the 3-D Secure challenge page, and the
Stripe.js subset at ``/v3/`` (see stripejs.py)."""

from __future__ import annotations

import html
from urllib.parse import urlencode

from aiohttp import web

from devnet.stripe import checkout, payment_intents
from devnet.stripe.api import SANDBOX_KEY
from devnet.stripe.errors import StripeError
from devnet.stripe.stripejs import STRIPE_JS

__all__ = ["add_page_routes"]

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}"
          "label{display:block;margin:.6rem 0 .2rem}input{width:100%;padding:.4rem;font-size:1rem}"
          "button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem}.error{color:#b00020}"
          ".banner{background:#fff3cd;padding:.4rem .6rem;font-size:.85rem}")


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><p class='banner'>Stripe sandbox (offline, test mode)</p>"
            f"{body}</body></html>")
    return web.Response(status=status, text=text, content_type="text/html")


def _checkout_form(session: dict[str, object], error: str | None) -> str:
    amount = int(str(session["amount_total"])) / 100
    message = f"<p class='error' id='error'>{html.escape(error)}</p>" if error else ""
    cancel = session.get("cancel_url")
    cancel_link = f"<p><a href='{html.escape(str(cancel))}'>Cancel</a></p>" if cancel else ""
    return (f"<h1>Pay {amount:,.2f} {str(session['currency']).upper()}</h1>{message}"
            f"<form method='post'><label>Email</label><input name='email' value='artist@example.com'>"
            "<label>Card number</label><input name='number' value='4242 4242 4242 4242'>"
            "<label>Expiry month</label><input name='exp_month' value='12'>"
            "<label>Expiry year</label><input name='exp_year' value='2034'>"
            "<label>CVC</label><input name='cvc' value='123'>"
            f"<button type='submit' id='pay'>Pay</button></form>{cancel_link}")


async def checkout_page(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    session_id = request.match_info["session_id"]
    try:
        session = sb.store.get("checkout.session", session_id, "session")
    except StripeError:
        return _page("Not found", "<h1>This Checkout Session does not exist.</h1>", 404)
    if session["status"] != "open":
        return _page("Closed", f"<h1>This Checkout Session is {html.escape(session['status'])}.</h1>", 410)
    if request.method == "GET":
        return _page("Checkout", _checkout_form(session, None))
    form = await request.post()
    card = {name: str(form.get(name, "")).replace(" ", "") for name in ("number", "exp_month", "exp_year", "cvc")}
    try:
        checkout.pay_session(sb, session_id, card, str(form.get("email", "")) or None)
    except StripeError as exc:
        return _page("Checkout", _checkout_form(session, exc.message), 402)
    target = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
    raise web.HTTPSeeOther(target)


async def three_d_secure_page(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    pi_id = request.match_info["pi_id"]
    try:
        pi = sb.store.get("payment_intent", pi_id)
    except StripeError:
        return _page("Not found", "<h1>No such payment.</h1>", 404)
    if request.query.get("client_secret") != pi["client_secret"]:
        return _page("Forbidden", "<h1>The client secret does not match this payment.</h1>", 403)
    if request.method == "GET":
        if pi["status"] != "requires_action":
            return _page("3-D Secure", f"<h1>Nothing to authenticate: the payment is {html.escape(pi['status'])}."
                         "</h1>")
        amount = int(pi["amount"]) / 100
        return _page("3-D Secure", f"<h1>3-D Secure test page</h1><p>Authenticate a payment of {amount:,.2f} "
                     f"{html.escape(str(pi['currency']).upper())}.</p><form method='post'>"
                     "<button name='outcome' value='complete' id='complete'>Complete authentication</button> "
                     "<button name='outcome' value='fail' id='fail'>Fail authentication</button></form>")
    form = await request.post()
    succeed = form.get("outcome") == "complete"
    try:
        payment_intents.authenticate(sb, pi_id, succeed)
    except StripeError as exc:
        return _page("3-D Secure", f"<p class='error'>{html.escape(exc.message)}</p>", 400)
    return_url = sb.store.private.get(pi_id, {}).get("return_url")
    if return_url:
        status = "succeeded" if pi["status"] == "succeeded" else "failed"
        query = urlencode({"payment_intent": pi_id, "payment_intent_client_secret": pi["client_secret"],
                           "redirect_status": status})
        raise web.HTTPSeeOther(f"{return_url}{'&' if '?' in return_url else '?'}{query}")
    done = "completed" if succeed else "failed"
    return _page("3-D Secure", f"<h1 id='done'>Authentication {done}.</h1><script>"
                 "var t = window.opener || (window.parent !== window ? window.parent : null); "
                 "if (t) { t.postMessage({type: 'stripe-sandbox-3ds', "
                 f"paymentIntent: {pi_id!r}}}, '*'); if (window.opener) window.close(); }}</script>")


async def stripe_js(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    return web.Response(text=STRIPE_JS.replace("__SANDBOX_API_BASE__", sb.public_url),
                        content_type="application/javascript",
                        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"})


def add_page_routes(app: web.Application) -> None:
    app.router.add_route("GET", "/checkout/{session_id}", checkout_page)
    app.router.add_route("POST", "/checkout/{session_id}", checkout_page)
    app.router.add_route("GET", "/3ds/{pi_id}", three_d_secure_page)
    app.router.add_route("POST", "/3ds/{pi_id}", three_d_secure_page)
    app.router.add_route("GET", "/v3/", stripe_js)
    app.router.add_route("GET", "/v3", stripe_js)
    app.router.add_route("GET", "/v3/stripe.js", stripe_js)
