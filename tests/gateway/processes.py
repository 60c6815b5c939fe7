"""Gateways as an operator runs them: ``jjj gateway`` in processes of their own, on one
PostgreSQL database, and what the kernel says about them (/proc)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START = 240.0  # seconds a gateway may take to start on a busy machine
_LISTENING = re.compile(
    r"gateway listening on (?P<url>http://[\d.]+:\d+) \(HTTP\) and (?P<grpc>[\d.]+:\d+) \(gRPC, [^)]+\)"
    r"(?:, in \d+ worker processes \(pids (?P<pids>[\d, ]+)\))?"
)


@dataclass
class GatewayProcess:
    process: asyncio.subprocess.Process
    url: str
    grpc: str
    log: Path
    workers: list[int] = field(default_factory=list)  # worker pids; empty: it serves itself

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def serving(self) -> list[int]:
        """The processes that answer requests."""
        return self.workers or [self.pid]

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal it and wait for it to exit; its exit status."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"gateway {self.pid} did not stop on {sig.name} within {timeout:g} s") from None


async def start_gateway_process(*args: str, env: dict[str, str], log: Path) -> GatewayProcess:
    """Run ``jjj gateway ARGS`` with ``env`` added to this environment, its log to ``log``,
    and wait until it says where it listens.

    Raises:
        AssertionError: it exited first, or did not start within :data:`START` seconds
            (its log is in the message).
    """
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jjj",
            "gateway",
            *args,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), START)).decode()
    except TimeoutError:
        process.kill()
        await process.wait()
        line = ""
    found = _LISTENING.search(line)
    if found is None:
        if process.returncode is None:
            process.kill()
        await process.wait()
        raise AssertionError(f"the gateway did not start: {line!r}\n{log.read_text(errors='replace')[-4000:]}")
    workers = [int(pid) for pid in found["pids"].split(", ")] if found["pids"] else []
    return GatewayProcess(process, found["url"], found["grpc"], log, workers)


def parent_of(pid: int) -> int:
    """A process's parent, from /proc (its name may hold spaces: split after the ")")."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listening_ports(pid: int) -> set[int]:
    """The TCP ports on which a process has a listening socket of its own."""
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                sockets.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in sockets:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
