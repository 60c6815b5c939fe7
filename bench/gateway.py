"""Gateway benchmarks: signed reports per second, latency under open-loop load, parallel
fan-out, verification rate, and behaviour with a stopped, slowed or failed node.

    python -m bench.gateway [--records 1000000] [--write docs/BENCHMARKS.md]

All on this machine: three nodes (SQLite, ``--records`` synthetic records each), a
gateway connected to them directly, a second gateway reaching them through small TCP
proxies that can delay or refuse traffic, the bare skeleton, and the load generator.
Load is open-loop: requests start at a fixed rate whatever the answers do, and latency
counts from the moment a request was due.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.node import machine, percentile, write_section
from credit.regions import Region
from gateway.access.keys import KeyStore
from gateway.demo import seed_demo_accounts
from gateway.registry import Registry
from nodes.seed import synthetic_subject

ROWS_PER_SUBJECT = 0.427


class Proxy:
    """A TCP proxy to a node that can delay what the gateway sends, or refuse it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay = 0.0
        self.refuse = False
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delayed: bool) -> None:
        # A delay line: every chunk leaves ``delay`` after it arrived, in order, so that a
        # call is delayed once however many frames it takes.
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                arrived, data = await queue.get()
                if not data:
                    break
                wait = arrived + (self.delay if delayed else 0.0) - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self.refuse:
                    break
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(forward())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time(), data))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            queue.put_nowait((loop.time(), b""))
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await sender
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False))


@dataclass
class Run:
    offered: float
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    done: int = 0

    @property
    def achieved(self) -> float:
        return self.done / self.seconds

    def summary(self) -> str:
        if not self.latencies:
            return f"{self.offered:.0f}/s offered: no answers"
        return (
            f"{self.achieved:,.0f}/s answered of {self.offered:,.0f}/s offered, "
            f"p50 {percentile(self.latencies, 50) * 1000:.1f} ms, p99 {percentile(self.latencies, 99) * 1000:.1f} ms, "
            f"errors {self.errors}/{self.done + self.errors}"
        )


async def open_loop(rate: float, seconds: float, send: Callable[[], Awaitable[bool]]) -> Run:
    run = Run(rate, seconds)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    total = int(rate * seconds)
    tasks = []

    async def one(due: float) -> None:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            ok = await send()
        except (TimeoutError, aiohttp.ClientError):
            ok = False
        if ok:
            run.done += 1
            run.latencies.append(loop.time() - due)
        else:
            run.errors += 1

    for i in range(total):
        tasks.append(asyncio.create_task(one(start + i / rate)))
    await asyncio.gather(*tasks)
    return run


async def capacity(
    send: Callable[[], Awaitable[bool]], *, start: float, seconds: float = 4.0
) -> tuple[float, list[Run]]:
    """The highest offered rate answered in full (≥ 97 %), with < 0.1 % errors and p99 < 1 s."""
    rate, best, runs = start, 0.0, []
    while True:
        run = await open_loop(rate, seconds, send)
        runs.append(run)
        print(f"  {run.summary()}", flush=True)
        ok = (
            run.achieved >= 0.97 * rate
            and run.errors <= 0.001 * (run.done + run.errors)
            and run.latencies
            and percentile(run.latencies, 99) < 1.0
        )
        if not ok:
            return best, runs
        best = rate
        rate *= 1.4


def _spawn(args: list[str], **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", *args], env={**os.environ, "JJJ_LOG_LEVEL": "WARNING", **env})


def seed(region: Region, url: str, subjects: int) -> subprocess.Popen[bytes]:
    """Seed a node's database with ``subjects`` synthetic subjects (a child process)."""
    return _spawn(["jjj", "seed", "--region", region.value, "--db", url, "--subjects", str(subjects)])


def spawn_node(region: Region, url: str, port: int, jwks: Path) -> subprocess.Popen[bytes]:
    """A node on 127.0.0.1:``port`` over ``url`` that trusts the gateway keys in ``jwks``."""
    command = ["jjj", "node", "--region", region.value, "--db", url]
    return _spawn([*command, "--listen", f"127.0.0.1:{port}", "--gateway-jwks", str(jwks)])


async def _wait_http(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url) as reply:
                    if reply.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def node_calls(http: aiohttp.ClientSession, base: str, region: Region) -> float:
    async with http.get(base + "/metrics") as reply:
        text = await reply.text()
    pattern = re.compile(rf'^jjj_gateway_node_calls_total\{{code="(\w+)",region="{region.value}"\}} ([0-9.e+]+)$', re.M)
    return sum(float(value) for code, value in pattern.findall(text) if code != "CIRCUIT_OPEN")


async def main(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    subjects = int(args.records / ROWS_PER_SUBJECT)
    procs: list[subprocess.Popen[bytes]] = []
    figures: dict[str, str] = {}

    def note(key: str, value: str) -> None:
        figures[key] = value
        print(f"{key}: {value}", flush=True)

    try:
        keys = KeyStore(work / "keys")
        keys.ensure()
        jwks = work / "gateway-jwks.json"
        jwks.write_text(json.dumps(keys.keyring().jwks()), encoding="utf-8")
        seeding = [
            seed(region, f"sqlite:///{work / f'{region.value}-{subjects}.db'}", subjects)
            for region in Region
            if not (work / f"{region.value}-{subjects}.db").exists()
        ]
        for proc in seeding:
            proc.wait()
        proxies = {}
        base_port = 51100
        for i, region in enumerate(Region):
            port = base_port + i
            procs.append(spawn_node(region, f"sqlite:///{work / f'{region.value}-{subjects}.db'}", port, jwks))
            proxies[region] = Proxy(port)
            await proxies[region].start()
        gateway_db = work / "gateway.db"
        registry = Registry.open(f"sqlite:///{gateway_db}")
        seed_demo_accounts(registry)
        registry.close()
        # Two gateways on the same keys and registry: one talks to the nodes directly and
        # is measured against the skeleton (which has no proxies either); the other goes
        # through the proxies, for the runs with a delayed, stopped or slowed node.
        direct = ",".join(f"{r.value}=127.0.0.1:{base_port + i}" for i, r in enumerate(Region))
        proxied = ",".join(f"{r.value}=127.0.0.1:{p.port}" for r, p in proxies.items())
        for port, nodes in ((8181, direct), (8183, proxied)):
            procs.append(
                _spawn(
                    [
                        "jjj",
                        "gateway",
                        "--listen",
                        f"127.0.0.1:{port}",
                        "--grpc-listen",
                        "127.0.0.1:0",
                        "--db",
                        f"sqlite:///{gateway_db}",
                        "--keys-dir",
                        str(work / "keys"),
                        "--nodes",
                        nodes,
                    ]
                )
            )
        procs.append(_spawn(["bench.skeleton", "--port", "8182"]))
        base, faulty = "http://127.0.0.1:8181", "http://127.0.0.1:8183"
        await _wait_http(base + "/healthz")
        await _wait_http(faulty + "/healthz")
        await _wait_http("http://127.0.0.1:8182/")
        await asyncio.sleep(2)  # nodes up
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.post(
                base + "/api/v1/login", json={"username": "admin", "password": "demo-admin-2024"}
            ) as r:
                token = (await r.json())["token"]
            auth = {"Authorization": f"Bearer {token}"}
            rng = random.Random(5)
            pool = [synthetic_subject(Region.TIANJIN, rng.randrange(subjects)).id for _ in range(5000)]
            issued: list[dict[str, str]] = []

            async def report(via: str = base) -> bool:
                body = {"subject": rng.choice(pool), "years": 3}
                async with http.post(via + "/api/v1/reports", json=body, headers=auth) as reply:
                    if reply.status != 201:
                        return False
                    data = await reply.json()
                    if len(issued) < 200:
                        issued.append({"jws": data["jws"], "code": data["verification_code"]})
                    return True

            async def skeleton() -> bool:
                async with http.post("http://127.0.0.1:8182/", data=b"x" * 64) as reply:
                    await reply.read()
                    return reply.status == 200

            for _ in range(300):  # warm-up: page caches, catalogues, connections
                await report()
            print("gateway capacity:", flush=True)
            ours, _ = await capacity(report, start=10)
            load = max(ours, 10.0)  # what the runs below are scaled from
            print("skeleton capacity:", flush=True)
            bare, _ = await capacity(skeleton, start=200)
            note(
                "Signed three-region reports/s (capacity)",
                f"{ours:,.0f}/s; skeleton {bare:,.0f}/s; ratio {ours / bare:.2f}",
            )
            steady = await open_loop(0.6 * ours, 10, report)
            note("Latency at 60 % of capacity", steady.summary())

            for proxy in proxies.values():
                proxy.delay = 0.05
            for _ in range(50):
                await report(faulty)
            delayed = await open_loop(20, 5, lambda: report(faulty))
            note("Every node delayed 50 ms", delayed.summary())
            for proxy in proxies.values():
                proxy.delay = 0.0

            async def verify_code() -> bool:
                async with http.get(base + "/api/v1/verify/" + rng.choice(issued)["code"]) as reply:
                    await reply.read()
                    return reply.status == 200

            async def verify_jws() -> bool:
                async with http.post(base + "/api/v1/verify", data=rng.choice(issued)["jws"]) as reply:
                    return reply.status == 200 and (await reply.json())["genuine"]

            print("verification by code:", flush=True)
            by_code, _ = await capacity(verify_code, start=200)
            print("verification of a signed report:", flush=True)
            by_jws, _ = await capacity(verify_jws, start=50)
            note("Verifications/s over HTTP", f"by code {by_code:,.0f}/s; signed report (POST) {by_jws:,.0f}/s")

            hebei = proxies[Region.HEBEI]
            hebei.refuse = True
            incomplete = 0

            async def report_incomplete() -> bool:
                nonlocal incomplete
                async with http.post(
                    faulty + "/api/v1/reports", json={"subject": rng.choice(pool)}, headers=auth
                ) as reply:
                    data = await reply.json()
                    if reply.status == 201 and data["verdict"] in ("incomplete", "has_records"):
                        incomplete += data["verdict"] == "incomplete"
                        return True
                    return False

            before = await node_calls(http, faulty, Region.HEBEI)
            stopped = await open_loop(0.5 * load, 6, report_incomplete)
            after = await node_calls(http, faulty, Region.HEBEI)
            requests = stopped.done + stopped.errors
            note(
                "One node stopped",
                f"{stopped.summary()}; {incomplete} marked incomplete; "
                f"max {max(stopped.latencies, default=0) * 1000:.0f} ms "
                f"(deadline 3000 ms); calls to the stopped node {after - before:.0f} for {requests} requests "
                f"({(after - before) / max(1, requests):.2f}×)",
            )
            hebei.refuse = False
            await asyncio.sleep(6)  # the breaker's cool-down, then a probe closes it
            await open_loop(5, 2, lambda: report(faulty))
            hebei.delay = 2.0
            slowed = await open_loop(0.3 * load, 6, lambda: report(faulty))
            note("One node slowed by 2 s", f"{slowed.summary()} (per-region deadline 2000 ms)")
            hebei.delay = 0.0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)

    if args.write:
        write(Path(args.write), figures, args)


def write(path: Path, figures: dict[str, str], args: argparse.Namespace) -> None:
    targets = {
        "Signed three-region reports/s (capacity)": "≥ 400/s, ratio to skeleton ≥ 0.5",
        "Latency at 60 % of capacity": "p50 ≤ 5 ms, p99 ≤ 20 ms",
        "Every node delayed 50 ms": "p50 ≤ 60 ms",
        "Verifications/s over HTTP": "≥ 2 500/s",
        "One node stopped": "all answered within the deadline, marked incomplete; ≤ 1.2× calls",
        "One node slowed by 2 s": "p99 ≤ per-region deadline + 20 ms",
    }
    rows = "\n".join(f"| {key} | {targets.get(key, '')} | {value} |" for key, value in figures.items())
    notes_path = path.with_name("BENCHMARKS-gateway-notes.md")
    notes = notes_path.read_text(encoding="utf-8") if notes_path.exists() else ""
    section = f"""
## Gateway ({args.records:,} records per node, three nodes, SQLite)

`python -m bench.gateway --records {args.records} --write docs/BENCHMARKS.md`,
run {time.strftime("%Y-%m-%d")} on {machine()}.
Open-loop load from a generator on the same machine; the gateway, three nodes, the
skeleton and the generator share the two cores. Capacity, latency and verification are
measured on a gateway connected to the nodes directly; the runs with a delayed, stopped
or slowed node use a second gateway whose node connections pass through small TCP
proxies in the generator's process.

| what | target | measured |
|---|---|---|
{rows}

{notes}"""
    write_section(path, "Gateway (", section)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--work", default="var/bench-gateway")
    parser.add_argument("--write")
    asyncio.run(main(parser.parse_args()))
