"""The processes of a benchmark run: ports from the OS, each component's output in its
own log, readiness checked before anything is measured, and a run that stops loudly
when any part is missing.

A figure measured while a node was not answering, or against someone else's server on
the port we meant to use, is worse than no figure: every check here raises
``BenchmarkFailed``, and ``main_or_fail`` turns that into a non-zero exit with the
failing component's log, before anything is written.

    BenchmarkFailed                     a component exited, never became ready, does not
                                        own its port, or a measurement saw a part missing
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LOG_TAIL_LINES = 40
Probe = Callable[[], Awaitable[bool]]


class BenchmarkFailed(RuntimeError):
    """The run cannot give an honest figure; ``component`` is the part to blame, if one is."""

    def __init__(self, message: str, component: Component | None = None) -> None:
        super().__init__(message)
        self.component = component


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS had free a moment ago (bound to port 0, read, closed).

    Someone else may take it before our child binds it; ``Processes.wait_ready`` then
    finds that the port is not the child's and fails.
    """
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Component:
    """One process of the run: what it is called, the port it serves, its log."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def pids(self) -> list[int]:
        """The process and every process below it (a server may run workers)."""
        return [self.proc.pid, *descendants(self.proc.pid)]

    def cpu_seconds(self) -> float:
        """User and system CPU time so far of the process and its live descendants."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def runqueue_seconds(self) -> float:
        """Time the process's threads (and its descendants') have waited for a CPU."""
        return sum(runqueue_seconds(pid) for pid in self.pids())


@dataclass
class Processes:
    """The components of one run; stops them all on the way out, whatever happened."""

    logs: Path
    components: list[Component] = field(default_factory=list)

    def start(self, name: str, argv: list[str], *, port: int, env: dict[str, str] | None = None) -> Component:
        """Start ``argv`` with stdout and stderr in ``logs/<name>.log``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}
            )
        component = Component(name, proc, port, log)
        self.components.append(component)
        return component

    def start_python(
        self, name: str, module_args: list[str], *, port: int, env: dict[str, str] | None = None
    ) -> Component:
        """``python -m …`` with this interpreter, logging at WARNING, with ``env`` added."""
        return self.start(
            name, [sys.executable, "-m", *module_args], port=port, env={"JJJ_LOG_LEVEL": "WARNING", **(env or {})}
        )

    async def run_to_end(self, jobs: dict[str, list[str]]) -> None:
        """Run preparatory ``python -m`` jobs (seeding, say) side by side to their end.

        Raises:
            BenchmarkFailed: one of them exited with an error.
        """
        started = [self.start_python(name, argv, port=0) for name, argv in jobs.items()]
        for component in started:
            self.components.remove(component)  # not a part of the system measured
        try:
            for component in started:
                if await asyncio.to_thread(component.proc.wait) != 0:
                    raise BenchmarkFailed(f"{component.name} failed (exit {component.proc.returncode})", component)
        finally:
            for component in started:
                if component.alive:
                    component.proc.kill()
                    component.proc.wait()

    async def wait_ready(self, component: Component, probe: Probe, *, timeout: float = 120.0) -> None:
        """Wait until ``probe`` says yes and the component is the one listening on its port.

        Raises:
            BenchmarkFailed: the process exited, the deadline passed, or the port is
                served by (or shared with) another process.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not component.alive:
                raise BenchmarkFailed(
                    f"{component.name} exited with code {component.proc.returncode} before it was ready", component
                )
            if await _probe_once(probe):
                break
            if time.monotonic() > deadline:
                raise BenchmarkFailed(
                    f"{component.name} was not ready on port {component.port} after {timeout:.0f} s", component
                )
            await asyncio.sleep(0.2)
        check_owns_port(component)

    async def wait_all_ready(self, probes: Iterable[tuple[Component, Probe]], *, timeout: float = 120.0) -> None:
        await asyncio.gather(*(self.wait_ready(component, probe, timeout=timeout) for component, probe in probes))

    def check_alive(self, when: str) -> None:
        """Raises BenchmarkFailed naming the first component that has exited."""
        for component in self.components:
            if not component.alive:
                raise BenchmarkFailed(
                    f"{component.name} exited (code {component.proc.returncode}) {when}: the figures are void",
                    component,
                )

    def cpu(self) -> dict[str, float]:
        return {component.name: component.cpu_seconds() for component in self.components}

    def runqueue(self) -> dict[str, float]:
        return {component.name: component.runqueue_seconds() for component in self.components}

    def stop(self) -> None:
        for component in self.components:
            if component.alive:
                component.proc.terminate()
        for component in self.components:
            try:
                component.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                component.proc.kill()
                component.proc.wait()


@contextmanager
def processes(logs: Path) -> Iterator[Processes]:
    running = Processes(logs)
    try:
        yield running
    finally:
        running.stop()


async def _probe_once(probe: Probe) -> bool:
    try:
        return await asyncio.wait_for(probe(), timeout=2.0)
    except (TimeoutError, OSError, aiohttp.ClientError, grpc.RpcError):
        return False


def grpc_serving(address: str) -> Probe:
    """Readiness of a gRPC server: the standard health service answers SERVING."""

    async def probe() -> bool:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return probe


def http_ok(url: str) -> Probe:
    """Readiness of an HTTP server: ``GET url`` answers 200."""

    async def probe() -> bool:
        async with aiohttp.ClientSession() as http, http.get(url) as reply:
            await reply.read()
            return reply.status == 200

    return probe


def tcp_listening(port: int, host: str = "127.0.0.1") -> Probe:
    """Readiness of a server that cannot be asked more: something accepts on ``port``
    (``wait_ready`` then checks that it is the component)."""

    async def probe() -> bool:
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()
        return True

    return probe


def listening_sockets(port: int) -> set[int]:
    """Socket inodes listening on TCP ``port`` (IPv4 or IPv6), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXADDR:HEXPORT; state 0A is LISTEN; the inode is field 9.
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process ``pid`` holds open."""
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def check_owns_port(component: Component) -> None:
    """Raises BenchmarkFailed unless every socket listening on the component's port is its own.

    A readiness probe alone would be satisfied by another server that happens to hold
    the port (another run's node, say), and SO_REUSEPORT lets two servers share one.
    """
    listening = listening_sockets(component.port)
    ours = set().union(*(socket_inodes(pid) for pid in component.pids())) & listening
    if not ours:
        raise BenchmarkFailed(f"port {component.port} answers, but not from {component.name}", component)
    if listening - ours:
        raise BenchmarkFailed(f"{component.name} shares port {component.port} with another process", component)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields start after it.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    # After the name: state is fields[0], so utime (stat field 14) is fields[11].
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def runqueue_seconds(pid: int) -> float:
    """Seconds the live threads of process ``pid`` spent runnable but waiting for a CPU
    (the second field of each thread's /proc schedstat); 0 where the kernel keeps none."""
    waited = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in threads:
        try:
            waited += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return waited / 1e9


@dataclass(frozen=True)
class Finished:
    """A load generator that ran to its end: exit code, output, CPU seconds it used."""

    returncode: int
    output: str
    cpu: float


async def run_measured(argv: list[str], *, timeout: float) -> Finished:
    """Run a short-lived process to its end and take its CPU time from the kernel's
    account of it (``wait4``), which /proc cannot give once it has exited.

    Raises:
        BenchmarkFailed: it did not finish within ``timeout``.
    """
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    reading = asyncio.create_task(asyncio.to_thread(proc.stdout.read))
    try:
        _, status, usage = await asyncio.wait_for(asyncio.to_thread(os.wait4, proc.pid, 0), timeout)
    except TimeoutError:
        proc.kill()
        proc.wait()
        raise BenchmarkFailed(f"{argv[0]} did not finish within {timeout:.0f} s") from None
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = (await reading).decode("utf-8", "replace")
    proc.stdout.close()
    return Finished(proc.returncode, output, usage.ru_utime + usage.ru_stime)


def main_or_fail(run: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run`` a benchmark's ``main`` under ``failing_loudly``."""
    with failing_loudly():
        asyncio.run(run())


@contextmanager
def failing_loudly() -> Iterator[None]:
    """On BenchmarkFailed print why and the component's log tail, and exit 1. A
    benchmark writes its figures last, so a failed run writes nothing."""
    try:
        yield
    except BenchmarkFailed as failure:
        print(f"\nBENCHMARK FAILED: {failure}", file=sys.stderr, flush=True)
        if failure.component is not None:
            print(f"--- last lines of {failure.component.log} ---", file=sys.stderr)
            print(failure.component.tail(), file=sys.stderr)
        print("Nothing was written.", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
