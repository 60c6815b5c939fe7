"""The benchmark's process helpers: ports from the OS, readiness, ownership of the port,
and the loud failures (real child processes, no benchmark)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.load import Requests, wrk_script
from bench.procs import (
    BenchmarkFailed,
    Processes,
    free_port,
    grpc_serving,
    http_ok,
    listening_sockets,
    processes,
    tcp_listening,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Processes]:
    with processes(tmp_path / "logs") as started:
        yield started


def test_free_port_can_be_bound_again() -> None:
    port = free_port()
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


async def test_a_ready_component_owns_its_port_and_is_alive(running: Processes) -> None:
    port = free_port()
    server = running.start("web", http_server(port), port=port)
    await running.wait_ready(server, http_ok(f"http://127.0.0.1:{port}/"), timeout=30)
    running.check_alive("after the test")
    assert listening_sockets(port)
    assert server.cpu_seconds() > 0
    assert running.cpu().keys() == {"web"}


async def test_a_component_that_exits_fails_with_its_log(running: Processes) -> None:
    port = free_port()
    crashing = running.start("crash", [sys.executable, "-c", "raise SystemExit('cannot bind')"], port=port)
    with pytest.raises(BenchmarkFailed, match="crash exited with code 1") as failure:
        await running.wait_ready(crashing, tcp_listening(port), timeout=30)
    assert failure.value.component is crashing
    assert "cannot bind" in crashing.tail()


async def test_a_component_never_ready_fails_at_the_deadline(running: Processes) -> None:
    port = free_port()
    silent = running.start("silent", SLEEPER, port=port)
    with pytest.raises(BenchmarkFailed, match="not ready on port"):
        await running.wait_ready(silent, tcp_listening(port), timeout=0.5)


async def test_a_port_answered_by_another_process_is_refused(running: Processes) -> None:
    # Someone else listens where our component was told to: the probe alone would pass.
    with socket.socket() as impostor:
        impostor.bind(("127.0.0.1", 0))
        impostor.listen()
        port = impostor.getsockname()[1]
        ours = running.start("node", SLEEPER, port=port)
        with pytest.raises(BenchmarkFailed, match="answers, but not from node"):
            await running.wait_ready(ours, tcp_listening(port), timeout=10)


async def test_a_component_that_died_voids_the_run(running: Processes) -> None:
    port = free_port()
    server = running.start("web", http_server(port), port=port)
    await running.wait_ready(server, http_ok(f"http://127.0.0.1:{port}/"), timeout=30)
    server.proc.kill()
    server.proc.wait()
    with pytest.raises(BenchmarkFailed, match=r"web exited .* during the run"):
        running.check_alive("during the run")


async def test_grpc_serving_reads_the_health_service() -> None:
    server = grpc.aio.server()
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        probe = grpc_serving(f"127.0.0.1:{port}")
        await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert not await probe()
        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        assert await probe()
    finally:
        await server.stop(None)


def test_an_answer_is_good_only_with_its_status_and_content() -> None:
    reports = Requests(
        "reports", "POST", [("/r", b"{}")], 201, {}, must_hold=b'"regions":[', must_not_hold=b'"unavailable"'
    )
    assert reports.good(201, b'{"regions":[{"status":"answered"}]}')
    assert not reports.good(200, b'{"regions":[{"status":"answered"}]}')
    assert not reports.good(201, b'{"regions":[{"status":"unavailable"}]}')
    assert not reports.good(201, b'{"error":"x"}')
    script = wrk_script(reports)
    assert "local want_status = 201" in script
    assert 'local must_not_hold = [==["unavailable"]==]' in script
