"""``creatorpass``: the operator's command line.

    creatorpass init        .env and secrets/ for the compose bundle (never overwrites), then the next steps
    creatorpass doctor      checks before start (node socket, network magic, sync, keys) and what to fix
    creatorpass status      every service's health, the gateway's checks, outbox depth, lanes, today's burns
    creatorpass token       the $CREATE policy (show) and the operator's mint ceremony (mint --quantity N)
    creatorpass reconcile   the gateway's ledger invariants (python -m gateway reconcile)
    creatorpass up          the embedded appliance as local processes (what `make up` runs)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from creatorpass import doctor

__all__ = ["main"]


def _doctor(args: argparse.Namespace) -> int:
    cfg = doctor.DoctorConfig.from_env(os.environ)
    for name in ("network", "ogmios_url", "kupo_url", "indexer_health_url"):
        value = getattr(args, name)
        if value:
            setattr(cfg, name, value)
    if args.node_socket:
        cfg.node_socket = Path(args.node_socket)
    if args.signer_key_file:
        cfg.signer_key_file = Path(args.signer_key_file)
    if args.network_magic is not None:
        cfg.network_magic = args.network_magic
    checks = doctor.run_checks(cfg)
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        print(doctor.render(checks))
    failed = [c for c in checks if c.ok is False]
    if not args.json:
        print(f"\n{len(failed)} problem(s) found." if failed else "\nall checks passed.")
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    from creatorpass import status

    endpoints = status.endpoints_from_home(Path(args.home))
    for item in args.endpoint:
        name, _, url = item.partition("=")
        endpoints[name] = url
    if not endpoints:
        print(f"nothing to ask: no running `make up` under {args.home} (run/up.json) and no --endpoint NAME=URL")
        return 1
    report = status.collect(endpoints)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(status.render(report))
    return 0 if report.healthy else 1


def _init(args: argparse.Namespace) -> int:
    from creatorpass import init

    result = init.initialise(Path(args.dir), args.network,
                             stripe_secret_key_file=Path(args.stripe_secret_key_file) if args.stripe_secret_key_file
                             else None,
                             stripe_webhook_secret_file=Path(args.stripe_webhook_secret_file)
                             if args.stripe_webhook_secret_file else None, mtls=args.mtls)
    for path in result.created:
        print(f"created  {path}")
    for path in result.kept:
        print(f"kept     {path} (already there; never overwritten)")
    print("\nnext:")
    for i, step in enumerate(result.todo, 1):
        print(f"  {i}. {step}")
    return 0


def _token(args: argparse.Namespace) -> int:
    from creatorpass import token

    env = dict(os.environ)
    if args.signer_data_dir:
        env["SIGNER_DATA_DIR"] = args.signer_data_dir
    try:
        identity = token.show(env)
        if args.action == "show":
            print(json.dumps({k: identity[k] for k in ("policy_id", "asset_name", "custodial_address",
                                                        "sink_address", "sink_mode") if k in identity}, indent=2))
            print(f"\n.env:\nCREATE_POLICY_ID={identity['policy_id']}\nCREATE_ASSET_NAME={identity['asset_name']}"
                  f"\nTREASURY_ADDRESS={identity['custodial_address']}")
            return 0
        result = token.mint(identity=identity, ogmios_url=args.ogmios_url, ceremony_socket=args.ceremony_socket,
                            quantity=args.quantity, note=args.note)
    except token.TokenError as exc:
        print(f"token: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "gateway", "reconcile", *(["--json"] if args.json else [])]
    return subprocess.call(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["up"]:  # everything after `up` is make up's own flags (see creatorpass up --help)
        import creatorpass.up as up

        code: int = up.main(argv[1:])
        return code
    parser = argparse.ArgumentParser(prog="creatorpass", description="creatorpass operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("doctor", help="check the node, Ogmios, Kupo, the indexer and the signer's keys")
    d.add_argument("--network", help="mainnet, preprod, preview or devnet (default: $NETWORK or devnet)")
    d.add_argument("--network-magic", type=int, help="expected magic of a custom testnet")
    d.add_argument("--node-socket", help="the node's socket (default: $CARDANO_NODE_SOCKET_PATH; unset = skip)")
    d.add_argument("--ogmios-url", help="default: $INDEXER_OGMIOS_URL or ws://127.0.0.1:1337")
    d.add_argument("--kupo-url", help="default: $INDEXER_KUPO_URL or http://127.0.0.1:1442")
    d.add_argument("--indexer-health-url", help="default: $INDEXER_HEALTH_URL or http://127.0.0.1:1443/health")
    d.add_argument("--signer-key-file", help="default: $SIGNER_KEY_FILE or $SIGNER_DATA_DIR/keys.json")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(run=_doctor)
    i = sub.add_parser("init", help="prepare .env and secrets/ for the compose bundle (never overwrites)")
    i.add_argument("--network", required=True, choices=("mainnet", "preprod", "preview", "devnet"))
    i.add_argument("--dir", default=".", help="the checkout holding docker-compose.yml (default: .)")
    i.add_argument("--stripe-secret-key-file", help="a file holding your sk_live_/sk_test_ key")
    i.add_argument("--stripe-webhook-secret-file", help="a file holding the endpoint's whsec_ secret")
    i.add_argument("--mtls", action="store_true", help="also create mTLS material for a signer over TCP")
    i.set_defaults(run=_init)
    tk = sub.add_parser("token", help="the $CREATE policy; the operator's mint ceremony")
    tks = tk.add_subparsers(dest="action", required=True)
    for name, text in (("show", "policy id, asset name and addresses (public data only) and the .env lines"),
                       ("mint", "mint --quantity N into the treasury through a signer running the ceremony")):
        p = tks.add_parser(name, help=text)
        p.add_argument("--signer-data-dir", help="the signer's key store directory (default: $SIGNER_DATA_DIR)")
        if name == "mint":
            p.add_argument("--quantity", type=int, required=True, help="exactly what the signer's ceremony allows")
            p.add_argument("--ogmios-url", default=os.environ.get("INDEXER_OGMIOS_URL", "ws://127.0.0.1:1337"))
            p.add_argument("--ceremony-socket", required=True,
                           help="the ceremony's socket (ceremony.sock beside the signer's socket)")
            p.add_argument("--note", default="creatorpass token mint", help="recorded in the signer's audit log")
    tk.set_defaults(run=_token)
    st = sub.add_parser("status", help="health and sync of every service, the gateway's checks, the burner")
    st.add_argument("--home", default=os.environ.get("CREATORPASS_HOME", "var"), help="make up's state directory")
    st.add_argument("--endpoint", action="append", default=[], metavar="NAME=HEALTH_URL",
                    help="a service's health URL, e.g. gateway=http://127.0.0.1:8080/health (repeatable)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(run=_status)
    r = sub.add_parser("reconcile", help="check the ledger's invariants (exit 1 on a breach)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(run=_reconcile)
    sub.add_parser("up", help="run the embedded appliance (devnet, Stripe sandbox, every service); see up --help")
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result
