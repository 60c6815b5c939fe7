"""The gateway's gRPC door: one instance per port, TLS under the federation CA (mutual TLS
when required), plaintext only where the settings allow it, and demo ports that move
with the base port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from credit.errors import InvalidInput
from credit.regions import Region
from federation.tls import init_ca, init_federation, issue
from gateway.demo import seed_demo_accounts
from gateway.server import RunningGateway, start_gateway
from gateway.settings import GatewaySettings
from jjj.cli import build_parser, demo_ports
from protos.credit.v1 import gateway_pb2 as gpb
from protos.credit.v1 import gateway_pb2_grpc

StartGateway = Callable[..., Awaitable[RunningGateway]]


def _settings(tmp_path: Path, name: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "grpc_listen": "127.0.0.1:0",
        "db_url": f"sqlite:///{tmp_path / name}.db",
        "keys_dir": str(tmp_path / f"keys-{name}"),
        **overrides,
    }
    return GatewaySettings.from_env({}, **values)


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    init_federation(directory)
    return directory


@pytest.fixture
async def start_tls_gateway(tmp_path: Path, certs: Path) -> AsyncIterator[StartGateway]:
    """A builder: a gateway holding the federation's gateway certificate (no nodes: the
    door is what is tested), with the demo accounts."""
    started: list[RunningGateway] = []

    async def start(**overrides: Any) -> RunningGateway:
        settings = _settings(
            tmp_path,
            f"gateway-{len(started)}",
            tls_cert=str(certs / "gateway.pem"),
            tls_key=str(certs / "gateway.key"),
            tls_ca=str(certs / "ca.pem"),
            **overrides,
        )
        running = await start_gateway(settings)
        started.append(running)
        seed_demo_accounts(running.registry)
        return running

    yield start
    for running in started:
        await running.stop()


def _tls(certs: Path, member: str | None = None, *, ca: Path | None = None) -> grpc.ChannelCredentials:
    """Trust in the CA (the federation's unless ``ca``), with ``member``'s certificate when given."""
    root = (ca or certs / "ca.pem").read_bytes()
    if member is None:
        return grpc.ssl_channel_credentials(root_certificates=root)
    return grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=(certs / f"{member}.key").read_bytes(),
        certificate_chain=(certs / f"{member}.pem").read_bytes(),
    )


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return int(reply.status)


async def _refused(channel: grpc.aio.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _health(channel)
    code: grpc.StatusCode = caught.value.code()
    return code


# --- one gateway per port -------------------------------------------------------------


async def test_a_second_gateway_on_the_same_grpc_port_fails_to_start(gateway: Any, tmp_path: Path) -> None:
    _, first, _ = gateway
    second = _settings(tmp_path, "second", grpc_listen=first.grpc_address, nodes=first.settings.nodes)
    with pytest.raises(RuntimeError, match=f"cannot listen on {first.grpc_address} for gRPC"):
        await start_gateway(second)
    # The first one keeps every call.
    async with grpc.aio.insecure_channel(first.grpc_address) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_the_grpc_port_is_not_shared_with_a_server_that_asks_for_sharing(gateway: Any, tmp_path: Path) -> None:
    # grpc's own default is SO_REUSEPORT; the gateway does not take part in it, in either order.
    _, first, _ = gateway
    intruder = grpc.aio.server()
    with pytest.raises(RuntimeError):
        intruder.add_insecure_port(first.grpc_address)

    squatter = grpc.aio.server()
    port = squatter.add_insecure_port("127.0.0.1:0")
    await squatter.start()
    try:
        late = _settings(tmp_path, "late", grpc_listen=f"127.0.0.1:{port}", nodes=first.settings.nodes)
        with pytest.raises(RuntimeError, match=f"cannot listen on 127.0.0.1:{port} for gRPC"):
            await start_gateway(late)
    finally:
        await squatter.stop(None)


async def test_a_failed_start_lets_go_of_the_http_port(gateway: Any, tmp_path: Path) -> None:
    _, first, _ = gateway
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        http_port = probe.getsockname()[1]
    second = _settings(
        tmp_path, "second", listen=f"127.0.0.1:{http_port}", grpc_listen=first.grpc_address, nodes=first.settings.nodes
    )
    with pytest.raises(RuntimeError):
        await start_gateway(second)
    with socket.socket() as again:
        again.bind(("127.0.0.1", http_port))  # free: the half-started gateway closed its HTTP site


# --- TLS ------------------------------------------------------------------------------


async def test_tls_refuses_a_plaintext_client_and_answers_one_that_trusts_the_ca(
    start_tls_gateway: StartGateway, certs: Path
) -> None:
    running = await start_tls_gateway()
    assert running.grpc_tls == "TLS"
    async with grpc.aio.insecure_channel(running.grpc_address) as channel:
        assert await _refused(channel) is grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError):
            await gateway_pb2_grpc.ReportGatewayStub(channel).Login(
                gpb.LoginRequest(username="li-hua", password="demo-person-2024"), timeout=5
            )
    # A bank's system: no federation certificate, only trust in the CA.
    async with grpc.aio.secure_channel(running.grpc_address, _tls(certs)) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        session = await gateway_pb2_grpc.ReportGatewayStub(channel).Login(
            gpb.LoginRequest(username="li-hua", password="demo-person-2024"), timeout=5
        )
        assert session.token and session.expires_in > 0


async def test_a_client_that_trusts_another_ca_does_not_get_through(
    start_tls_gateway: StartGateway, certs: Path, tmp_path: Path
) -> None:
    running = await start_tls_gateway()
    init_ca(tmp_path / "other")
    async with grpc.aio.secure_channel(running.grpc_address, _tls(certs, ca=tmp_path / "other" / "ca.pem")) as channel:
        assert await _refused(channel) is grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_a_client_without_a_federation_certificate(
    start_tls_gateway: StartGateway, certs: Path, tmp_path: Path
) -> None:
    running = await start_tls_gateway(grpc_require_client_cert=True)
    assert running.grpc_tls == "mutual TLS"
    async with grpc.aio.secure_channel(running.grpc_address, _tls(certs)) as channel:
        assert await _refused(channel) is grpc.StatusCode.UNAVAILABLE
    # A certificate from another CA is no better than none.
    init_ca(tmp_path / "other")
    issue(tmp_path / "other", "bank", "bank:someone")
    foreign = grpc.ssl_channel_credentials(
        root_certificates=(certs / "ca.pem").read_bytes(),
        private_key=(tmp_path / "other" / "bank.key").read_bytes(),
        certificate_chain=(tmp_path / "other" / "bank.pem").read_bytes(),
    )
    async with grpc.aio.secure_channel(running.grpc_address, foreign) as channel:
        assert await _refused(channel) is grpc.StatusCode.UNAVAILABLE
    issue(certs, "bank", "bank:icbc-tianjin")
    async with grpc.aio.secure_channel(running.grpc_address, _tls(certs, "bank")) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_plaintext_only_when_the_settings_say_so(start_tls_gateway: StartGateway, certs: Path) -> None:
    running = await start_tls_gateway(grpc_plaintext=True)
    assert running.grpc_tls == "plaintext"
    async with grpc.aio.insecure_channel(running.grpc_address) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_settings_refuse_a_plaintext_grpc_api_that_other_hosts_reach() -> None:
    with pytest.raises(InvalidInput, match="in clear"):
        GatewaySettings.from_env({"JJJ_GATEWAY_GRPC_LISTEN": "0.0.0.0:50060"})
    with pytest.raises(InvalidInput, match="in clear"):
        GatewaySettings.from_env({}, grpc_listen="10.0.2.5:50060")
    allowed = GatewaySettings.from_env({"JJJ_GATEWAY_GRPC_LISTEN": "0.0.0.0:50060", "JJJ_GATEWAY_GRPC_PLAINTEXT": "1"})
    assert allowed.grpc_plaintext and allowed.grpc_api_tls() is None
    for loopback in ("127.0.0.1:50060", "localhost:50060", "[::1]:50060"):
        assert GatewaySettings.from_env({}, grpc_listen=loopback).grpc_api_tls() is None
    with pytest.raises(InvalidInput, match="grpc_require_client_cert"):
        GatewaySettings.from_env({"JJJ_GATEWAY_GRPC_REQUIRE_CLIENT_CERT": "1"})
    with pytest.raises(InvalidInput, match="JJJ_GATEWAY_GRPC_PLAINTEXT"):
        GatewaySettings.from_env({"JJJ_GATEWAY_GRPC_PLAINTEXT": "maybe"})


def test_a_gateway_with_a_certificate_serves_tls_by_default(certs: Path) -> None:
    files = {
        "JJJ_GATEWAY_GRPC_LISTEN": "0.0.0.0:50060",
        "JJJ_GATEWAY_TLS_CERT": str(certs / "gateway.pem"),
        "JJJ_GATEWAY_TLS_KEY": str(certs / "gateway.key"),
        "JJJ_GATEWAY_TLS_CA": str(certs / "ca.pem"),
    }
    settings = GatewaySettings.from_env(files)
    assert settings.grpc_api_tls() is not None and not settings.grpc_require_client_cert
    mutual = GatewaySettings.from_env({**files, "JJJ_GATEWAY_GRPC_REQUIRE_CLIENT_CERT": "true"})
    assert mutual.grpc_require_client_cert
    with pytest.raises(InvalidInput, match="grpc_require_client_cert"):
        GatewaySettings.from_env(
            {**files, "JJJ_GATEWAY_GRPC_REQUIRE_CLIENT_CERT": "1", "JJJ_GATEWAY_GRPC_PLAINTEXT": "1"}
        )


# --- the demo's ports ---------------------------------------------------------------------


def test_demo_ports_move_with_the_base_port() -> None:
    default = demo_ports(50051, 8080)
    assert default.nodes == {Region.BEIJING: 50051, Region.TIANJIN: 50052, Region.HEBEI: 50053}
    assert default.gateway_grpc == 50060 and default.gateway_http == 8080

    moved = demo_ports(51051, 8081)
    assert moved.nodes == {Region.BEIJING: 51051, Region.TIANJIN: 51052, Region.HEBEI: 51053}
    assert moved.gateway_grpc == 51060 and moved.gateway_http == 8081

    def grpc_ports(layout: Any) -> set[int]:
        return {*layout.nodes.values(), layout.gateway_grpc}

    assert not grpc_ports(default) & grpc_ports(demo_ports(50061, 8081)), "two demos ten apart share nothing"


def test_demo_ports_refuse_what_cannot_be_bound() -> None:
    with pytest.raises(InvalidInput, match="base-port"):
        demo_ports(65530, 8080)
    with pytest.raises(InvalidInput, match="base-port"):
        demo_ports(0, 8080)
    with pytest.raises(InvalidInput, match="gateway-port"):
        demo_ports(50051, 50060)
    with pytest.raises(InvalidInput, match="gateway-port"):
        demo_ports(50051, 70000)


def test_demo_help_gives_the_port_layout() -> None:
    parser = build_parser()
    demo = next(
        choice
        for action in parser._subparsers._group_actions  # type: ignore[union-attr]
        for name, choice in action.choices.items()  # type: ignore[union-attr]
        if name == "demo"
    )
    text = demo.format_help()
    assert "BASE+9" in text and "50060" in text
