"""deploy/k8s is validated statically: no cluster runs here or in CI.

The repository's manifests pass tools/check_k8s.py; each test injects one defect into a copy of them and
checks that the check names it (hadolint runs on the repository's copy only, as in test_compose_bundle.py).
Where kubectl is installed, the check's kustomize subset is compared with the real `kubectl kustomize` on
every overlay.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from check_k8s import OVERLAYS, problems, render  # noqa: E402

COPIED = ["deploy", "docker", "cardano-node-config", "docker-compose.yml"]
BASE = "deploy/k8s/base"
Doc = dict[str, Any]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in COPIED:
        source, target = ROOT / rel, tmp_path / rel
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return tmp_path


def edit(root: Path, rel: str, kind: str, name: str, change: Callable[[Doc], None]) -> list[str]:
    """Apply ``change`` to the one document ``kind``/``name`` of ``rel`` and run the check on the copy."""
    path = root / rel
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    matched = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matched) == 1, f"{kind}/{name} not in {rel}"
    change(matched[0])
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    found: list[str] = problems(root, hadolint=False)
    return found


def pod(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def container(doc: Doc, index: int = 0) -> Doc:
    found: Doc = pod(doc)["containers"][index]
    return found


def assert_named(found: list[str], *fragments: str) -> None:
    assert found, "the check passed a defective copy"
    assert any(all(f in line for f in fragments) for line in found), found


def test_repository_manifests_pass() -> None:
    assert problems(ROOT) == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (Debian has no package)")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_subset_renderer_agrees_with_kubectl_kustomize(overlay: str) -> None:
    directory = ROOT / "deploy/k8s/overlays" / overlay
    out = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=True).stdout

    def by_name(docs: list[Doc]) -> dict[tuple[str, str], Doc]:
        return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}

    assert by_name(render(directory)) == by_name(list(yaml.safe_load_all(out)))


def test_two_signers_fail(tree: Path) -> None:
    found = edit(tree, f"{BASE}/signer.yaml", "StatefulSet", "signer", lambda d: d["spec"].update(replicas=2))
    assert_named(found, "exactly 1 replica")


def test_signer_egress_rule_fails(tree: Path) -> None:
    def allow_dns(doc: Doc) -> None:
        doc["spec"]["egress"] = [{"ports": [{"protocol": "UDP", "port": 53}]}]

    assert_named(edit(tree, f"{BASE}/signer.yaml", "NetworkPolicy", "signer", allow_dns), "egress")


def test_signer_policy_without_egress_type_fails(tree: Path) -> None:
    def ingress_only(doc: Doc) -> None:
        doc["spec"]["policyTypes"] = ["Ingress"]

    assert_named(edit(tree, f"{BASE}/signer.yaml", "NetworkPolicy", "signer", ingress_only), "denies all egress")


def test_signer_ingress_from_other_pods_fails(tree: Path) -> None:
    def from_indexer(doc: Doc) -> None:
        indexer = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "indexer"}}}
        doc["spec"]["ingress"][0]["from"].append(indexer)

    assert_named(edit(tree, f"{BASE}/signer.yaml", "NetworkPolicy", "signer", from_indexer), "other than the gateway")


def test_container_without_limits_fails(tree: Path) -> None:
    found = edit(tree, f"{BASE}/indexer.yaml", "StatefulSet", "indexer",
                 lambda d: container(d)["resources"].pop("limits"))
    assert_named(found, "container indexer", "resources.limits")


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe"])
def test_container_without_probe_fails(tree: Path, probe: str) -> None:
    found = edit(tree, f"{BASE}/chain.yaml", "StatefulSet", "chain", lambda d: container(d, 2).pop(probe))
    assert_named(found, "container kupo", probe)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("readOnlyRootFilesystem", False, "readOnlyRootFilesystem"),
    ("allowPrivilegeEscalation", True, "allowPrivilegeEscalation"),
    ("capabilities", {"drop": ["NET_RAW"]}, "drop ALL"),
    ("capabilities", {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, "add nothing"),
    ("runAsNonRoot", False, "runAsNonRoot"),
    ("seccompProfile", {"type": "Unconfined"}, "RuntimeDefault"),
])
def test_weakened_security_context_fails(tree: Path, field: str, value: Any, message: str) -> None:
    found = edit(tree, f"{BASE}/gateway.yaml", "Deployment", "gateway",
                 lambda d: container(d)["securityContext"].update({field: value}))
    assert_named(found, "container gateway", message)


def test_init_container_is_held_to_the_same_context(tree: Path) -> None:
    found = edit(tree, f"{BASE}/chain.yaml", "StatefulSet", "chain",
                 lambda d: pod(d)["initContainers"][0].pop("securityContext"))
    assert_named(found, "container chain-config", "readOnlyRootFilesystem")


@pytest.mark.parametrize("tag", ["latest", None])
def test_unpinned_image_fails(tree: Path, tag: str | None) -> None:
    path = tree / BASE / "kustomization.yaml"
    doc = yaml.safe_load(path.read_text())
    entry = next(e for e in doc["images"] if e["name"] == "creatorpass/signer")
    if tag is None:
        entry.pop("newTag")
    else:
        entry["newTag"] = tag
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert_named(problems(tree, hadolint=False), "container signer", "not pinned")


def test_chain_version_apart_from_compose_fails(tree: Path) -> None:
    def older_ogmios(doc: Doc) -> None:
        container(doc, 1)["image"] = "cardanosolutions/ogmios:v6.13.0"

    assert_named(edit(tree, f"{BASE}/chain.yaml", "StatefulSet", "chain", older_ogmios), "docker-compose.yml pins")


def test_uid_apart_from_the_image_fails(tree: Path) -> None:
    found = edit(tree, f"{BASE}/signer.yaml", "StatefulSet", "signer",
                 lambda d: pod(d)["securityContext"].update(runAsUser=10003))
    assert_named(found, "container signer runs as 10003", "10001")


def test_secret_with_a_value_fails(tree: Path) -> None:
    found = edit(tree, "deploy/k8s/secrets/templates.yaml", "Secret", "signer-passphrase",
                 lambda d: d["stringData"].update(passphrase="hunter2"))
    assert_named(found, "Secret signer-passphrase holds values")


def test_secret_data_in_an_overlay_fails(tree: Path) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leak"}, "data": {"k": "aHVudGVyMg=="}}
    (tree / "deploy/k8s/overlays/mainnet/leak.yaml").write_text(yaml.safe_dump(secret))
    assert_named(problems(tree, hadolint=False), "Secret leak holds values")


def test_secret_file_mode_and_read_only_mount(tree: Path) -> None:
    def loosen(doc: Doc) -> None:
        pod(doc)["volumes"][-1]["secret"]["defaultMode"] = 0o444
        container(doc)["volumeMounts"][-1].pop("readOnly")

    found = edit(tree, f"{BASE}/signer.yaml", "StatefulSet", "signer", loosen)
    assert_named(found, "signer-tls needs defaultMode 0400")
    assert_named(found, "secret signer-tls must be mounted readOnly")


def test_inference_without_gpu_fails(tree: Path) -> None:
    def cpu_only(doc: Doc) -> None:
        for part in ("requests", "limits"):
            container(doc)["resources"][part].pop("nvidia.com/gpu")
        pod(doc).pop("nodeSelector")

    found = edit(tree, f"{BASE}/inference.yaml", "Deployment", "inference", cpu_only)
    assert_named(found, "nvidia.com/gpu")
    assert_named(found, "nodeSelector")


def test_inference_service_not_headless_fails(tree: Path) -> None:
    found = edit(tree, f"{BASE}/inference.yaml", "Service", "inference-headless", lambda d: d["spec"].pop("clusterIP"))
    assert_named(found, "headless")


def test_unknown_field_fails_schema_validation(tree: Path) -> None:
    found = edit(tree, f"{BASE}/gateway.yaml", "Deployment", "gateway",
                 lambda d: container(d).update(memoryLimit="1Gi"))
    assert_named(found, "Deployment/gateway", "memoryLimit", "Kubernetes 1.31")


def test_wrong_type_fails_schema_validation(tree: Path) -> None:
    found = edit(tree, f"{BASE}/gateway.yaml", "HorizontalPodAutoscaler", "gateway",
                 lambda d: d["spec"]["behavior"]["scaleDown"].update(stabilizationWindowSeconds="long"))
    assert_named(found, "HorizontalPodAutoscaler/gateway", "stabilizationWindowSeconds")


def test_patch_is_applied_and_checked(tree: Path) -> None:
    def three_signers(doc: Doc) -> None:
        doc["spec"]["replicas"] = 3

    edit(tree, "deploy/k8s/overlays/mainnet/patches.yaml", "Deployment", "gateway",
         lambda d: d.update(kind="StatefulSet", metadata={"name": "signer"}))
    found = edit(tree, "deploy/k8s/overlays/mainnet/patches.yaml", "StatefulSet", "signer", three_signers)
    assert_named(found, "overlays/mainnet", "exactly 1 replica, not 3")
    assert not any("overlays/preprod" in line for line in found), found


def test_patch_without_target_fails(tree: Path) -> None:
    found = edit(tree, "deploy/k8s/overlays/preprod/patches.yaml", "Deployment", "inference",
                 lambda d: d["metadata"].update(name="inferense"))
    assert_named(found, "overlays/preprod: cannot render", "Deployment/inferense matches 0")


def test_kustomize_feature_outside_the_subset_fails(tree: Path) -> None:
    path = tree / "deploy/k8s/overlays/preprod/kustomization.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["configMapGenerator"] = [{"name": "extra", "literals": ["A=1"]}]
    path.write_text(yaml.safe_dump(doc))
    assert_named(problems(tree, hadolint=False), "cannot render", "configMapGenerator")


def test_chain_config_image_needs_its_sources_admitted(tree: Path) -> None:
    ignore = tree / "deploy/k8s/images/chain-config.Dockerfile.dockerignore"
    ignore.write_text(ignore.read_text().replace("!cardano-node-config\n", ""))
    assert_named(problems(tree, hadolint=False), "COPY cardano-node-config")


def test_hadolint_runs_on_the_chain_config_image(tree: Path) -> None:
    dockerfile = tree / "deploy/k8s/images/chain-config.Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("FROM busybox:1.37.0", "FROM busybox"))
    assert_named(problems(tree), "hadolint deploy/k8s/images/chain-config.Dockerfile", "DL3006")


def test_no_burner_fails(tree: Path) -> None:
    def burn_nowhere(doc: Doc) -> None:
        env = container(doc)["env"]
        next(e for e in env if e["name"] == "GATEWAY_BURN_ENABLED")["value"] = "false"

    assert_named(edit(tree, f"{BASE}/gateway.yaml", "Deployment", "gateway", burn_nowhere),
                 "no workload sets GATEWAY_BURN_ENABLED=true")


def test_burner_without_postgres_fails(tree: Path) -> None:
    def local_sqlite(doc: Doc) -> None:
        container(doc)["env"] = [e for e in container(doc)["env"] if e["name"] != "GATEWAY_DATABASE_URL"]

    assert_named(edit(tree, f"{BASE}/gateway.yaml", "Deployment", "gateway", local_sqlite),
                 "Deployment/gateway runs the burner without GATEWAY_DATABASE_URL from a Secret")


def test_burner_without_signer_tls_fails(tree: Path) -> None:
    def no_tls(doc: Doc) -> None:
        mounts = container(doc)["volumeMounts"]
        container(doc)["volumeMounts"] = [m for m in mounts if m["name"] != "signer-tls"]
        pod(doc)["volumes"] = [v for v in pod(doc)["volumes"] if v["name"] != "signer-tls"]

    assert_named(edit(tree, f"{BASE}/gateway.yaml", "Deployment", "gateway", no_tls),
                 "mounts nothing at /run/secrets/signer-tls/client.pem")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_configmap_key_is_a_setting_of_its_service(overlay: str) -> None:
    """A misspelt variable in a ConfigMap is silently ignored by the service: the rendered keys must be its own."""
    from common.settings import describe_settings
    from gateway.settings import GatewaySettings
    from indexer.config import IndexerSettings
    from inference.settings import InferenceSettings
    from signer.settings import SignerSettings

    services = {"gateway-config": GatewaySettings, "inference-config": InferenceSettings,
                "indexer-config": IndexerSettings, "signer-config": SignerSettings}
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in render(ROOT / "deploy/k8s/overlays" / overlay)
            if d["kind"] == "ConfigMap"}
    assert set(services) <= set(maps)
    for name, cls in services.items():
        known = {variable for variable, _, _ in describe_settings(cls)}
        assert set(maps[name]) - known == set(), f"{name}: not settings of {cls.__name__}"
