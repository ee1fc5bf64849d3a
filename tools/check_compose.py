"""Static validation of the compose bundle (no docker engine needed).

- docker-compose.yml validates against the Compose specification schema (shared/reference/compose);
- every build's Dockerfile exists and passes hadolint;
- every bind-mounted path that the repo provides exists, and every long-running service has a healthcheck
  (in compose or in its Dockerfile).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_CANDIDATES = [
    ROOT / "tools" / "compose-spec.json",
    ROOT.parent / "shared" / "reference" / "compose" / "compose-spec.json",
]
REPO_MOUNTS = ("./cardano-node-config", "./docker")


def load_schema() -> dict[str, Any]:
    for path in SCHEMA_CANDIDATES:
        if path.exists():
            return json.loads(path.read_text())
    raise FileNotFoundError("compose-spec.json not found in tools/ or ../shared/reference/compose/")


def problems(compose_path: Path = ROOT / "docker-compose.yml") -> list[str]:
    doc = yaml.safe_load(compose_path.read_text())
    found = [f"schema: {'/'.join(map(str, e.absolute_path))}: {e.message}"
             for e in jsonschema.Draft7Validator(load_schema()).iter_errors(doc)]
    dockerfiles: set[Path] = set()
    for name, svc in doc.get("services", {}).items():
        build = svc.get("build")
        has_health = "healthcheck" in svc
        if build:
            dockerfile = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            if not dockerfile.exists():
                found.append(f"{name}: Dockerfile {dockerfile.relative_to(ROOT)} does not exist")
                continue
            dockerfiles.add(dockerfile)
            has_health = has_health or "HEALTHCHECK" in dockerfile.read_text()
        if not has_health and "monitoring" not in svc.get("profiles", []):
            found.append(f"{name}: no healthcheck in compose or its image")
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith(REPO_MOUNTS):
                base = source.split("${", 1)[0].rstrip("/")
                if not (ROOT / base).exists():
                    found.append(f"{name}: mounted path {source} does not exist in the repo")
    hadolint = Path(sys.executable).parent / "hadolint"
    for dockerfile in sorted(dockerfiles):
        proc = subprocess.run([str(hadolint), "--no-color", str(dockerfile)], capture_output=True, text=True)
        if proc.returncode:
            found.append(f"hadolint {dockerfile.relative_to(ROOT)}:\n{proc.stdout}{proc.stderr}")
    return found


if __name__ == "__main__":
    issues = problems()
    if issues:
        print("compose bundle problems:\n  " + "\n  ".join(issues), file=sys.stderr)
        raise SystemExit(1)
    print("docker-compose.yml and Dockerfiles are valid")
