"""Typed settings read from the environment, with secrets from ``*_FILE`` paths.

A service declares a frozen dataclass deriving from :class:`BaseSettings`; every field is declared with
:func:`setting` (a documented default) or :func:`secret_field` (read from ``PREFIX_NAME`` or, preferably,
from the file named by ``PREFIX_NAME_FILE``). ``load_settings`` converts and validates every value and
raises :class:`ConfigError` naming the variable; ``run_main`` turns that into a clear message and exit 2.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from common.errors import CommonError

__all__ = [
    "BaseSettings",
    "ConfigError",
    "describe_settings",
    "load_settings",
    "run_main",
    "secret_field",
    "setting",
    "settings_table",
]

_S = TypeVar("_S", bound="BaseSettings")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
MAX_SECRET_BYTES = 64 * 1024


class ConfigError(CommonError):
    """Invalid configuration; the message names the environment variable at fault."""


@dataclass(frozen=True)
class BaseSettings:
    """Base of every service's settings. Subclasses set ``env_prefix``."""

    env_prefix: ClassVar[str] = ""

    def validate(self) -> None:
        """Cross-field checks; raise ConfigError. Subclasses extend."""


def setting(default: Any, doc: str, *, choices: tuple[str, ...] | None = None) -> Any:
    """A documented setting with a default."""
    return field(default=default, metadata={"doc": doc, "choices": choices, "secret": False})


def secret_field(doc: str, *, required: bool = False) -> Any:
    """A secret: read from ``PREFIX_NAME_FILE`` (a path) or ``PREFIX_NAME``; never logged."""
    return field(default="", repr=False, metadata={"doc": doc, "secret": True, "required": required})


def _convert(name: str, raw: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if raw == "":
            return None
        return _convert(name, raw, inner[0])
    if origin is tuple:
        return tuple(_convert(name, part.strip(), args[0]) for part in raw.split(",") if part.strip())
    if annotation is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{name}: expected a boolean (true/false), got {raw!r}")
    if annotation is int:
        try:
            return int(raw.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if annotation is float:
        try:
            return float(raw.strip())
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if annotation is Path:
        return Path(raw).expanduser()
    if annotation is str:
        return raw
    raise ConfigError(f"{name}: unsupported setting type {annotation!r}")


def _unreadable_secret(path: str) -> str:
    """Why this process may not read ``path``, and the fix: a bind-mounted secret keeps its host owner and mode."""
    uid, gid = os.getuid(), os.getgid()
    try:
        st = os.stat(path)
        owner = f"owned by uid {st.st_uid} gid {st.st_gid} with mode {st.st_mode & 0o777:04o}"
    except OSError as exc:
        owner = f"not even stat-able ({exc.strerror})"
    return (f"cannot read secret file {path!r}: permission denied; this process runs as uid {uid} gid {gid} and "
            f"the file is {owner}. On the host, make it readable by uid {uid}: "
            f"chown {uid}:{gid} FILE && chmod 0400 FILE (or give it group {gid} and mode 0440)")


def _read_secret(var: str, env: Mapping[str, str]) -> str | None:
    path = env.get(f"{var}_FILE")
    if path:
        try:
            data = Path(path).read_bytes()
        except PermissionError:
            raise ConfigError(f"{var}_FILE: {_unreadable_secret(path)}") from None
        except OSError as exc:
            raise ConfigError(f"{var}_FILE: cannot read secret file {path!r}: {exc.strerror}") from None
        if len(data) > MAX_SECRET_BYTES:
            raise ConfigError(f"{var}_FILE: secret file {path!r} is larger than {MAX_SECRET_BYTES} bytes")
        return data.decode("utf-8").strip()
    return env.get(var)


def load_settings(cls: type[_S], env: Mapping[str, str] | None = None) -> _S:
    """Build ``cls`` from the environment; raise ConfigError on any bad value."""
    env = os.environ if env is None else env
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        var = f"{cls.env_prefix}{f.name.upper()}"
        if f.metadata.get("secret"):
            secret = _read_secret(var, env)
            if not secret and f.metadata.get("required"):
                raise ConfigError(f"{var}_FILE: required secret is missing (set it to a file holding the secret)")
            values[f.name] = secret or ""
            continue
        raw = env.get(var)
        if raw is None:
            continue
        value = _convert(var, raw, hints[f.name])
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{var}: must be one of {', '.join(choices)}; got {raw!r}")
        values[f.name] = value
    settings = cls(**values)
    settings.validate()
    return settings


def describe_settings(cls: type[BaseSettings]) -> list[tuple[str, str, str]]:
    """(variable, default, doc) for every setting, for ``--help`` output and docs."""
    rows = []
    for f in dataclasses.fields(cls):
        var = f"{cls.env_prefix}{f.name.upper()}"
        if f.metadata.get("secret"):
            rows.append((f"{var}_FILE", "(secret)", str(f.metadata.get("doc", ""))))
            continue
        default = "" if f.default is MISSING else repr(f.default)
        rows.append((var, default, str(f.metadata.get("doc", ""))))
    return rows


def settings_table(cls: type[BaseSettings]) -> str:
    """Every variable with its default and doc, aligned, for a service's ``settings`` subcommand."""
    rows = describe_settings(cls)
    var_w = max(len(r[0]) for r in rows)
    default_w = max(len(r[1]) for r in rows)
    return "\n".join(f"{var:{var_w}}  {default:{default_w}}  {doc}".rstrip() for var, default, doc in rows)


def run_main(main: Callable[[], int | None]) -> typing.NoReturn:
    """Run a service entry point; a ConfigError becomes a one-line message on stderr and exit code 2."""
    try:
        code = main()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    raise SystemExit(code or 0)
