"""Static validation of deploy/k8s (no cluster runs here or in CI).

1. Renders every overlay with a small kustomize subset: exactly the features deploy/k8s uses (resources,
   namespace, labels without selectors, images, strategic-merge patches by kind and name). Anything else in a
   kustomization is an error here, not silently ignored; tests/common/test_k8s_manifests.py compares the
   output with `kubectl kustomize` where kubectl is installed.
2. Validates every rendered resource, the Secret templates and the examples' core resources with
   kubernetes-validate against Kubernetes KUBERNETES_VERSION, strict (an unknown field fails).
3. Checks our own rules: one signer with a NetworkPolicy that denies all egress and admits only the gateway;
   a burner on the shared PostgreSQL with the signer's client files mounted;
   limits, probes and the restricted securityContext on every container; images pinned; no Secret with data
   anywhere under deploy/; GPUs for inference; uids and chain versions as in docker-compose.yml.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.31.0"
K8S_DIR = Path("deploy/k8s")
OVERLAYS = ("preprod", "mainnet")
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
# Kinds the namespace transformer sets a namespace on; any other kind in a render is refused (keep honest).
NAMESPACED = {"ConfigMap", "Secret", "Service", "Deployment", "StatefulSet", "HorizontalPodAutoscaler",
              "PodDisruptionBudget", "NetworkPolicy", "PersistentVolumeClaim"}
CLUSTER_SCOPED = {"Namespace"}
WORKLOADS = {"Deployment", "StatefulSet"}
# Strategic-merge keys of the lists we patch (Kubernetes' patchMergeKey); other lists are replaced.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}
# Kinds of the examples that are CRDs (no schema in kubernetes-validate): parsed, not schema-checked.
CRD_API_GROUPS = ("postgresql.cnpg.io/", "monitoring.coreos.com/")
SECRET_MODE = 0o400
# Images built from deploy/k8s/images/ rather than docker-compose.yml (their USER is in the Dockerfile).
OWN_IMAGES = {"creatorpass/chain-config"}


class RenderError(Exception):
    """A kustomization uses something the subset renderer does not implement, or refers to nothing."""


def _load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if isinstance(key, str) and key.startswith("$"):
                raise RenderError(f"patch directive {key} is not supported")
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = _strategic_merge(base.get(key), value, key) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        if field == "ports" and any("containerPort" not in item for item in base + patch):
            key = "port"
        merged_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            index = next((i for i, old in enumerate(merged_list) if old.get(key) == item.get(key)), None)
            if index is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[index] = _strategic_merge(merged_list[index], item, field)
        return merged_list
    return copy.deepcopy(patch)


def _pod_specs(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if resource.get("kind") in WORKLOADS:
        yield resource.get("spec", {}).get("template", {}).get("spec", {})


def containers(resource: dict[str, Any], init: bool = True) -> Iterator[dict[str, Any]]:
    for spec in _pod_specs(resource):
        yield from spec.get("containers", [])
        if init:
            yield from spec.get("initContainers", [])


def _image_name(image: str) -> str:
    head, _, last = image.split("@", 1)[0].rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _apply_images(resources: list[dict[str, Any]], images: list[dict[str, Any]]) -> None:
    unknown = [set(entry) - {"name", "newName", "newTag", "digest"} for entry in images]
    if any(unknown):
        raise RenderError(f"images: unsupported fields {sorted(set().union(*unknown))}")
    for resource in resources:
        for container in containers(resource):
            for entry in images:
                if _image_name(container["image"]) != entry["name"]:
                    continue
                name = entry.get("newName", entry["name"])
                if "digest" in entry:
                    container["image"] = f"{name}@{entry['digest']}"
                elif "newTag" in entry:
                    container["image"] = f"{name}:{entry['newTag']}"
                else:
                    container["image"] = name + container["image"][len(entry["name"]):]


def _apply_labels(resources: list[dict[str, Any]], labels: list[dict[str, Any]]) -> None:
    for entry in labels:
        if set(entry) - {"pairs"}:
            raise RenderError(f"labels: only plain pairs are supported, got {sorted(entry)}")
        for resource in resources:
            resource.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])


def _apply_namespace(resources: list[dict[str, Any]], namespace: str) -> None:
    for resource in resources:
        kind = resource.get("kind")
        if kind in NAMESPACED:
            resource["metadata"]["namespace"] = namespace
        elif kind == "Namespace":
            if resource["metadata"]["name"] != namespace:
                raise RenderError(f"Namespace {resource['metadata']['name']} is not the kustomization's {namespace}")
        else:
            raise RenderError(f"{kind}: the subset renderer does not know whether it is namespaced")


def _apply_patches(resources: list[dict[str, Any]], directory: Path, patches: list[dict[str, Any]]) -> None:
    for entry in patches:
        if set(entry) != {"path"}:
            raise RenderError(f"{directory}: patches support only `path` (strategic merge by kind and name)")
        for patch in _load_docs(directory / entry["path"]):
            kind, name = patch.get("kind"), patch.get("metadata", {}).get("name")
            matches = [i for i, r in enumerate(resources) if r.get("kind") == kind and r["metadata"]["name"] == name]
            if len(matches) != 1:
                raise RenderError(f"{directory / entry['path']}: {kind}/{name} matches {len(matches)} resources")
            resources[matches[0]] = _strategic_merge(resources[matches[0]], patch)


def render(directory: Path) -> list[dict[str, Any]]:
    """Resources of the kustomization in ``directory``, transformed as `kubectl kustomize` would."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}
    unsupported = set(kustomization) - KUSTOMIZATION_KEYS
    if unsupported:
        raise RenderError(f"{directory}/kustomization.yaml: unsupported fields {sorted(unsupported)}")
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(render(path))
        elif path.is_file():
            resources.extend(_load_docs(path))
        else:
            raise RenderError(f"{directory}/kustomization.yaml: resource {entry} does not exist")
    _apply_patches(resources, directory, kustomization.get("patches", []))
    if "namespace" in kustomization:
        _apply_namespace(resources, kustomization["namespace"])
    _apply_labels(resources, kustomization.get("labels", []))
    _apply_images(resources, kustomization.get("images", []))
    keys = [(r.get("kind"), r.get("metadata", {}).get("name")) for r in resources]
    duplicates = {key for key in keys if keys.count(key) > 1}
    if duplicates:
        raise RenderError(f"{directory}: resources defined twice: {sorted(map(str, duplicates))}")
    return resources


def kn(resource: dict[str, Any]) -> str:
    return f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"


def schema_problems(resource: dict[str, Any], where: str) -> list[str]:
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path)
        return [f"{where}: {kn(resource)}: {path or '(root)'}: {exc.message} (Kubernetes {KUBERNETES_VERSION})"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{where}: {kn(resource)}: {exc.message}"]
    except KeyError as exc:
        return [f"{where}: {kn(resource)}: no {exc} field"]
    return []


def _container_problems(where: str, pod: dict[str, Any], container: dict[str, Any], init: bool) -> list[str]:
    name, found = f"{where}: container {container.get('name')}", []
    limits = container.get("resources", {}).get("limits", {})
    requests = container.get("resources", {}).get("requests", {})
    if not {"cpu", "memory"} <= set(limits) or not {"cpu", "memory"} <= set(requests):
        found.append(f"{name}: needs cpu and memory in both resources.requests and resources.limits")
    if not init:
        found += [f"{name}: no {probe}" for probe in ("readinessProbe", "livenessProbe") if probe not in container]
    pod_ctx, ctx = pod.get("securityContext", {}), container.get("securityContext", {})
    if not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
        found.append(f"{name}: runAsNonRoot must be true")
    if ctx.get("readOnlyRootFilesystem") is not True:
        found.append(f"{name}: readOnlyRootFilesystem must be true")
    if ctx.get("allowPrivilegeEscalation") is not False:
        found.append(f"{name}: allowPrivilegeEscalation must be false")
    if "ALL" not in ctx.get("capabilities", {}).get("drop", []) or ctx.get("capabilities", {}).get("add"):
        found.append(f"{name}: capabilities must drop ALL and add nothing")
    seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
    if seccomp.get("type") != "RuntimeDefault":
        found.append(f"{name}: seccompProfile must be RuntimeDefault")
    image = container.get("image", "")
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if "@sha256:" not in image and tag in ("", "latest"):
        found.append(f"{name}: image {image!r} is not pinned to a version")
    return found


def _pod_problems(where: str, resource: dict[str, Any], compose_uids: dict[str, int]) -> list[str]:
    found: list[str] = []
    for pod in _pod_specs(resource):
        if pod.get("automountServiceAccountToken") is not False:
            found.append(f"{where}: automountServiceAccountToken must be false (no pod talks to the API)")
        for volume in pod.get("volumes", []):
            secret = volume.get("secret")
            if secret is not None and secret.get("defaultMode") != SECRET_MODE:
                found.append(f"{where}: secret volume {volume['name']} needs defaultMode 0400")
        secret_volumes = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            init = container in pod.get("initContainers", [])
            found += _container_problems(where, pod, container, init)
            found += [f"{where}: container {container['name']}: secret {m['name']} must be mounted readOnly"
                      for m in container.get("volumeMounts", [])
                      if m["name"] in secret_volumes and m.get("readOnly") is not True]
            image = _image_name(container.get("image", ""))
            uid = compose_uids.get(image)
            if uid is None and image.startswith("creatorpass/") and image not in OWN_IMAGES:
                found.append(f"{where}: container {container['name']}: no APP_UID for {image} in docker-compose.yml")
            pod_uid = pod.get("securityContext", {}).get("runAsUser")
            run_as = container.get("securityContext", {}).get("runAsUser", pod_uid)
            if uid is not None and run_as != uid:
                found.append(f"{where}: container {container['name']} runs as {run_as}, its image's user is {uid}")
    return found


def _labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return bool(selector.get("matchLabels")) and all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def _signer_problems(where: str, resources: list[dict[str, Any]]) -> list[str]:
    signers = [r for r in resources if r.get("kind") in WORKLOADS and r["metadata"]["name"] == "signer"]
    if len(signers) != 1:
        return [f"{where}: expected one signer workload, found {len(signers)}"]
    found, signer = [], signers[0]
    if signer["spec"].get("replicas") != 1:
        found.append(f"{where}: the signer must run exactly 1 replica, not {signer['spec'].get('replicas')}")
    pod_labels = signer["spec"]["template"]["metadata"].get("labels", {})
    policies = [r for r in resources if r.get("kind") == "NetworkPolicy"
                and _labels_match(r["spec"].get("podSelector", {}), pod_labels)]
    if not any("Egress" in p["spec"].get("policyTypes", []) and not p["spec"].get("egress") for p in policies):
        found.append(f"{where}: no NetworkPolicy on the signer denies all egress (policyTypes Egress, no egress rules)")
    if any(p["spec"].get("egress") for p in policies):
        found.append(f"{where}: a NetworkPolicy allows the signer some egress")
    gateway_only = {"app.kubernetes.io/name": "gateway"}
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from", [])
            if not peers or any(set(peer) != {"podSelector"} or peer["podSelector"].get("matchLabels") != gateway_only
                                for peer in peers):
                found.append(f"{where}: {kn(policy)} admits ingress from something other than the gateway's pods")
    if not any("Ingress" in p["spec"].get("policyTypes", []) for p in policies):
        found.append(f"{where}: no NetworkPolicy restricts ingress to the signer")
    return found


def _runs_burner(resource: dict[str, Any]) -> bool:
    return any({"name": "GATEWAY_BURN_ENABLED", "value": "true"} in c.get("env", []) for c in containers(resource))


def _burner_problems(where: str, resources: list[dict[str, Any]]) -> list[str]:
    """Some workload burns (else intents wait forever); every burner shares PostgreSQL (lane leases live there)
    and mounts the signer's mTLS client files named in gateway-config."""
    burners = [r for r in resources if r.get("kind") in WORKLOADS and _runs_burner(r)]
    if not burners:
        return [f"{where}: no workload sets GATEWAY_BURN_ENABLED=true: burn intents would wait in the outbox forever"]
    config = next((r.get("data", {}) for r in resources
                   if r.get("kind") == "ConfigMap" and r["metadata"]["name"] == "gateway-config"), {})
    tls = [config[key] for key in ("GATEWAY_SIGNER_TLS_CERT", "GATEWAY_SIGNER_TLS_KEY", "GATEWAY_SIGNER_TLS_CA")
           if key in config]
    found = []
    for burner in burners:
        for c in containers(burner):
            database = next((e for e in c.get("env", []) if e.get("name") == "GATEWAY_DATABASE_URL"), {})
            if "secretKeyRef" not in database.get("valueFrom", {}):
                found.append(f"{where}: {kn(burner)} runs the burner without GATEWAY_DATABASE_URL from a Secret: "
                             "lane leases need the shared PostgreSQL")
            mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts", [])]
            for path in tls:
                if not any(path.startswith(m) for m in mounts):
                    found.append(f"{where}: {kn(burner)} runs the burner but mounts nothing at {path} "
                                 "(the signer's mTLS client files)")
    return found


def _inference_problems(where: str, resources: list[dict[str, Any]]) -> list[str]:
    found = []
    for resource in (r for r in resources if r.get("kind") in WORKLOADS and r["metadata"]["name"] == "inference"):
        pod = resource["spec"]["template"]["spec"]
        for container in pod.get("containers", []):
            res = container.get("resources", {})
            if not all(int(res.get(part, {}).get("nvidia.com/gpu", 0)) >= 1 for part in ("requests", "limits")):
                found.append(f"{where}: inference container {container['name']} must request and limit nvidia.com/gpu")
        if not pod.get("nodeSelector") and not pod.get("affinity"):
            found.append(f"{where}: inference needs a nodeSelector or affinity for GPU nodes")
    headless = [r for r in resources if r.get("kind") == "Service" and r["metadata"]["name"] == "inference-headless"]
    if not headless or headless[0]["spec"].get("clusterIP") != "None":
        found.append(f"{where}: Service inference-headless must be headless (clusterIP: None)")
    return found


def compose_pins(root: Path) -> tuple[dict[str, int], dict[str, str]]:
    """The image uids (APP_UID build args) and the chain images docker-compose.yml pins."""
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    uids, chain = {}, {}
    for name, service in services.items():
        image = service.get("image", "")
        build = service.get("build")
        uid = build.get("args", {}).get("APP_UID") if isinstance(build, dict) else None
        if uid is not None:
            uids[_image_name(image)] = int(uid)
        if name in ("cardano-node", "ogmios", "kupo"):
            chain[_image_name(image)] = image
    return uids, chain


def _chain_problems(where: str, resources: list[dict[str, Any]], chain: dict[str, str]) -> list[str]:
    images = {_image_name(c["image"]): c["image"] for r in resources for c in containers(r)}
    return [f"{where}: {name} is {images.get(name)!r}, docker-compose.yml pins {pinned!r} (move them together)"
            for name, pinned in chain.items() if images.get(name) != pinned]


def secret_problems(root: Path) -> list[str]:
    """Every Secret anywhere under deploy/ must be a template: no value in data or stringData."""
    found = []
    for path in sorted((root / "deploy").rglob("*.y*ml")):
        for doc in _load_docs(path):
            if doc.get("kind") == "Secret":
                filled = [k for part in ("data", "stringData") for k, v in (doc.get(part) or {}).items() if v]
                if filled:
                    name = doc["metadata"]["name"]
                    found.append(f"{path.relative_to(root)}: Secret {name} holds values for {filled}")
    return found


def _hadolint(root: Path, dockerfile: Path) -> list[str]:
    binary = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(binary), "--no-color", str(dockerfile)], capture_output=True, text=True)
    return [f"hadolint {dockerfile.relative_to(root)}: {proc.stdout}{proc.stderr}"] if proc.returncode else []


def image_problems(root: Path, hadolint: bool = True) -> list[str]:
    """hadolint on deploy/k8s/images/*.Dockerfile; each COPY source exists and its own .dockerignore admits it."""
    found = []
    for dockerfile in sorted((root / K8S_DIR / "images").glob("*.Dockerfile")):
        found += _hadolint(root, dockerfile) if hadolint else []
        ignore = Path(f"{dockerfile}.dockerignore")
        lines = ignore.read_text().splitlines() if ignore.exists() else []
        admitted = {line[1:] for line in lines if line.startswith("!")}
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                found += [f"{dockerfile.relative_to(root)}: COPY {source}: missing, or not admitted by {ignore.name}"
                          for source in line.split()[1:-1] if not (root / source).exists() or source not in admitted]
    return found


def problems(root: Path = ROOT, *, hadolint: bool = True) -> list[str]:
    uids, chain = compose_pins(root)
    found = secret_problems(root) + image_problems(root, hadolint)
    for overlay in OVERLAYS:
        where = f"overlays/{overlay}"
        try:
            resources = render(root / K8S_DIR / "overlays" / overlay)
        except (RenderError, OSError, yaml.YAMLError) as exc:
            found.append(f"{where}: cannot render: {exc}")
            continue
        for resource in resources:
            found += schema_problems(resource, where)
            found += _pod_problems(f"{where}: {kn(resource)}", resource, uids)
        found += _signer_problems(where, resources)
        found += _inference_problems(where, resources)
        found += _burner_problems(where, resources)
        found += _chain_problems(where, resources, chain)
    for folder in ("secrets", "examples"):
        for path in sorted((root / K8S_DIR / folder).glob("*.yaml")):
            for doc in _load_docs(path):
                if not str(doc.get("apiVersion", "")).startswith(CRD_API_GROUPS):
                    found += schema_problems(doc, str(path.relative_to(root)))
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"k8s-check: {problem}")
    if found:
        return 1
    print(f"k8s-check: {', '.join(OVERLAYS)} render and validate against Kubernetes {KUBERNETES_VERSION}; rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
