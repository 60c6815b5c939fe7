"""``jjj gateway --workers N`` as an operator runs it: the workers share the HTTP and
gRPC ports and each answers requests (their metrics say so, one series per worker), a
second gateway on the same ports is refused, SIGTERM stops them all; a port in use and
several workers on SQLite are refused with a message before anything starts."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from credit.errors import InvalidInput
from gateway.access.keys import KeyStore
from gateway.demo import seed_demo_accounts
from gateway.registry import Registry
from gateway.settings import GatewaySettings
from tests.gateway.processes import ROOT, alive, listening_ports, parent_of, start_gateway_process

NOWHERE = "beijing=127.0.0.1:9,tianjin=127.0.0.1:9,hebei=127.0.0.1:9"  # no node answers: not needed here


def _jjj(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jjj", *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _per_process(metrics: str) -> dict[int, float]:
    return {
        int(pid): float(value)
        for pid, value in re.findall(r'^jjj_gateway_process_http_requests\{pid="(\d+)"\} ([\d.]+)$', metrics, re.M)
    }


async def test_workers_share_the_ports_and_each_answers(pg_url: str, tmp_path: Path) -> None:
    registry = Registry.open(pg_url)
    seed_demo_accounts(registry)
    registry.close()
    KeyStore(tmp_path / "keys").ensure()
    args = ("--workers", "2", "--db", pg_url, "--keys-dir", str(tmp_path / "keys"), "--nodes", NOWHERE)
    gateway = await start_gateway_process(
        *args, "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", env={}, log=tmp_path / "gateway.log"
    )
    try:
        http, grpc_port = _port(gateway.url), _port(gateway.grpc)
        assert len(gateway.workers) == 2
        for worker in gateway.workers:
            assert parent_of(worker) == gateway.pid
            assert {http, grpc_port} <= listening_ports(worker)  # each listens on both, shared
        assert not listening_ports(gateway.pid) & {http, grpc_port}  # the parent holds them, takes no call

        # Every request on a connection of its own: the kernel spreads them over the workers.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as client:

            async def login() -> str:
                body = {"username": "clean-co", "password": "demo-clean-2024"}
                async with client.post(f"{gateway.url}/api/v1/login", json=body) as reply:
                    assert reply.status == 200, await reply.text()
                    return str((await reply.json())["token"])

            tokens = [await login() for _ in range(6)]
            for token in tokens * 5:  # a session from one worker is honoured by every worker
                async with client.get(
                    f"{gateway.url}/api/v1/reports/JJJ-NONE", headers={"Authorization": f"Bearer {token}"}
                ) as reply:
                    assert reply.status == 404, await reply.text()
            async with client.get(f"{gateway.url}/metrics") as reply:
                metrics = await reply.text()
        answered = _per_process(metrics)
        assert set(answered) == set(gateway.workers), answered  # both answered requests
        assert sum(answered.values()) >= 36
        logins = re.search(
            r'^jjj_gateway_http_requests_total\{route="/api/v1/login",status="200"\} ([\d.]+)$', metrics, re.M
        )
        assert logins is not None and float(logins[1]) == 6  # the workers' counters, added up

        for _ in range(6):  # the gRPC port too, on fresh connections
            async with grpc.aio.insecure_channel(gateway.grpc) as channel:
                check = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                assert check.status == health_pb2.HealthCheckResponse.SERVING

        # A second gateway on the same ports is refused: it would take some of the calls.
        second = await asyncio.to_thread(
            _jjj, "gateway", *args, "--listen", f"127.0.0.1:{http}", "--grpc-listen", "127.0.0.1:0"
        )
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{http} for HTTP: the port is in use" in second.stderr
    finally:
        status = await gateway.stop(signal.SIGTERM)
    assert status == 0
    assert not any(alive(worker) for worker in gateway.workers)


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    # The ports are checked before the database is opened: this one is never reached.
    db = "postgresql://nobody@127.0.0.1:9/nothing"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        for flag, what in (("--listen", "HTTP"), ("--grpc-listen", "gRPC")):
            refused = _jjj(
                "gateway", "--workers", "3", "--db", db, "--nodes", NOWHERE, "--keys-dir", str(tmp_path / "keys"),
                "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", flag, f"127.0.0.1:{taken}",
            )  # fmt: skip
            assert refused.returncode == 1, refused.stderr
            assert f"cannot listen on 127.0.0.1:{taken} for {what}: the port is in use" in refused.stderr
            assert "Traceback" not in refused.stderr


def test_several_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    refused = _jjj(
        "gateway", "--workers", "2", "--db", f"sqlite:///{tmp_path / 'gateway.db'}", "--nodes", NOWHERE,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "several worker processes need PostgreSQL" in refused.stderr
    assert not (tmp_path / "gateway.db").exists()


def test_worker_and_lease_settings() -> None:
    default = GatewaySettings.from_env({})
    assert default.workers == 1 and default.lease_seconds == 30
    assert default.lookups_per_minute == 60 and default.lookups_per_process() == 60
    on_postgresql = {"JJJ_GATEWAY_DB_URL": "postgresql://gw@db/gateway"}
    settings = GatewaySettings.from_env(
        {**on_postgresql, "JJJ_GATEWAY_WORKERS": "4", "JJJ_GATEWAY_LEASE_SECONDS": "10"}
    )
    assert settings.workers == 4 and settings.lease_seconds == 10
    assert GatewaySettings.from_env(on_postgresql, workers=2).workers == 2  # --workers
    # Each worker allows its share of the lookups a minute per address, rounded up.
    shared = GatewaySettings.from_env({**on_postgresql, "JJJ_GATEWAY_LOOKUPS_PER_MINUTE": "1000"}, workers=3)
    assert shared.lookups_per_minute == 1000 and shared.lookups_per_process() == 334
    for env, field in (
        ({**on_postgresql, "JJJ_GATEWAY_WORKERS": "0"}, "workers"),
        ({**on_postgresql, "JJJ_GATEWAY_WORKERS": "65"}, "workers"),
        ({**on_postgresql, "JJJ_GATEWAY_WORKERS": "two"}, "JJJ_GATEWAY_WORKERS"),
        ({"JJJ_GATEWAY_WORKERS": "2"}, "workers"),  # on the default SQLite file
        ({"JJJ_GATEWAY_LEASE_SECONDS": "0.5"}, "lease_seconds"),
        ({"JJJ_GATEWAY_LEASE_SECONDS": "601"}, "lease_seconds"),
        ({"JJJ_GATEWAY_LOOKUPS_PER_MINUTE": "0"}, "lookups_per_minute"),
        ({"JJJ_GATEWAY_LOOKUPS_PER_MINUTE": "10000001"}, "lookups_per_minute"),
        ({"JJJ_GATEWAY_LOOKUPS_PER_MINUTE": "many"}, "JJJ_GATEWAY_LOOKUPS_PER_MINUTE"),
    ):
        with pytest.raises(InvalidInput) as refused:
            GatewaySettings.from_env(env)
        assert refused.value.violations[0].field == field, env
