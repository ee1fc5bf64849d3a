"""The rules of tools/check_compose.py added for the appliance (issue 14) and stake-pool operators (issue 12):
isolation, limits, users, secrets, profiles, alerts and the SPO overrides. Each returns its problems."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from compose_model import OVERRIDES, Bundle, active, environment, gpu_services, mounts, published

__all__ = ["NEW_RULES", "exported_metrics", "metrics_endpoints"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")
# The profiles a production .env enables, and the chain services an SPO override must not start.
PRODUCTION_PROFILES = {"node", "chain", "gpu"}
# Services that are not creatorpass's own (the operator's node may need all the memory it wants).
UNLIMITED = {"cardano-node"}
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSPHRASE|PRIVATE_KEY|_KEY)$")
NOT_SECRET = {"GATEWAY_STRIPE_PUBLISHABLE_KEY"}
METRIC_SOURCES = ("gateway", "indexer", "inference", "signer")
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "offset", "sum", "max", "min", "avg", "count", "increase", "rate", "irate", "up", "le"}


def _aliases(svc: dict[str, Any]) -> set[str]:
    networks = svc.get("networks") or {}
    if not isinstance(networks, dict):
        return set()
    return {a for spec in networks.values() if isinstance(spec, dict) for a in spec.get("aliases", [])}


def metrics_endpoints(b: Bundle) -> Iterator[tuple[str, set[str], str]]:
    """(service, the names it answers to, port) of every /metrics the bundle serves."""
    for name, svc in b.services().items():
        env = environment(svc)
        names = {name} | _aliases(svc)
        ports = [v for k, v in env.items() if k.endswith("_HEALTH_PORT")]
        ports += [env["SIGNER_METRICS_LISTEN"].rsplit(":", 1)[1]] if env.get("SIGNER_METRICS_LISTEN") else []
        ports += [env["GATEWAY_PORT"]] if env.get("GATEWAY_PORT") else []
        ports += [p for p, alias in (("1337", "ogmios"), ("1442", "kupo")) if alias in names]
        for port in ports:
            yield name, names, port


def _networks(svc: dict[str, Any]) -> set[str]:
    networks = svc.get("networks") or {}
    return set(networks) if isinstance(networks, (dict, list)) else set()


def rule_isolation(b: Bundle) -> list[str]:
    """The signer and everything that needs no egress sit on internal networks; only the GPU service gets a GPU."""
    services, declared = b.services(), b.docs.get("docker-compose.yml", {}).get("networks", {}) or {}
    found = []
    signer = services.get("signer", {})
    for net in sorted(_networks(signer)):
        if not (declared.get(net) or {}).get("internal"):
            found.append(f"signer: network {net} must be internal (no egress)")
        sharing = sorted(n for n, s in services.items() if n not in ("signer", "prometheus") and net in _networks(s))
        if sharing:
            found.append(f"signer: {', '.join(sharing)} share its network {net}; only Prometheus may")
    if signer.get("ports") or ("networks" not in signer and signer.get("network_mode") != "none"):
        found.append("signer: publishes ports or sits on the default network")
    for name in ("indexer", "ogmios", "kupo", "inference", "inference-cpu", "devnet"):
        nets = _networks(services.get(name, {}))
        if name in services and (not nets or any(not (declared.get(n) or {}).get("internal") for n in nets)):
            found.append(f"{name}: needs no egress; keep it on internal networks only")
    gpus = [n for n, _ in gpu_services(b)]
    if gpus != ["inference"]:
        found.append(f"GPU reserved by {gpus}; only inference may reserve it")
    for name in gpus:
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        if not all(d.get("device_ids") for d in devices):
            found.append(f"{name}: pin the GPU with device_ids (INFERENCE_GPU), not count")
    return found


def _limit_problems(services: dict[str, dict[str, Any]], where: str) -> list[str]:
    found = []
    for name, svc in services.items():
        limits = svc.get("deploy", {}).get("resources", {}).get("limits", {})
        if name not in UNLIMITED and not (limits.get("cpus") and limits.get("memory")):
            found.append(f"{name}: no CPU and memory limit (deploy.resources.limits){where}")
    return found


def rule_limits_users_secrets(b: Bundle) -> list[str]:
    services = b.services()
    found = _limit_problems(services, "")
    for name, svc in services.items():
        dockerfile = b.dockerfile(svc)
        if dockerfile and dockerfile.user(svc["build"].get("args", {})) in ("0", "root"):
            found.append(f"{name}: its image runs as root")
        if str(svc.get("user", "")).split(":")[0] in ("0", "root"):
            found.append(f"{name}: runs as root (user:)")
        secrets = {s if isinstance(s, str) else s["source"] for s in svc.get("secrets", [])}
        for var, value in environment(svc).items():
            if SECRET_NAME.search(var) and not var.endswith("_FILE") and var not in NOT_SECRET:
                found.append(f"{name}: {var} holds a secret in the environment; use {var}_FILE and a secret")
            if var.endswith("_FILE") and value.startswith("/run/secrets/") and value[13:] not in secrets:
                found.append(f"{name}: {var} reads /run/secrets/{value[13:]}, which is not among its secrets")
    return found


def rule_profiles_and_waits(b: Bundle) -> list[str]:
    """A dependency that runs under other profiles needs required: false, or compose refuses to start."""
    found = []
    services = b.services()
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        for dep, spec in (depends.items() if isinstance(depends, dict) else []):
            if dep not in services:
                found.append(f"{name}: depends on {dep}, which does not exist")
                continue
            mine, theirs = set(svc.get("profiles", [])), set(services[dep].get("profiles", []))
            if theirs and not (mine and mine <= theirs) and spec.get("required", True):
                found.append(f"{name}: depends on {dep} (profiles {sorted(theirs)}) without required: false")
    devnet = active(services, {"devnet"})
    for name in ("cardano-node", "ogmios", "kupo", "inference"):
        if name in devnet:
            found.append(f"{name}: runs under the devnet profile; the devnet replaces it")
    for name in ("devnet", "stripe-sandbox", "inference-cpu"):
        if name in active(services, PRODUCTION_PROFILES) or name not in devnet:
            found.append(f"{name}: must run under the devnet profile only")
    aliases = set().union(*(_aliases(s) for s in devnet.values())) if devnet else set()
    for needed in ("ogmios", "kupo", "inference"):
        if needed not in aliases | set(devnet):
            found.append(f"devnet profile: nothing answers as {needed}")
    return found


def exported_metrics(root: Path) -> set[str]:
    """Metric names the services register (prometheus_client adds _total to counters, and histogram series)."""
    names: set[str] = set()
    for package in METRIC_SOURCES:
        for path in (root / package).rglob("*.py"):
            for kind, name in re.findall(r"\b(Counter|Gauge|Histogram)\(\s*\"([a-z_:]+)\"", path.read_text()):
                base = name.removesuffix("_total") if kind == "Counter" else name
                names |= {base + "_total"} if kind == "Counter" else {base}
                names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"} if kind == "Histogram" else set()
    return names


@functools.lru_cache(maxsize=32)
def _promtool(promtool: str, rules: str, tests: str) -> list[str]:
    """``promtool check rules`` and ``test rules`` on these texts (cached: the tests check many bundles)."""
    found = []
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "alerts.yml").write_text(rules)
        Path(folder, "alerts.test.yml").write_text(tests)
        for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
            proc = subprocess.run([promtool, *command], capture_output=True, text=True, timeout=60, cwd=folder)
            if proc.returncode:
                found.append(f"promtool {' '.join(command)} (docker/):\n{proc.stdout}{proc.stderr}")
    return found


def rule_alerts(b: Bundle) -> list[str]:
    path = b.root / "docker" / "alerts.yml"
    if not path.exists():
        return ["docker/alerts.yml: missing (burner stuck, treasury low, indexer lagging, queue full)"]
    found = []
    promtool = shutil.which("promtool")
    if promtool is None:
        found.append("promtool not found: install Debian's prometheus package (tools/setup-system.sh) to check "
                     "docker/alerts.yml")
    else:
        tests = path.parent / "alerts.test.yml"
        found += _promtool(promtool, path.read_text(), tests.read_text() if tests.exists() else "")
    config = (b.root / "docker" / "prometheus.yml").read_text()
    if "/etc/prometheus/alerts.yml" not in config:
        found.append("docker/prometheus.yml: rule_files must load /etc/prometheus/alerts.yml")
    prometheus = b.services().get("prometheus", {})
    if not any(t == "/etc/prometheus/alerts.yml" for _, t, _ in mounts(prometheus)):
        found.append("prometheus: does not mount docker/alerts.yml at /etc/prometheus/alerts.yml")
    exported = exported_metrics(b.root)
    rules = [r for g in (yaml.safe_load(path.read_text()) or {}).get("groups", []) for r in g.get("rules", [])]
    for rule in rules:
        expr = re.sub(r"\{[^}]*\}|\[[^]]*\]|\"[^\"]*\"", "", str(rule.get("expr", "")))
        for word in set(re.findall(r"\b[a-z_][a-z0-9_]*\b", expr)) - PROMQL_WORDS:
            if word.startswith(("gateway_", "creatorpass_")) and word not in exported:
                found.append(f"docker/alerts.yml: {rule.get('alert')} uses {word}, which no service exports")
    wanted = {"BurnerStuck", "TreasuryLow", "IndexerLagging", "InferenceQueueFull"}
    found += [f"docker/alerts.yml: no {a} alert" for a in sorted(wanted - {r.get("alert") for r in rules})]
    return found


def _spo_section(b: Bundle) -> str:
    readme = b.root / "README.md"
    text = readme.read_text() if readme.exists() else ""
    return text.split("## SPO add-on", 1)[1].split("\n## ", 1)[0] if "## SPO add-on" in text else ""


def rule_spo_overrides(b: Bundle) -> list[str]:
    """Beside an operator's node: no cardano-node, read-only host mounts documented, loopback, limits."""
    found = []
    section = _spo_section(b)
    if not section:
        found.append("README.md: no '## SPO add-on' section")
    for file in OVERRIDES:
        if file not in b.raw:
            continue
        merged = b.merged(file)
        running = active(merged.get("services", {}), PRODUCTION_PROFILES | {"doctor"})
        if "cardano-node" in running:
            found.append(f"{file}: starts cardano-node even with COMPOSE_PROFILES=node,...")
        found += _limit_problems(running, f" ({file})")
        for name, svc in running.items():
            found += [f"{name}: publishes {entry} on every interface ({file})"
                      for host, entry in published(svc) if host not in LOOPBACK]
        for name, svc in b.raw[file].get("services", {}).items():
            named = {**svc, "volumes": [re.sub(r"\$\{(\w+)[^}]*\}", r"${\1}", str(v)) for v in svc.get("volumes", [])]}
            for source, target, read_only in mounts(named):
                variables = re.findall(r"\$\{(\w+)", source)
                if not read_only:
                    found.append(f"{file}: {name} mounts {source} at {target} writable; the operator's paths are ro")
                found += [f"README 'SPO add-on': does not document {v} ({file}, {name}:{target})"
                          for v in variables if v not in section]
    spo = b.merged("docker-compose.spo.yml").get("services", {}) if "docker-compose.spo.yml" in b.raw else {}
    for name in ("ogmios", "kupo"):
        if any(s == "node-ipc" for s, _, _ in mounts(spo.get(name, {}))):
            found.append(f"docker-compose.spo.yml: {name} still mounts the bundle's node-ipc volume")
    if "docker-compose.spo.yml" in b.raw and "KUPO_NODE_SOCKET" not in environment(spo.get("kupo", {})):
        found.append("docker-compose.spo.yml: kupo must read the operator's node socket (KUPO_NODE_SOCKET)")
    for name, svc in spo.items():
        if name == "kupo" and "/opt/creatorpass/kupo-start.sh" not in " ".join(map(str, svc.get("entrypoint", []))):
            found.append("docker-compose.spo.yml: kupo must start through docker/kupo-start.sh (our patterns only)")
    return found


def rule_doctor_sees_what_it_checks(b: Bundle) -> list[str]:
    """creatorpass doctor reads the signer's key file and (SPO) the node socket where they are mounted."""
    found = []
    signer_volume = next((s for s, t, _ in mounts(b.services().get("signer", {})) if t == "/data"), "")
    setups = [("docker-compose.yml", b.services())]
    setups += [(f, b.merged(f).get("services", {})) for f in OVERRIDES if f in b.raw]
    for file, services in setups:
        doctor = services.get("doctor")
        if doctor is None:
            found.append(f"doctor: missing ({file}); the README's `--profile doctor run --rm doctor` needs it")
            continue
        env, targets = environment(doctor), {t: s for s, t, _ in mounts(doctor)}
        key_dir = str(Path(env.get("SIGNER_KEY_FILE", "/?/keys.json")).parent)
        if targets.get(key_dir) != signer_volume:
            found.append(f"doctor: SIGNER_KEY_FILE's directory {key_dir} is not the signer's {signer_volume} ({file})")
        socket = env.get("CARDANO_NODE_SOCKET_PATH")
        if socket and str(Path(socket).parent) not in targets:
            found.append(f"doctor: CARDANO_NODE_SOCKET_PATH {socket} is in no mounted directory ({file})")
    return found


NEW_RULES = [rule_doctor_sees_what_it_checks, rule_isolation,
             rule_limits_users_secrets, rule_profiles_and_waits, rule_alerts, rule_spo_overrides]
