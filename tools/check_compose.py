"""Static validation of the production bundle (no docker engine runs here or in CI).

This module holds the stack's pins, the core rules and `problems()`, which runs them together with the rules
of compose_rules.py (appliance and SPO) and compose_images.py (what each service's image lets it write, read
and reach), hadolint and the real docker compose (compose_real.py). Besides the Compose specification schema
and hadolint, each check encodes something upstream (the cardano-node image's run-node, Ogmios, Kupo,
Docker's volume/secret/health semantics, the onnxruntime-gpu wheel) does that a bundle which merely parses
would still get wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compose_images import (
    rule_dockerignore,
    rule_secret_files_documented,
    rule_signer_socket_clients,
    rule_writable_dirs,
)
from compose_model import (
    COMPOSE_FILES,
    Bundle,
    environment,
    gpu_services,
    interpolate,
    load_schema,
    mounts,
    node_version,
    published,
    seconds,
    sha256,
)
from compose_real import real_compose_problems
from compose_rules import NEW_RULES, metrics_endpoints

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ("mainnet", "preprod", "preview")

# Versions that move together. Ogmios v6.14.0 is built against cardano-node 10.5.1 and vendors
# cardano-configurations at CONFIGURATIONS_COMMIT as its server/config submodule; Kupo v2.11.0 is the
# node-10.x-era release. Move the stack by changing all of these (and the copied configs) at once.
STACK = {
    "cardano-node": "ghcr.io/intersectmbo/cardano-node:10.5.1",
    "ogmios": "cardanosolutions/ogmios:v6.14.0",
    "kupo": "cardanosolutions/kupo:v2.11.0",
}
CONFIGURATIONS_COMMIT = "e4eb6da37e3f013eece2c9301a0e66e939b3dd96"
# Options the image's run-node replaces its defaults with; they must come as "--option value" pairs.
RUN_NODE_OPTIONS = {"--config", "--topology", "--database-path", "--socket-path", "--host-addr", "--port",
                    "--shelley-kes-key", "--shelley-vrf-key", "--shelley-operational-certificate"}
# The CUDA/cuDNN/TensorRT majors each onnxruntime-gpu wheel's providers link (readelf -d of
# onnxruntime/capi/libonnxruntime_providers_{cuda,tensorrt}.so: libcudart.so.13, libcudnn.so.9, libnvinfer.so.10).
ORT_GPU_LIBS = {"1.31.1": {"cuda": 13, "cudnn": 9, "tensorrt": 10}}
# `${VAR:?}` aborts every command on the file, so only these may use it (a plain `up` cannot do without them).
# The SPO override cannot run at all without the operator's paths, so there they abort on purpose.
REQUIRED_VARIABLES = {"docker-compose.yml": {"NETWORK"},
                      "docker-compose.spo.yml": {"CARDANO_NODE_SOCKET_DIR", "CARDANO_NODE_CONFIG_DIR",
                                                 "CARDANO_NODE_SOCKET_GID"}}
# Services that can take hours to turn healthy (ledger replay, first sync): nothing may wait on them.
SLOW_SERVICES = {"cardano-node", "ogmios", "kupo", "indexer"}
MIN_SLOW_START_PERIOD_S = 3600
# Derived from NETWORK by docker/entrypoint.sh; setting them in compose would let the two disagree.
DERIVED_FROM_NETWORK = ("SIGNER_NETWORK_ID", "SIGNER_SYSTEM_START", "INDEXER_NETWORK", "GATEWAY_NETWORK", "NETWORK_ID")
# (service, container variable, .env variable) the policy and token settings must come from.
WIRING = [
    ("signer", "SIGNER_ASSET_POLICY_ID", "CREATE_POLICY_ID"), ("signer", "SIGNER_ASSET_NAME", "CREATE_ASSET_NAME"),
    ("signer", "SIGNER_SINK_MODE", "SINK_MODE"), ("indexer", "INDEXER_POLICY_ID", "CREATE_POLICY_ID"),
    ("indexer", "INDEXER_ASSET_NAME", "CREATE_ASSET_NAME"), ("indexer", "INDEXER_TREASURY_ADDRESS", "TREASURY_ADDRESS"),
    ("kupo", "KUPO_POLICY_ID", "CREATE_POLICY_ID"), ("kupo", "KUPO_TREASURY_ADDRESS", "TREASURY_ADDRESS"),
]
# Read by docker compose itself from .env, never interpolated.
COMPOSE_OWN_VARIABLES = {"COMPOSE_PROFILES"}
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _raw_env(bundle: Bundle, service: str) -> dict[str, str]:
    return environment(bundle.raw.get("docker-compose.yml", {}).get("services", {}).get(service, {}))


# --- the rules: each returns its problems as "<where>: <what is wrong and why>" --------------------------------


def rule_schema_and_builds(b: Bundle) -> list[str]:
    validator = jsonschema.Draft7Validator(load_schema(b.root))
    found = [f"schema {name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
             for name, doc in b.docs.items() for e in validator.iter_errors(doc)]
    for name, svc in b.services().items():
        build = svc.get("build")
        dockerfile = b.dockerfile(svc)
        if build and dockerfile is None:
            found.append(f"{name}: Dockerfile {build.get('dockerfile', 'Dockerfile')} does not exist")
        has_health = "healthcheck" in svc or bool(dockerfile and dockerfile.lines("HEALTHCHECK", {}))
        if not has_health and "monitoring" not in svc.get("profiles", []):
            found.append(f"{name}: no healthcheck in compose or its image")
    return found


def rule_bind_mounts_exist(b: Bundle) -> list[str]:
    """A missing bind source is created by Docker, empty and root-owned: every one must be in the repo."""
    found = []
    for file, doc in b.raw.items():
        for network in NETWORKS:
            services = interpolate(doc.get("services", {}), {**b.env_example, "NETWORK": network}, set(), set())
            found += [f"{name}: bind-mounted {source} does not exist in the repo ({file})"
                      for name, svc in services.items() for source, _, _ in mounts(svc)
                      if source.startswith((".", "/")) and not (b.root / source).exists()]
        for secret in doc.get("secrets", {}).values():
            if not str(secret.get("file", "")).startswith("./secrets/"):
                found.append(f"{file}: secret files belong under ./secrets/ (kept out of git and builds)")
    return sorted(set(found))


def rule_node_flags(b: Bundle) -> list[str]:
    """run-node appends unknown forms after its own defaults, so --config=X makes the node see it twice."""
    svc = b.services().get("cardano-node", {})
    command = [str(c) for c in svc.get("command", [])]
    found = [] if command[:1] == ["run"] else ["cardano-node: command must start with 'run' (the image's custom mode)"]
    seen: set[str] = set()
    for i, word in enumerate(command):
        option = word.split("=", 1)[0]
        if word.startswith("--") and "=" in word:
            found.append(f"cardano-node: {word!r}: run-node takes space-separated '{option} VALUE' pairs")
        if word in RUN_NODE_OPTIONS and (i + 1 >= len(command) or command[i + 1].startswith("--")):
            found.append(f"cardano-node: {option} has no value after it")
        if option in seen:
            found.append(f"cardano-node: {option} given twice (the node's parser refuses repeats)")
        seen.add(option)
    if "NETWORK" in environment(svc):
        found.append("cardano-node: NETWORK in its environment switches the image to its own built-in configs")
    return found


def rule_stack_versions(b: Bundle) -> list[str]:
    services = b.services()
    found = [f"{name}: image {services.get(name, {}).get('image')!r}, the stack pins {image!r}"
             for name, image in STACK.items() if services.get(name, {}).get("image") != image]
    config_root = b.root / "cardano-node-config"
    for network in NETWORKS:
        found.extend(_node_config_problems(config_root / network, node_version(STACK["cardano-node"])))
    source_path = config_root / "SOURCE.json"
    source = json.loads(source_path.read_text()) if source_path.exists() else {}
    if source.get("commit") != CONFIGURATIONS_COMMIT:
        found.append(f"cardano-node-config/SOURCE.json: commit {source.get('commit')!r}, the stack pins "
                     f"{CONFIGURATIONS_COMMIT} (the cardano-configurations commit Ogmios v6.14.0 vendors)")
    listed = source.get("files")
    if not listed:
        return [*found, "cardano-node-config/SOURCE.json: missing; it pins every config file's sha256"]
    actual = {str(p.relative_to(config_root)) for p in config_root.rglob("*.json") if p.name != "SOURCE.json"}
    for rel in sorted(actual | set(listed)):
        if rel not in listed or rel not in actual or sha256(config_root / rel) != listed[rel]:
            found.append(f"cardano-node-config/{rel}: not the file SOURCE.json pins (copy it from that commit)")
    return found


def _node_config_problems(folder: Path, node: tuple[int, ...]) -> list[str]:
    config_path = folder / "cardano-node" / "config.json"
    if not config_path.exists():
        return [f"{config_path.relative_to(folder.parent.parent)}: missing"]
    config = json.loads(config_path.read_text())
    where = f"cardano-node-config/{folder.name}"
    found = []
    minimum = tuple(int(n) for n in str(config.get("MinNodeVersion", "0")).split("."))
    if minimum > node:
        found.append(f"{where}: configs want cardano-node >= {config['MinNodeVersion']}, the stack runs "
                     f"{'.'.join(map(str, node))}")
    if node < (10, 6) and config.get("EnableP2P") is not True:
        found.append(f"{where}: config.json lacks EnableP2P: true (node < 10.6 reads it as false, then fails on "
                     "the P2P topology)")
    topology = json.loads((folder / "cardano-node" / "topology.json").read_text())
    snapshot = topology.get("peerSnapshotFile")
    if snapshot and node < (10, 7):
        keys = set(json.loads((folder / "cardano-node" / snapshot).read_text()))
        if not {"version", "slotNo"} <= keys:
            found.append(f"{where}: {snapshot} lacks version/slotNo, which node < 10.7 requires")
    for era in ("Shelley", "Alonzo", "Conway"):
        path = config_path.parent / config.get(f"{era}GenesisFile", "")
        digest = hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest() if path.is_file() else ""
        if digest != config.get(f"{era}GenesisHash"):
            found.append(f"{where}: {era} genesis does not match {era}GenesisHash in config.json")
    return found


def rule_required_variables(b: Bundle) -> list[str]:
    """`:?` fails every command on the file (run, logs, down), so it is kept to what a plain `up` needs."""
    found = []
    for file, doc in b.raw.items():
        missing: set[str] = set()
        interpolate(doc, {}, set(), missing)
        for var in sorted(missing - REQUIRED_VARIABLES.get(file, set())):
            found.append(f"{file}: ${{{var}:?}} aborts every command on the file; let the service refuse instead")
    init = b.services().get("signer-init")
    signer = b.services().get("signer", {})
    if init is None:
        found.append("signer-init: missing; `keys init` must run (profile bootstrap) before .env is complete")
        return found
    for key in ("build", "image", "secrets", "read_only", "cap_drop", "security_opt"):
        if init.get(key) != signer.get(key):
            found.append(f"signer-init: {key} differs from the signer's")
    if init.get("network_mode") != "none" or "networks" in init:
        found.append("signer-init: network_mode must be none (keys are made with no network at all)")
    if environment(init) != {k: v for k, v in environment(signer).items() if k != "SIGNER_METRICS_LISTEN"}:
        found.append("signer-init: environment differs from the signer's")
    if not set(init.get("volumes", [])) <= set(signer.get("volumes", [])):
        found.append("signer-init: mounts a volume the real signer does not")
    return found


def _health_text(b: Bundle, svc: dict[str, Any]) -> str:
    """The healthcheck command and the content of any repo script it runs."""
    test = svc.get("healthcheck", {}).get("test", [])
    text = " ".join(map(str, test)) if isinstance(test, list) else str(test)
    for source, target, _ in mounts(svc):
        if target in text and (b.root / source).is_file():
            text += "\n" + (b.root / source).read_text()
    return text


def rule_no_waiting_on_slow_services(b: Bundle) -> list[str]:
    found = []
    services = b.services()
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        for dep, spec in (depends.items() if isinstance(depends, dict) else []):
            if dep in SLOW_SERVICES and spec.get("condition") == "service_healthy":
                found.append(f"{name}: waits for {dep} to be healthy, which can take hours; compose then gives up")
    for name in sorted(SLOW_SERVICES & set(services)):
        health = services[name].get("healthcheck", {})
        if seconds(health.get("start_period", "0s")) < MIN_SLOW_START_PERIOD_S:
            found.append(f"{name}: healthcheck start_period under {MIN_SLOW_START_PERIOD_S // 3600}h (it may "
                         "replay or sync for hours)")
    if "waiting for node" not in _health_text(b, services.get("ogmios", {})):
        found.append("ogmios: its health must say 'waiting for node' while cardano-node is not answering")
    if "cardano-cli" not in _health_text(b, services.get("cardano-node", {})):
        found.append("cardano-node: healthcheck must query the node (cardano-cli); a socket file can be stale")
    return found


def rule_gpu_image_matches_wheel(b: Bundle) -> list[str]:
    """onnxruntime-gpu loads its CUDA provider only next to the CUDA major it links; else it runs on the CPU."""
    pins = re.findall(r"^onnxruntime-gpu==(\S+)", (b.root / "constraints.txt").read_text(), re.M)
    version = pins[0] if pins else "?"
    libs = ORT_GPU_LIBS.get(version)
    found = [] if libs else [f"constraints.txt: onnxruntime-gpu {version} has no entry in ORT_GPU_LIBS "
                             "(read its wheel's libonnxruntime_providers_*.so NEEDED libraries first)"]
    for name, svc in gpu_services(b):
        dockerfile = b.dockerfile(svc)
        if dockerfile is None or libs is None:
            continue
        args = svc["build"].get("args", {})
        image = dockerfile.values(args).get("CUDA_IMAGE", "")
        tag = re.match(r"[^:]+:(\d+)\.[\d.]+-cudnn(\d*)-", image)
        if not tag or int(tag.group(1)) != libs["cuda"]:
            found.append(f"{name}: base image {image!r} is not CUDA {libs['cuda']} + cuDNN, which "
                         f"onnxruntime-gpu {version} links")
        env = {**dict(re.findall(r"(\w+)=(\S+)", " ".join(dockerfile.lines("ENV", args)))), **environment(svc)}
        providers = env.get("INFERENCE_PROVIDERS", "tensorrt,cuda,cpu").split(",")
        trt = f"tensorrt-cu{libs['cuda']}-libs=={libs['tensorrt']}."
        if "tensorrt" in providers and trt not in dockerfile.path.read_text():
            found.append(f"{name}: tries TensorRT, but the image does not install {trt}* (libnvinfer.so."
                         f"{libs['tensorrt']}); set INFERENCE_PROVIDERS=cuda,cpu or install it")
        if env.get("INFERENCE_REQUIRE_GPU", "").lower() != "true":
            found.append(f"{name}: set INFERENCE_REQUIRE_GPU=true so health is degraded when it falls back to the CPU")
    return found


def rule_network_from_one_variable(b: Bundle) -> list[str]:
    found = []
    for file, doc in b.raw.items():
        for name, svc in doc.get("services", {}).items():
            env = environment(svc)
            found += [f"{name}: {var} is derived from NETWORK by the entrypoint; do not set it ({file})"
                      for var in DERIVED_FROM_NETWORK if var in env]
            network_aware = any(k.startswith(("SIGNER_", "INDEXER_", "GATEWAY_")) for k in env)
            own_entrypoint = "entrypoint" in svc  # e.g. `creatorpass doctor`, which reads NETWORK itself
            if network_aware and not own_entrypoint and "${NETWORK" not in env.get("CREATORPASS_NETWORK", ""):
                found.append(f"{name}: CREATORPASS_NETWORK must come from ${{NETWORK}} ({file})")
    for name, svc in b.services().items():
        dockerfile = b.dockerfile(svc)
        if dockerfile is None:
            continue
        for instr in ("ENTRYPOINT", "HEALTHCHECK"):
            if not all("creatorpass-entrypoint" in line for line in dockerfile.lines(instr, {}) or [""]):
                found.append(f"{name}: {dockerfile.path.name} {instr} must run docker/entrypoint.sh (derives "
                             "the network settings)")
    return found


def rule_settings_wiring(b: Bundle) -> list[str]:
    found = []
    for service, var, source in WIRING:
        value = _raw_env(b, service).get(var, "")
        if not re.search(r"\$\{" + source + r"\b", value):
            found.append(f"{service}: {var} must come from ${{{source}}} in .env")
    used = set().union(*b.used.values()) if b.used else set()
    used |= COMPOSE_OWN_VARIABLES & set(b.env_example)
    for var in sorted(used - set(b.env_example)):
        found.append(f".env.example: {var} is used by the compose files but not documented")
    for var in sorted(set(b.env_example) - used):
        found.append(f".env.example: {var} is documented but no compose file uses it")
    return found


def rule_start_point(b: Bundle) -> list[str]:
    """Kupo and the indexer index from a documented point, both the same, never origin by default."""
    kupo = _raw_env(b, "kupo").get("KUPO_SINCE", "")
    indexer = _raw_env(b, "indexer").get("INDEXER_START_POINT", "")
    command = " ".join(map(str, b.raw.get("docker-compose.yml", {}).get("services", {}).get("kupo", {}).get(
        "command", [])))
    if "--since" in command:
        kupo = command.split("--since", 1)[1].lstrip("= ").split(" ")[0]
    names = {v: re.findall(r"\$\{(\w+)", v) for v in (kupo, indexer)}
    if not names[kupo] or names[kupo] != names[indexer]:
        return [f"kupo/indexer: start points {kupo!r} and {indexer!r} must be one .env variable"]
    if "origin" in kupo or "origin" in indexer:
        return [f"kupo/indexer: start point defaults to origin ({kupo!r}); leave it to the operator"]
    return []


def rule_exposure_and_monitoring(b: Bundle) -> list[str]:
    found = []
    for env in ({}, b.env_example):  # the compose defaults, and the documented example
        doc = interpolate(b.raw.get("docker-compose.yml", {}), {**env, "NETWORK": "preprod"}, set(), set())
        for name, svc in doc.get("services", {}).items():
            found += [f"{name}: publishes {entry} on every interface; bind it to 127.0.0.1 unless the operator "
                      "opts in" for host, entry in published(svc) if host not in LOOPBACK]
    services = b.services()
    for name, svc in services.items():
        if not str(svc.get("image", "")).startswith("prom/prometheus"):
            continue
        if not any(t == "/prometheus" and not s.startswith((".", "/")) for s, t, _ in mounts(svc)):
            found.append(f"{name}: /prometheus needs a named volume, or the data goes with the container")
        config = b.root / "docker" / "prometheus.yml"
        targets = set(re.findall(r"[\w-]+:\d+", config.read_text())) if config.exists() else set()
        for service, names, port in metrics_endpoints(b):
            if not {f"{n}:{port}" for n in names} & targets:
                found.append(f"docker/prometheus.yml: does not scrape {service}:{port}/metrics")
    return sorted(set(found))


RULES = [*NEW_RULES, rule_schema_and_builds, rule_bind_mounts_exist,
         rule_node_flags, rule_stack_versions, rule_writable_dirs,
         rule_secret_files_documented, rule_required_variables, rule_no_waiting_on_slow_services,
         rule_gpu_image_matches_wheel, rule_signer_socket_clients, rule_network_from_one_variable,
         rule_settings_wiring, rule_start_point, rule_exposure_and_monitoring, rule_dockerignore]


def problems(root: Path = ROOT, *, hadolint: bool = True) -> list[str]:
    bundle = Bundle.load(root)
    found = [f"{name}: missing" for name in COMPOSE_FILES if name not in bundle.raw]
    for rule in RULES:
        found.extend(rule(bundle))
    if hadolint:  # the external tools: hadolint and the real docker compose
        found.extend(_hadolint(bundle))
        found.extend(real_compose_problems(bundle))
    return found


def _hadolint(bundle: Bundle) -> list[str]:
    binary = Path(sys.executable).parent / "hadolint"
    found = []
    for path in sorted({str(d.path) for s in bundle.services().values() if (d := bundle.dockerfile(s))}):
        proc = subprocess.run([str(binary), "--no-color", path], capture_output=True, text=True)
        if proc.returncode:
            found.append(f"hadolint {Path(path).relative_to(bundle.root)}:\n{proc.stdout}{proc.stderr}")
    return found


if __name__ == "__main__":
    issues = problems()
    if issues:
        print("compose bundle problems:\n  " + "\n  ".join(issues), file=sys.stderr)
        raise SystemExit(1)
    print("docker-compose files, Dockerfiles, node configs and .env.example agree")
