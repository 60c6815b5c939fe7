"""infra.workers with real processes and sockets: ports checked and held, workers sharing
a port and each answering, a dead worker replaced, SIGHUP replacing them all without a
refused connection, SIGTERM stopping them, a worker that cannot start stopping the start,
and workers stopping by themselves when their parent is killed.

The workers here are small TCP servers that answer with their process id: the pool is
what is tested (the gateway's workers: tests/gateway/test_gateway_workers.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.lifecycle import until_stopped
from infra.workers import PortTaken, WorkerLink, reserve

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0


def echo_worker(link: WorkerLink, port: int, fail: str = "") -> None:
    """A worker: says its process id to whoever connects."""
    if fail:
        raise RuntimeError(fail)

    async def main() -> None:
        async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(f"{os.getpid()}\n".encode())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", port, reuse_port=True)
        link.ready(f"127.0.0.1:{port}")
        await until_stopped(parent=link.parent, every=0.2)
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def _pool_script(count: int, fail: str = "") -> str:
    return textwrap.dedent(
        f"""
        import sys
        from infra.workers import WorkerPool, reserve
        from jjj.logs import configure
        from tests.infra.test_workers import echo_worker

        configure()  # the log on standard error: standard output says where the pool listens

        held = reserve([("echo", "127.0.0.1:0")])
        port = int(held.addresses[0].rsplit(":", 1)[1])
        pool = WorkerPool(echo_worker, (port, {fail!r}), count={count}, grace=5, name="echo")
        try:
            sys.exit(pool.run(announce=lambda p: print(port, *p.pids, flush=True)))
        except RuntimeError as exc:
            print("refused:", exc, flush=True)
            sys.exit(1)
        """
    )


class Pool:
    def __init__(self, process: subprocess.Popen[str], port: int, pids: list[int]) -> None:
        self.process = process
        self.port = port
        self.pids = pids

    def ask(self) -> int:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            return int(conn.makefile().readline())

    def answering(self, tries: int = 60) -> set[int]:
        return {self.ask() for _ in range(tries)}

    def children(self) -> set[int]:
        return set(_children(self.process.pid))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid …: comm may hold spaces, so split after its ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(count: int, fail: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _pool_script(count, fail)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture
def pool() -> Iterator[Pool]:
    process = _start(2)
    assert process.stdout is not None
    port, *pids = (int(word) for word in process.stdout.readline().split())
    try:
        yield Pool(process, port, pids)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT)
        process.stdout.close()


def _until(check, what: str, timeout: float = WAIT) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout:g} s")
        time.sleep(0.1)


def test_a_port_in_use_is_refused_and_a_free_one_held() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with pytest.raises(PortTaken, match=f"cannot listen on 127.0.0.1:{taken} for gRPC: the port is in use"):
            reserve([("HTTP", "127.0.0.1:0"), ("gRPC", f"127.0.0.1:{taken}")])
    with pytest.raises(PortTaken, match="for HTTP"):
        reserve([("HTTP", "192.0.2.1:8080")])  # not an address of this machine

    held = reserve([("HTTP", "127.0.0.1:0")])
    try:
        port = int(held.addresses[0].rsplit(":", 1)[1])
        assert port > 0
        # Held: a program binding it the ordinary way is refused, even before anyone listens …
        with socket.socket() as other, pytest.raises(OSError):
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.bind(("127.0.0.1", port))
        # … but workers sharing it listen, and every connection reaches one of them.
        listeners = []
        for _ in range(2):
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(64)
            listener.setblocking(False)
            listeners.append(listener)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
        time.sleep(0.2)
        accepted = 0
        for listener in listeners:
            while True:
                try:
                    listener.accept()[0].close()
                    accepted += 1
                except BlockingIOError:
                    break
            listener.close()
        for client in clients:
            client.close()
        assert accepted == 40  # none went to the socket that holds the port
    finally:
        held.close()


def test_workers_share_a_port_and_each_answers(pool: Pool) -> None:
    assert len(pool.pids) == 2 and pool.children() == set(pool.pids)
    assert pool.answering() == set(pool.pids)


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(pool: Pool) -> None:
    survivor, victim = pool.pids
    os.kill(victim, signal.SIGKILL)
    _until(lambda: len(pool.children() - {victim}) == 2, "replaced")
    replacement = (pool.children() - {survivor}).pop()
    _until(lambda: pool.answering() == {survivor, replacement}, "answering")

    pool.process.send_signal(signal.SIGTERM)
    assert pool.process.wait(WAIT) == 0
    assert not _alive(survivor) and not _alive(replacement)


def test_sighup_replaces_every_worker_without_refusing_a_connection(pool: Pool) -> None:
    before = set(pool.pids)
    pool.process.send_signal(signal.SIGHUP)
    refused = 0
    deadline = time.monotonic() + WAIT
    while pool.children() & before or len(pool.children()) != 2:
        try:
            pool.ask()
        except OSError:
            refused += 1
        assert time.monotonic() < deadline, "the workers were not replaced"
    assert refused == 0
    after = pool.children()
    assert not after & before and pool.answering() == after


def test_workers_stop_by_themselves_when_their_parent_is_killed(pool: Pool) -> None:
    pool.process.kill()
    pool.process.wait(WAIT)
    _until(lambda: not any(_alive(pid) for pid in pool.pids), "stopped")


def test_a_worker_that_cannot_start_stops_the_start() -> None:
    process = _start(2, fail="the database cannot be reached")
    out, _ = process.communicate(timeout=WAIT)
    assert process.returncode == 1
    assert "refused: the database cannot be reached" in out
