"""Signer test fixtures: key stores of both kinds, provisioned in a short temporary directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.signer.helpers import Provisioned, provision, short_tmp
from tests.support.softhsm import SoftHsm, softhsm  # noqa: F401  (fixture)

KEY_STORES = ["file", pytest.param("pkcs11", marks=pytest.mark.hsm)]


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = short_tmp()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=KEY_STORES)
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def provisioner(store: str, workdir: Path, request: pytest.FixtureRequest) -> Callable[..., Provisioned]:
    """``provisioner(mode="mint", **kw)`` → keys in the parametrized store, under ``workdir``."""
    hsm: SoftHsm | None = request.getfixturevalue("softhsm") if store == "pkcs11" else None

    def make(mode: str = "mint", **kwargs: object) -> Provisioned:
        return provision(store, workdir, mode, hsm, **kwargs)  # type: ignore[arg-type]

    return make
