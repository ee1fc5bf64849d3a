"""What tools/check_compose.py reads: compose files with Compose's variable interpolation, Dockerfiles
(final stage, ARG values, the directories it creates and their owners), and .env.example."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "COMPOSE_FILES",
    "OVERRIDES",
    "Bundle",
    "Dockerfile",
    "active",
    "environment",
    "gpu_services",
    "ignored",
    "interpolate",
    "load_schema",
    "load_yaml",
    "merge",
    "mounts",
    "node_version",
    "published",
    "seconds",
    "sha256",
    "write_paths",
]

SCHEMA_CANDIDATES = ("tools/compose-spec.json", "../shared/reference/compose/compose-spec.json")
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.spo.yml", "docker-compose.spo-remote.yml")
OVERRIDES = COMPOSE_FILES[1:]
_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_]\w*))")


class Override(list):  # type: ignore[type-arg]
    """A sequence tagged !override: replaces the base file's value instead of being appended to it."""


class OverrideMap(dict):  # type: ignore[type-arg]
    """A mapping tagged !override."""


class _Loader(yaml.SafeLoader):
    pass


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    if isinstance(node, yaml.MappingNode):
        return OverrideMap(loader.construct_mapping(node, deep=True))
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("!override", _override)
_Loader.add_constructor("!reset", lambda loader, node: None)


def load_yaml(text: str) -> Any:
    """YAML with Compose's !override and !reset tags (Compose v2.24.4+)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader with two more tags)


_KEYED_SEQUENCES = {"volumes": lambda v: str(v).split(":")[1] if ":" in str(v) else str(v),
                    "ports": str, "secrets": str}
_REPLACED = {"command", "entrypoint"}


def merge(base: Any, over: Any, key: str = "") -> Any:
    """Compose's merge of an override file onto a base: mappings merge, sequences append (volumes, ports and
    secrets unique by target), command/entrypoint and !override values replace, !reset (None) removes."""
    if isinstance(over, (Override, OverrideMap)) or key in _REPLACED:
        return list(over) if isinstance(over, list) else (dict(over) if isinstance(over, dict) else over)
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(base[k], v, k) if k in base else v
        return out
    if isinstance(base, list) and isinstance(over, list):
        if key in _KEYED_SEQUENCES:
            ident = _KEYED_SEQUENCES[key]
            replaced = {ident(v) for v in over}
            return [v for v in base if ident(v) not in replaced] + list(over)
        return base + [v for v in over if v not in base]
    return over


def active(services: dict[str, dict[str, Any]], profiles: set[str]) -> dict[str, dict[str, Any]]:
    """The services `docker compose up` starts with these profiles enabled."""
    return {n: s for n, s in services.items() if not s.get("profiles") or set(s["profiles"]) & profiles}


def interpolate(node: Any, env: dict[str, str], used: set[str], missing: set[str]) -> Any:
    """Compose's variable interpolation over every string value; ``:?``/``?`` misses go to ``missing``."""
    if isinstance(node, dict):
        mapping = {k: interpolate(v, env, used, missing) for k, v in node.items()}
        return OverrideMap(mapping) if isinstance(node, OverrideMap) else mapping
    if isinstance(node, list):
        items = [interpolate(v, env, used, missing) for v in node]
        return Override(items) if isinstance(node, Override) else items
    if not isinstance(node, str):
        return node

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name, op, arg = m.group(2) or m.group(5), m.group(3), m.group(4) or ""
        used.add(name)
        value = env.get(name)
        absent = value is None or (value == "" and bool(op) and op.startswith(":"))
        if absent and op in (":-", "-"):
            return arg
        if absent and op in (":?", "?"):
            missing.add(name)
        return value or ""
    return _VAR.sub(sub, node)


@dataclass
class Dockerfile:
    path: Path
    args: dict[str, str] = field(default_factory=dict)
    final: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments) of the last stage
    every: list[tuple[str, str]] = field(default_factory=list)  # of every stage

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        text = re.sub(r"\\\n", " ", path.read_text())
        doc = cls(path)
        for line in text.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            instr, _, rest = line.strip().partition(" ")
            instr = instr.upper()
            if instr == "FROM":
                doc.final = []
            elif instr == "ARG":
                name, _, default = rest.strip().partition("=")
                doc.args.setdefault(name, default)
            doc.final.append((instr, rest.strip()))
            doc.every.append((instr, rest.strip()))
        return doc

    def values(self, build_args: dict[str, Any]) -> dict[str, str]:
        return {**self.args, **{k: str(v) for k, v in build_args.items()}}

    def lines(self, instr: str, build_args: dict[str, Any]) -> list[str]:
        values = self.values(build_args)
        return [re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), rest)
                for name, rest in self.final if name == instr]

    def user(self, build_args: dict[str, Any]) -> str:
        users = self.lines("USER", build_args)
        return users[-1].split(":")[0] if users else "0"

    def created_dirs(self, build_args: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
        """Directories the final stage creates: path → (owner, group, mode)."""
        made: dict[str, tuple[str, str, str]] = {}
        for run in self.lines("RUN", build_args):
            for command in re.split(r"&&|;", run):
                words = shlex.split(command)
                if words[:1] == ["install"] and "-d" in words:
                    opts = {words[i]: words[i + 1] for i in range(len(words) - 1) if words[i] in ("-o", "-g", "-m")}
                    skip = {i + 1 for i, w in enumerate(words) if w in ("-o", "-g", "-m")}
                    for i, word in enumerate(words[1:], 1):
                        if not word.startswith("-") and i not in skip:
                            made[word] = (opts.get("-o", "0"), opts.get("-g", "0"), opts.get("-m", "0755"))
                elif words[:1] == ["useradd"] and "--create-home" in words and "--home-dir" in words:
                    uid = words[words.index("--uid") + 1] if "--uid" in words else "?"
                    made[words[words.index("--home-dir") + 1]] = (uid, uid, "0700")
        return made


@dataclass
class Bundle:
    root: Path
    raw: dict[str, dict[str, Any]]  # compose file → document as written
    docs: dict[str, dict[str, Any]]  # compose file → interpolated with .env.example's values
    used: dict[str, set[str]]  # compose file → variables it references
    env_example: dict[str, str]

    @classmethod
    def load(cls, root: Path) -> Bundle:
        example = root / ".env.example"
        env = dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", example.read_text(), re.M)) if example.exists() else {}
        raw, docs, used = {}, {}, {}
        for name in COMPOSE_FILES:
            if (root / name).exists():
                raw[name] = load_yaml((root / name).read_text())
                used[name] = set()
                docs[name] = interpolate(raw[name], env, used[name], set())
        return cls(root, raw, docs, used, env)

    def services(self, name: str = "docker-compose.yml") -> dict[str, dict[str, Any]]:
        return self.docs.get(name, {}).get("services", {})

    def merged(self, override: str) -> dict[str, Any]:
        """docker-compose.yml with ``override`` on top (both interpolated with .env.example's values)."""
        return dict(merge(self.docs.get("docker-compose.yml", {}), self.docs.get(override, {})))

    def dockerfile(self, svc: dict[str, Any]) -> Dockerfile | None:
        build = svc.get("build")
        if not isinstance(build, dict):
            return None
        path = self.root / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        return Dockerfile.parse(path) if path.exists() else None


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def mounts(svc: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(source, target, read_only) of every volume entry."""
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict):
            yield str(volume.get("source", "")), str(volume["target"]), bool(volume.get("read_only"))
        else:
            parts = str(volume).split(":")
            yield parts[0], parts[1] if len(parts) > 1 else parts[0], "ro" in parts[2:]


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|us|h|m|s)", str(duration)))




def load_schema(root: Path) -> dict[str, Any]:
    for rel in SCHEMA_CANDIDATES:
        if (root / rel).exists():
            return dict(json.loads((root / rel).read_text()))
    raise FileNotFoundError("compose-spec.json not found in tools/ or ../shared/reference/compose/")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_paths(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(variable, directory) of what a service writes, from its settings."""
    for var, value in env.items():
        if var.endswith("_DATA_DIR") and value.startswith("/"):
            yield var, value
        elif var.endswith("_DB_PATH") and value.startswith("/"):
            yield var, str(Path(value).parent)
        elif var.endswith("_LISTEN") and value.startswith("unix:"):
            yield var, str(Path(value.removeprefix("unix:").removeprefix("//")).parent)

def published(svc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(host_ip, entry) of every published port; host_ip '' means every interface."""
    for port in svc.get("ports", []):
        if isinstance(port, dict):
            yield str(port.get("host_ip", "")), json.dumps(port)
        else:
            parts = str(port).rsplit(":", 2)
            yield (parts[0] if len(parts) == 3 else ""), str(port)

def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (last matching pattern wins)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if re.fullmatch(regex + "(/.*)?", path):
            ignored = not negate
    return ignored

def gpu_services(b: Bundle) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, svc in b.services().items():
        devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
        if any(d.get("driver") == "nvidia" or "gpu" in d.get("capabilities", []) for d in devices):
            yield name, svc

def node_version(image: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", image.rsplit(":", 1)[-1])[:3])
