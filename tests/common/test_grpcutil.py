import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.grpcutil import ServingStatus, TlsFiles, call_idempotent, open_channel, serve
from tests.support.certs import make_certs

SERVICE = "creatorpass.v1.Demo"


async def _check(channel, service=""):
    stub = health_pb2_grpc.HealthStub(channel)
    resp = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return resp.status


async def test_health_over_tcp_and_per_service_status():
    server = await serve([], "127.0.0.1:0", service_names=[SERVICE])
    try:
        assert server.port > 0
        async with open_channel(server.target) as channel:
            assert await _check(channel) == ServingStatus.SERVING
            assert await _check(channel, SERVICE) == ServingStatus.SERVING
            await server.health.set(SERVICE, ServingStatus.NOT_SERVING)
            assert await _check(channel, SERVICE) == ServingStatus.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _check(channel, "creatorpass.v1.Unknown")
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(0)


async def test_health_over_unix_socket(tmp_path):
    path = tmp_path / "sock" / "demo.sock"
    server = await serve([], f"unix:{path}", service_names=[SERVICE])
    try:
        assert path.exists()
        assert oct(path.stat().st_mode & 0o777) == "0o660"
        async with open_channel(f"unix:{path}") as channel:
            assert await _check(channel, SERVICE) == ServingStatus.SERVING
    finally:
        await server.stop(0)
    assert not path.exists()


async def test_graceful_stop_marks_not_serving_first(tmp_path):
    server = await serve([], "127.0.0.1:0", service_names=[SERVICE])
    channel = open_channel(server.target)
    assert await _check(channel) == ServingStatus.SERVING
    await server.health.enter_graceful_shutdown()
    assert await _check(channel) == ServingStatus.NOT_SERVING
    await server.stop(0)
    await channel.close()


async def test_mtls_accepts_a_client_cert_and_refuses_without_one(tmp_path):
    certs = make_certs(tmp_path)
    server_tls = TlsFiles(cert=certs.server_cert, key=certs.server_key, ca=certs.ca)
    server = await serve([], "127.0.0.1:0", service_names=[SERVICE], tls=server_tls)
    target = f"localhost:{server.port}"
    try:
        good = TlsFiles(cert=certs.client_cert, key=certs.client_key, ca=certs.ca)
        async with open_channel(target, good) as channel:
            assert await _check(channel) == ServingStatus.SERVING

        no_client_cert = TlsFiles(cert=None, key=None, ca=certs.ca)
        async with open_channel(target, no_client_cert) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _check(channel)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        async with open_channel(target) as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _check(plaintext)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


async def test_mtls_refuses_a_client_cert_from_another_ca(tmp_path):
    certs = make_certs(tmp_path / "a")
    stranger = make_certs(tmp_path / "b")
    server = await serve([], "127.0.0.1:0", service_names=[SERVICE],
                         tls=TlsFiles(cert=certs.server_cert, key=certs.server_key, ca=certs.ca))
    try:
        forged = TlsFiles(cert=stranger.client_cert, key=stranger.client_key, ca=certs.ca)
        async with open_channel(f"localhost:{server.port}", forged) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _check(channel)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


async def test_call_idempotent_retries_unavailable_then_gives_up():
    calls = []

    class FakeUnavailable(grpc.aio.AioRpcError):
        def __init__(self):
            super().__init__(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")

    async def flaky(request, timeout):
        calls.append(timeout)
        if len(calls) < 3:
            raise FakeUnavailable()
        return "ok"

    assert await call_idempotent(flaky, object(), timeout_s=1.5, attempts=3, backoff_s=0.001) == "ok"
    assert calls == [1.5, 1.5, 1.5]

    calls.clear()

    async def always_down(request, timeout):
        calls.append(timeout)
        raise FakeUnavailable()

    with pytest.raises(grpc.aio.AioRpcError):
        await call_idempotent(always_down, object(), attempts=2, backoff_s=0.001)
    assert len(calls) == 2


async def test_call_idempotent_does_not_retry_other_errors():
    calls = []

    async def invalid(request, timeout):
        calls.append(1)
        raise grpc.aio.AioRpcError(grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), grpc.aio.Metadata(), "bad")

    with pytest.raises(grpc.aio.AioRpcError):
        await call_idempotent(invalid, object(), attempts=5, backoff_s=0.001)
    assert calls == [1]


# --- unix sockets: umask before bind, dedicated directories, never another's path ------------------------

async def test_unix_socket_is_created_with_its_mode_and_a_dedicated_directory(tmp_path):
    import os
    import stat

    path = tmp_path / "run" / "svc.sock"
    old = os.umask(0)  # the most permissive umask: the socket must still never be wider than asked
    try:
        server = await serve([], f"unix:{path}", service_names=[SERVICE], unix_mode=0o600, unix_dir_mode=0o750)
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
    finally:
        await server.stop(0)


async def test_a_live_socket_or_a_foreign_file_is_never_replaced(tmp_path):
    import os
    import socket

    from common.grpcutil import UnixSocketError

    live = tmp_path / "live.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(live))
    listener.listen(1)
    try:
        with pytest.raises(UnixSocketError, match="another server is listening"):
            await serve([], f"unix:{live}", service_names=[SERVICE])
    finally:
        listener.close()
    assert live.exists()
    await (await serve([], f"unix:{live}", service_names=[SERVICE])).stop(0)  # a stale one of ours is replaced
    plain = tmp_path / "plain.sock"
    plain.write_text("data")
    with pytest.raises(UnixSocketError, match="not a socket"):
        await serve([], f"unix:{plain}", service_names=[SERVICE])
    assert plain.read_text() == "data"
    if os.geteuid() == 0:  # as root the test can make a path belong to someone else
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        os.chown(foreign, 54321, 54321)
        with pytest.raises(UnixSocketError, match="belongs to uid 54321"):
            await serve([], f"unix:{foreign / 's.sock'}", service_names=[SERVICE], unix_dir_mode=0o750)


async def test_stop_removes_only_the_socket_it_bound(tmp_path):
    import os

    path = tmp_path / "svc.sock"
    server = await serve([], f"unix:{path}", service_names=[SERVICE])
    os.unlink(path)
    path.write_text("someone else's now")  # replaced while the server ran
    await server.stop(0)
    assert path.read_text() == "someone else's now"
