"""The wallet path with every part a real process on loopback: devnet, indexer, inference (the built-in
CPPN model on CPU) and ``python -m gateway``. The wallet is pycardano keys; it signs and either lets the
server submit or submits to the node itself, as the seed's snippet does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from gateway.web3.cborspan import array_items
from tests.gateway.web3.conftest import ASSET, MIN_CONFIRMATIONS, ChainStack
from tests.gateway.web3.wallet import TestWallet
from tests.support.gateway_fixture import GatewayProcess
from tests.support.inference_fixture import InferenceProcess

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def gateway_process(chain_stack: ChainStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("web3-processes")
    with InferenceProcess(data_dir=tmp / "inference") as inference:
        gateway = GatewayProcess(state_dir=tmp / "gateway", env={
            "GATEWAY_INFERENCE_TARGET": inference.grpc_target,
            "GATEWAY_INDEXER_TARGET": chain_stack.indexer.grpc_target,
            "GATEWAY_WEB3_PAY_TO_ADDRESS": chain_stack.treasury.bech32, "GATEWAY_ASSET_POLICY_ID": ASSET.policy_id,
            "GATEWAY_ASSET_NAME_HEX": ASSET.asset_name, "GATEWAY_WEB3_MIN_CONFIRMATIONS": str(MIN_CONFIRMATIONS),
        })
        with gateway:
            yield gateway


def _blocks_when(condition: Callable[[], bool], stack: ChainStack, count: int) -> threading.Thread:
    def produce() -> None:
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        stack.devnet.blocks(count)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    return thread


def _image(gateway: GatewayProcess, url: str) -> bytes:
    status, _headers, body = gateway.request("GET", url.removeprefix(gateway.url))
    assert status == 200, body[:200]
    return body


def test_the_seeds_two_calls_with_real_images(gateway_process: GatewayProcess, chain_stack: ChainStack) -> None:
    wallet = TestWallet()
    chain_stack.fund(wallet)
    status, body = gateway_process.json("POST", "/api/generate-art",
                                        json_body={"prompt": "a quiet harbour", "address": wallet.bech32})
    assert status == 200, body
    blueprint = body["transactionBlueprint"]
    tx_body, _, valid, aux = array_items(bytes.fromhex(blueprint["tx_cbor"]))
    signed = b"\x84" + tx_body + bytes.fromhex(wallet.sign_tx(blueprint["tx_id"])) + valid + aux
    assert "result" in chain_stack.submit_directly(signed)
    producer = _blocks_when(lambda: True, chain_stack, MIN_CONFIRMATIONS)  # while confirm-generation waits
    status, body = gateway_process.json("POST", "/api/confirm-generation",
                                        json_body={"txId": blueprint["tx_id"], "prompt": "a quiet harbour"})
    producer.join(10)
    assert status == 200, body
    (url,) = body["imageUrls"]
    assert _image(gateway_process, url).startswith(PNG_MAGIC)


def test_submit_through_server_with_real_images(gateway_process: GatewayProcess, chain_stack: ChainStack) -> None:
    wallet = TestWallet()
    chain_stack.fund(wallet)
    status, quote = gateway_process.json("POST", "/v1/web3/quotes",
                                         json_body={"prompt": "a paper boat", "address": wallet.bech32})
    assert status == 201, quote
    status, body = gateway_process.json("POST", f"/v1/web3/quotes/{quote['quote_id']}/submit",
                                        json_body={"witness_set": wallet.sign_tx(quote["tx_id"])})
    assert status == 202, body
    chain_stack.devnet.blocks(MIN_CONFIRMATIONS - 1)
    time.sleep(1.0)  # ample time for a wrong early release to show; the depth is not reached yet
    status, view = gateway_process.json("GET", f"/v1/web3/quotes/{quote['quote_id']}")
    assert view["state"] == "waiting" and view["image_urls"] is None, view
    chain_stack.devnet.blocks(1)
    deadline = time.monotonic() + 60
    while view["state"] not in ("delivered", "failed", "expired"):
        assert time.monotonic() < deadline, view
        time.sleep(0.1)
        status, view = gateway_process.json("GET", f"/v1/web3/quotes/{quote['quote_id']}")
    assert view["state"] == "delivered", view
    assert _image(gateway_process, view["image_urls"][0]).startswith(PNG_MAGIC)


def test_kill_9_while_waiting_for_depth_still_delivers(gateway_process: GatewayProcess,
                                                       chain_stack: ChainStack) -> None:
    wallet = TestWallet()
    chain_stack.fund(wallet)
    status, quote = gateway_process.json("POST", "/v1/web3/quotes",
                                         json_body={"prompt": "a lantern", "address": wallet.bech32})
    assert status == 201, quote
    status, body = gateway_process.json("POST", f"/v1/web3/quotes/{quote['quote_id']}/submit",
                                        json_body={"witness_set": wallet.sign_tx(quote["tx_id"])})
    assert status == 202 and body["state"] == "waiting", body
    gateway_process.kill()
    chain_stack.devnet.blocks(MIN_CONFIRMATIONS)  # the payment reaches its depth while the gateway is down
    gateway_process.restart()
    deadline = time.monotonic() + 60
    view: dict[str, object] = {"state": "waiting"}
    while view["state"] not in ("delivered", "failed", "expired"):
        assert time.monotonic() < deadline, view
        time.sleep(0.1)
        status, view = gateway_process.json("GET", f"/v1/web3/quotes/{quote['quote_id']}")
    assert view["state"] == "delivered", view
    urls = view["image_urls"]
    assert isinstance(urls, list) and _image(gateway_process, urls[0]).startswith(PNG_MAGIC)
