"""The compose bundle is validated statically: no docker engine runs here or in CI."""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from check_compose import problems  # noqa: E402


def test_bundle_is_valid():
    assert problems() == []


def test_schema_violations_and_missing_dockerfiles_are_reported(tmp_path):
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    doc["services"]["indexer"]["restart"] = ["not", "a", "string"]
    doc["services"]["signer"]["build"]["dockerfile"] = "docker/missing.Dockerfile"
    del doc["services"]["ogmios"]["healthcheck"]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(doc))
    found = problems(broken)
    assert any(p.startswith("schema: services/indexer/restart") for p in found), found
    assert "signer: Dockerfile docker/missing.Dockerfile does not exist" in found
    assert "ogmios: no healthcheck in compose or its image" in found
