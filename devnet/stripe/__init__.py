"""An offline Stripe stand-in that the real ``stripe`` library cannot tell apart (see README.md).

``python -m devnet.stripe --host 127.0.0.1 --port 12111`` serves the Stripe API subset the appliance
uses (PaymentMethods, PaymentIntents, Charges, Refunds, Disputes, Checkout Sessions, Events, webhook
endpoints), signed webhook deliveries with retries and optional chaos, the browser side (a Stripe.js
subset, hosted Checkout and 3-D Secure pages) and sandbox-only controls under ``/_sandbox/``.
"""

__all__: list[str] = []
