"""The operator's command line, ``creatorpass``: set up, start, check and inspect the appliance.

It talks to the services only over their public surfaces (HTTP health, gRPC, their own
``python -m <service>`` subcommands), so it imports no service package (import-linter checks).
"""
