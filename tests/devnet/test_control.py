"""The control API and the fixture, against a real ``python -m devnet`` process."""

from __future__ import annotations

import itertools
import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from tests.support.devnet_fixture import DevnetProcess

POLICY = "ab" * 28


def test_info_describes_network_and_genesis(devnet: DevnetProcess) -> None:
    info = devnet.info()
    assert info["network"] == "testnet"
    assert info["network_magic"] == 42
    assert info["ports"] == {"ogmios": devnet.ogmios_port, "kupo": devnet.kupo_port, "control": devnet.control_port}
    assert info["tip"]["height"] == 1  # the genesis distribution block
    keys = info["genesis"]["keys"]
    assert len(keys) == 3
    assert all(k["address"].startswith("addr_test1") and k["signing_key_cbor"].startswith("5820") for k in keys)
    assert info["protocol_parameters"]["min_fee_coefficient"] == 44
    assert info["protocol_parameters"]["min_fee_constant_lovelace"] == 155381


def test_fund_then_block_confirms(devnet: DevnetProcess) -> None:
    address = devnet.genesis_key(1)["address"]
    tx_id = devnet.fund(address, 7_000_000, {f"{POLICY}.{b'TOKEN'.hex()}": 42, POLICY: 3})
    assert len(tx_id) == 64
    assert devnet.info()["mempool"]["transactions"] == 1
    produced = devnet.blocks(1)
    assert produced["blocks"][0]["transaction_ids"] == [tx_id]
    assert produced["tip"]["height"] == 2
    assert devnet.info()["mempool"]["transactions"] == 0


def test_rollback_returns_transactions_to_mempool(devnet: DevnetProcess) -> None:
    tx_id = devnet.fund(devnet.genesis_key(0)["address"], 2_000_000)
    devnet.blocks(3)
    answer = devnet.rollback(3, drop_transactions=False)  # the devnet option: re-add the txs
    assert answer["tip"]["height"] == 1
    assert answer["mempool"]["transactions"] == 1
    assert devnet.blocks(1)["blocks"][0]["transaction_ids"] == [tx_id]
    dropped = devnet.rollback(1, drop_transactions=True)
    assert dropped["discarded_transaction_ids"] == [tx_id]
    assert dropped["mempool"]["transactions"] == 0


def _raw(dev: DevnetProcess, method: str, path: str, data: bytes | None) -> tuple[int, dict]:
    req = urllib.request.Request(dev.control_url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_bad_input_gets_clear_problems(devnet: DevnetProcess) -> None:
    cases = [
        ("POST", "/devnet/fund", b"{not json", 400, "invalid_json"),
        ("POST", "/devnet/fund", b"[1, 2]", 400, "invalid_json"),
        ("POST", "/devnet/fund", b'{"address": "addr_test1xyz", "lovelace": 5000000}', 400, "invalid_funding"),
        ("POST", "/devnet/fund", b'{"lovelace": 5000000}', 400, "missing_field"),
        ("POST", "/devnet/blocks", b'{"count": -1}', 400, "invalid_field"),
        ("POST", "/devnet/blocks", b'{"count": true}', 400, "invalid_field"),
        ("POST", "/devnet/blocks", b'{"count": 1, "fill": "lots"}', 400, "invalid_field"),
        ("POST", "/devnet/rollback", b'{"blocks": 99}', 400, "invalid_field"),
        ("POST", "/devnet/rollback", b'{"blocks": 0, "drop_transactions": "yes"}', 400, "invalid_field"),
        ("GET", "/devnet/nothing", None, 404, "not_found"),
        ("GET", "/devnet/fund", None, 405, "method_not_allowed"),
        ("POST", "/devnet/fund", b"x" * (200 * 1024), 413, "body_too_large"),
    ]
    for method, path, data, status, code in cases:
        got_status, body = _raw(devnet, method, path, data)
        assert (got_status, body["code"]) == (status, code), (path, data and data[:60], body)
        assert body["status"] == status and body["message"]
    address = devnet.genesis_key(0)["address"]
    too_little = devnet.request("POST", "/devnet/fund", {"address": address, "lovelace": 1})
    assert too_little[0] == 400 and "minimum" in too_little[1]["message"]
    bad_asset = devnet.request("POST", "/devnet/fund", {"address": address, "lovelace": 5_000_000,
                                                        "assets": {"nothex.00": 1}})
    assert bad_asset[0] == 400 and "policy" in bad_asset[1]["message"]
    assert devnet.info()["tip"]["height"] == 1  # nothing half-done


def test_truncated_request_does_not_kill_the_server(devnet: DevnetProcess) -> None:
    with socket.create_connection(("127.0.0.1", devnet.control_port), timeout=5) as sock:
        sock.sendall(b"POST /devnet/fund HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"addr")
    assert devnet.info()["network_magic"] == 42


def test_big_typical_run_fills_the_past(devnet_factory) -> None:  # type: ignore[no-untyped-def]
    dev = devnet_factory(block_time=0, extra_args=["--system-start-offset", "86400"])
    answer = dev.blocks(300, fill="typical")
    assert answer["produced"] == 300 and answer["tip"]["height"] == 301
    assert len(answer["blocks"]) == 100 and all(len(b["transaction_ids"]) == 4 for b in answer["blocks"])
    slots = [b["slot"] for b in answer["blocks"]]
    assert all(a < b for a, b in itertools.pairwise(slots))  # one apart unless the clock ticked
    info = dev.info()
    assert answer["tip"]["slot"] <= info["current_slot"] and info["mempool"]["transactions"] == 0
    assert dev.blocks(1, fill="typical")["blocks"][0]["slot"] >= answer["tip"]["slot"] + 1
    status, body = dev.request("POST", "/devnet/blocks", {"count": 1, "fill": "typical", "txs_per_block": 0})
    assert status == 400 and body["code"] == "invalid_field"


def test_block_timer_and_genesis_funds(devnet_factory) -> None:  # type: ignore[no-untyped-def]
    from devnet.genesis import derive_key

    operator = derive_key("operator", "custodial", 0).address
    dev = devnet_factory(block_time=0.2, extra_args=["--genesis-fund", f"{operator}=25000000"])
    info = dev.info()
    assert {"address": operator, "lovelace": 25_000_000} in info["genesis"]["initial_funds"]
    assert info["block_time_s"] == 0.2
    deadline = time.monotonic() + 60
    while dev.info()["tip"]["height"] < 4:  # blocks keep coming on their own
        assert time.monotonic() < deadline, "the block timer produced no blocks"
        time.sleep(0.05)


def test_bad_flags_are_config_errors() -> None:
    from common.settings import ConfigError
    from devnet.config import parse_args

    for flags, needle in [
        (["--block-time", "-1"], "DEVNET_BLOCK_TIME"),
        (["--genesis-fund", "nonsense"], "DEVNET_GENESIS_FUND"),
        (["--protocol-param", "bogus=1"], "DEVNET_PROTOCOL_PARAM"),
        (["--ogmios-port", "abc"], "DEVNET_OGMIOS_PORT"),
        (["--system-start", "yesterday"], "DEVNET_SYSTEM_START"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            parse_args(flags, env={})


def test_bad_flags_exit_2_with_a_clear_message() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "devnet", "--block-time", "-1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "DEVNET_BLOCK_TIME" in done.stderr and "Traceback" not in done.stderr
