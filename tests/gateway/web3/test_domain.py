"""The web3 domain's configuration: off when unset, a clear ConfigError for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.settings import ConfigError
from gateway.settings import GatewaySettings
from gateway.web3.domain import web3_config
from tests.gateway.web3.conftest import ASSET
from tests.gateway.web3.wallet import TestWallet


def _settings(tmp_path: Path, **kw: object) -> GatewaySettings:
    base: dict[str, object] = {"web3_pay_to_address": TestWallet().bech32, "asset_policy_id": ASSET.policy_id,
                               "asset_name_hex": ASSET.asset_name}
    return GatewaySettings(state_dir=tmp_path, **{**base, **kw})  # type: ignore[arg-type]


def test_off_when_no_pay_to_address(tmp_path: Path) -> None:
    assert web3_config(GatewaySettings(state_dir=tmp_path)) is None


def test_valid_config(tmp_path: Path) -> None:
    config = web3_config(_settings(tmp_path, web3_min_confirmations=5))
    assert config is not None and config.asset == ASSET and config.min_confirmations == 5 and config.network_id == 0


@pytest.mark.parametrize(("overrides", "variable"), [
    ({"web3_pay_to_address": "addr1qxyz"}, "GATEWAY_WEB3_PAY_TO_ADDRESS"),
    ({"network": "mainnet"}, "GATEWAY_WEB3_PAY_TO_ADDRESS"),  # a testnet address on mainnet
    ({"asset_policy_id": ""}, "GATEWAY_ASSET_POLICY_ID"),
    ({"web3_price": 0}, "GATEWAY_WEB3_PRICE"),
    ({"web3_min_confirmations": 0}, "GATEWAY_WEB3_MIN_CONFIRMATIONS"),
    ({"web3_quote_ttl_s": 10}, "GATEWAY_WEB3_QUOTE_TTL_S"),
    ({"web3_challenge_ttl_s": 5}, "GATEWAY_WEB3_CHALLENGE_TTL_S"),
])
def test_bad_values_name_their_variable(tmp_path: Path, overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        web3_config(_settings(tmp_path, **overrides))
