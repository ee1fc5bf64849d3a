"""Each service's extra installs every third-party module the service imports (one image per service)."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"common", "devnet", "indexer", "signer", "inference", "gateway"}
BASE_EXTRA = "__base__"


def _requirement_names(reqs: list[str], extras: dict[str, list[str]]) -> set[str]:
    names: set[str] = set()
    for req in reqs:
        match = re.match(r"creatorpass\[([^\]]+)\]", req)
        if match:
            for extra in match.group(1).split(","):
                names |= _requirement_names(extras[extra.strip()], extras)
            continue
        names.add(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _imports(package: Path) -> set[str]:
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"}


@pytest.mark.parametrize("service", ["common", "devnet", "indexer", "signer", "inference"])
def test_extra_covers_the_service_imports(service):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    allowed = _requirement_names(project["dependencies"], extras)
    if service != "common":
        allowed |= _requirement_names(extras[service], extras)
    dists = packages_distributions()
    missing = {}
    for module in sorted(_imports(ROOT / service)):
        providers = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        if not providers & allowed:
            missing[module] = sorted(providers) or ["(not installed)"]
    assert missing == {}, f"{service} imports modules its extra does not install: {missing}"
