"""creatorpass gateway: the HTTP API for the studio frontend and Stripe (Litestar).

Laid out by domain (``accounts``, ``credits``, ``billing``, ``generations``, ``burns``, ``web3``,
``studio``, ``system``), each with thin controllers over services; ``lib`` holds what they share and
``server`` builds the app. See ``gateway/README.md``.
"""
