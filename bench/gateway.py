"""Gateway benchmarks: signed reports per second against the floor of a bare skeleton,
CPU per report in every process, latency under open-loop load, parallel fan-out,
verification rate, and behaviour with a stopped, slowed or failed node.

    python -m bench.gateway [--records 1000000] [--seconds 10] [--write docs/BENCHMARKS.md]

All on this machine, each in its own process on a port the OS chose: three nodes
(SQLite, ``--records`` synthetic records each), a gateway connected to them directly, a
second gateway reaching them through small TCP proxies that can delay or refuse
traffic, the skeleton (three do-nothing gRPC servers and a front door, ``bench.skeleton``)
and the load generator. Nothing is measured until every one of them answers its
readiness check from the port it was given; the run stops, writing nothing, when any
component exits or a measured answer lacks a region (``bench.procs``).

Capacity is closed-loop (``bench.load``: wrk when installed, 8 requests in flight);
latency is open-loop: requests start at a fixed rate whatever the answers do, and
latency counts from the moment a request was due.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import CONNECTIONS, Closed, Requests, closed_loop, tool_name
from bench.node import machine, percentile, write_section
from bench.procs import BenchmarkFailed, Component, Processes, free_port, grpc_serving, http_ok, main_or_fail, processes
from bench.skeleton import ANSWER_BYTES
from credit.regions import Region
from gateway.access.keys import KeyStore
from gateway.demo import seed_demo_accounts
from gateway.registry import Registry
from nodes.seed import synthetic_subject

ROWS_PER_SUBJECT = 0.427
# The benchmark's load comes from one address; the gateway it measures allows that many
# verification-code lookups a minute (JJJ_GATEWAY_LOOKUPS_PER_MINUTE) instead of 60, as an
# instance does that a bank's verifying system reaches from one address.
BENCH_LOOKUPS_PER_MINUTE = 10_000_000
DEFAULT_SECONDS = 10.0  # each capacity run, after a 3 s warm-up


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
        # Cancelled when the run ends; Python 3.11's start_server would report that as an error.
        with contextlib.suppress(asyncio.CancelledError):
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


def node_argv(region: Region, url: str, port: int, jwks: Path) -> list[str]:
    """A node on 127.0.0.1:``port`` over ``url`` that trusts the gateway keys in ``jwks``."""
    command = ["jjj", "node", "--region", region.value, "--db", url]
    return [*command, "--listen", f"127.0.0.1:{port}", "--gateway-jwks", str(jwks)]


async def seed_missing(running: Processes, urls: dict[Region, str], subjects: int) -> None:
    """Seed, side by side, the SQLite node databases in ``urls`` that do not exist yet.

    Raises:
        BenchmarkFailed: a seeding job failed.
    """
    jobs = {
        f"seed-{region.value}": ["jjj", "seed", "--region", region.value, "--db", url, "--subjects", str(subjects)]
        for region, url in urls.items()
        if not Path(url.removeprefix("sqlite:///")).exists()
    }
    await running.run_to_end(jobs)


async def start_nodes(running: Processes, urls: dict[Region, str], jwks: Path) -> dict[Region, str]:
    """Start a node per region, each on a port of its own, and wait until all serve.

    Returns each region's address. Raises BenchmarkFailed (see ``Processes.wait_ready``).
    """
    nodes = {}
    for region, url in urls.items():
        port = free_port()
        nodes[region] = running.start_python(f"node-{region.value}", node_argv(region, url, port, jwks), port=port)
    await running.wait_all_ready((node, grpc_serving(f"127.0.0.1:{node.port}")) for node in nodes.values())
    return {region: f"127.0.0.1:{node.port}" for region, node in nodes.items()}


async def start_gateway(
    running: Processes, name: str, *, db: Path, keys: Path, nodes: dict[Region, str], env: dict[str, str] | None = None
) -> Component:
    """Start a gateway over ``nodes`` (with ``env`` added to its environment) and wait
    until ``/healthz`` answers from its port.

    Raises BenchmarkFailed (see ``Processes.wait_ready``).
    """
    port = free_port()
    argv = ["jjj", "gateway", "--listen", f"127.0.0.1:{port}", "--grpc-listen", "127.0.0.1:0"]
    argv += ["--db", f"sqlite:///{db}", "--keys-dir", str(keys)]
    argv += ["--nodes", ",".join(f"{region.value}={address}" for region, address in nodes.items())]
    gateway = running.start_python(name, argv, port=port, env=env)
    await running.wait_ready(gateway, http_ok(f"http://127.0.0.1:{port}/healthz"))
    return gateway


async def start_skeleton(running: Processes) -> Component:
    """The floor: three skeleton nodes and the skeleton's front door, four processes."""
    nodes = []
    for i in range(3):
        port = free_port()
        nodes.append(
            running.start_python(f"skeleton-node-{i + 1}", ["bench.skeleton", "node", "--port", str(port)], port=port)
        )
    await running.wait_all_ready((node, grpc_serving(f"127.0.0.1:{node.port}")) for node in nodes)
    port = free_port()
    addresses = ",".join(f"127.0.0.1:{node.port}" for node in nodes)
    front = running.start_python(
        "skeleton-front", ["bench.skeleton", "front", "--port", str(port), "--nodes", addresses], port=port
    )
    await running.wait_ready(front, http_ok(f"http://127.0.0.1:{port}/healthz"))
    return front


async def node_calls(http: aiohttp.ClientSession, base: str) -> dict[tuple[str, str], float]:
    """The gateway's count of calls to each region's node, by region and gRPC code."""
    async with http.get(base + "/metrics") as reply:
        text = await reply.text()
    pattern = re.compile(r'^jjj_gateway_node_calls_total\{code="(\w+)",region="(\w+)"\} ([0-9.e+]+)$', re.M)
    return {(region, code): float(value) for code, region, value in pattern.findall(text)}


async def query_items(http: aiohttp.ClientSession, base: str) -> tuple[float, float]:
    """The gateway's count of calls that carried subject queries, and of the queries they
    carried, over all regions (``jjj_gateway_node_query_items``)."""
    async with http.get(base + "/metrics") as reply:
        text = await reply.text()
    totals = {"count": 0.0, "sum": 0.0}
    for part, value in re.findall(r"^jjj_gateway_node_query_items_(count|sum)\{[^}]*\} ([0-9.e+]+)$", text, re.M):
        totals[part] += float(value)
    return totals["count"], totals["sum"]


def check_every_node_answered(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float], calls: int, what: str
) -> None:
    """Raises BenchmarkFailed unless, by the gateway's own count, each region's node
    answered at least ``calls`` calls between ``before`` and ``after`` and none failed."""
    for region in Region:
        answered = after.get((region.value, "OK"), 0) - before.get((region.value, "OK"), 0)
        failed = {
            code: after[key] - before.get(key, 0)
            for key in after
            if key[0] == region.value and (code := key[1]) != "OK" and after[key] > before.get(key, 0)
        }
        if failed or answered < calls:
            raise BenchmarkFailed(
                f"{what}: the {region.value} node answered {answered:.0f} calls where {calls} were due"
                + (f", and calls to it failed: {failed}" if failed else "")
                + "; the figure is void"
            )


TOTAL = "**all processes**"
BUSY = "cores busy (all processes' CPU time ÷ the run's time)"
WAITED = "waiting for a CPU (run-queue time of the processes above but the load generator)"


@dataclass(frozen=True)
class Sample:
    """A reading per process before and after a run."""

    before: dict[str, float]
    after: dict[str, float]


@dataclass
class CpuTable:
    """CPU seconds per answer of every process, one column per capacity run."""

    columns: list[str] = field(default_factory=list)
    rows: dict[str, list[str]] = field(default_factory=dict)

    def add(self, column: str, run: Closed, cpu: Sample, waits: Sample) -> None:
        """A column for ``run``: ``cpu`` and ``waits`` hold each process's CPU seconds and
        run-queue seconds, before and after it."""
        spent = {name: cpu.after[name] - cpu.before.get(name, 0.0) for name in cpu.after}
        spent[f"load generator: {tool_name()}"] = run.cpu
        waited = sum(waits.after[name] - waits.before.get(name, 0.0) for name in waits.after)
        total = sum(spent.values())
        cells = {name: f"{seconds / run.answered * 1000:.2f} ms" for name, seconds in spent.items()}
        cells[TOTAL] = f"**{total / run.answered * 1000:.2f} ms**"
        cells[BUSY] = f"{total / run.seconds:.2f} of {os.cpu_count()}"
        cells[WAITED] = f"{waited / run.answered * 1000:.2f} ms"
        for name in cells:
            self.rows.setdefault(name, [""] * len(self.columns))
        for name, row in self.rows.items():
            row.append(cells.get(name, ""))
        self.columns.append(column)

    def markdown(self) -> str:
        lines = [f"| process | {' | '.join(self.columns)} |", "|---|" + "---|" * len(self.columns)]
        last = (TOTAL, BUSY, WAITED)
        for name in [name for name in self.rows if name not in last] + [name for name in last if name in self.rows]:
            lines.append(f"| {name} | {' | '.join(self.rows[name])} |")
        return "\n".join(lines)


def regions_missing(data: dict[str, Any], *, allowed_missing: Region | None = None) -> list[str]:
    """The regions (but ``allowed_missing``) a report's answer does not hold as answered,
    each with the report's reason."""
    regions = {entry["region"]: entry for entry in data["report"]["regions"]}
    return [
        f"{region.value}: {regions[region.value]['reason']}" if region.value in regions else f"{region.value}: absent"
        for region in Region
        if region is not allowed_missing and regions.get(region.value, {}).get("status") != "answered"
    ]


def _also_missing(lacking: Counter[str]) -> str:
    """Which other regions some answers lacked, and why (the commonest reasons)."""
    if not lacking:
        return ""
    return "; other regions missing: " + ", ".join(f"{reason} ×{n}" for reason, n in lacking.most_common(3))


async def main(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    subjects = int(args.records / ROWS_PER_SUBJECT)
    figures: dict[str, str] = {}
    cpu = CpuTable()

    def note(key: str, value: str) -> None:
        figures[key] = value
        print(f"{key}: {value}", flush=True)

    with processes(work / "logs") as running:
        keys = KeyStore(work / "keys")
        keys.ensure()
        jwks = work / "gateway-jwks.json"
        jwks.write_text(json.dumps(keys.keyring().jwks()), encoding="utf-8")
        urls = {region: f"sqlite:///{work / f'{region.value}-{subjects}.db'}" for region in Region}
        await seed_missing(running, urls, subjects)
        nodes = await start_nodes(running, urls, jwks)
        proxies = {region: Proxy(int(address.rsplit(":", 1)[1])) for region, address in nodes.items()}
        for proxy in proxies.values():
            await proxy.start()
        # A fresh registry each run: a new gateway then follows the nodes' change feeds
        # from their heads, instead of from wherever an earlier run (perhaps over other
        # databases) left its cursors.
        gateway_db = work / "gateway.db"
        for stale in (gateway_db, *(gateway_db.with_name(gateway_db.name + end) for end in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        registry = Registry.open(f"sqlite:///{gateway_db}")
        seed_demo_accounts(registry)
        registry.close()
        # Two gateways on the same keys and registry: one talks to the nodes directly and
        # is measured against the skeleton (which has no proxies either); the other goes
        # through the proxies, for the runs with a delayed, stopped or slowed node.
        direct = await start_gateway(
            running,
            "gateway",
            db=gateway_db,
            keys=work / "keys",
            nodes=nodes,
            env={"JJJ_GATEWAY_LOOKUPS_PER_MINUTE": str(BENCH_LOOKUPS_PER_MINUTE)},
        )
        proxied_nodes = {region: f"127.0.0.1:{proxy.port}" for region, proxy in proxies.items()}
        proxied = await start_gateway(
            running, "gateway-proxied", db=gateway_db, keys=work / "keys", nodes=proxied_nodes
        )
        front = await start_skeleton(running)
        base, faulty = f"http://127.0.0.1:{direct.port}", f"http://127.0.0.1:{proxied.port}"
        floor = f"http://127.0.0.1:{front.port}"
        print(f"all {len(running.components)} components ready; logs in {running.logs}", flush=True)

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
            lacking: Counter[str] = Counter()  # why reports lacked a region

            async def report(via: str = base, *, allowed_missing: Region | None = None) -> bool:
                body = {"subject": rng.choice(pool), "years": 3}
                async with http.post(via + "/api/v1/reports", json=body, headers=auth) as reply:
                    if reply.status != 201:
                        return False
                    data = await reply.json()
                    if len(issued) < 200:
                        issued.append({"jws": data["jws"], "code": data["verification_code"]})
                    missing = regions_missing(data, allowed_missing=allowed_missing)
                    lacking.update(missing)
                    return not missing

            # Warm-up (page caches, catalogues, connections), and a first look at whether
            # both gateways reach every node.
            for via in (base, faulty):
                failed = [ok for ok in [await report(via) for _ in range(150)] if not ok]
                if failed:
                    raise BenchmarkFailed(
                        f"{len(failed)} of 150 warm-up reports from {via} lacked a region: {lacking.most_common(3)}"
                    )

            reports = Requests(
                "reports",
                "POST",
                [("/api/v1/reports", json.dumps({"subject": s, "years": 3}).encode()) for s in pool[:1000]],
                201,
                {**auth, "Content-Type": "application/json"},
                must_hold=b'"regions":[',
                must_not_hold=b'"status":"unavailable"',
            )
            skeleton = Requests("skeleton", "POST", [("/", b"x" * 64)], 200, {})

            async def measure(url: str, requests: Requests, *, cpu_column: str = "", fans_out: bool = False) -> Closed:
                (await closed_loop(url, requests, seconds=3, work=work)).check(f"{requests.name} warm-up")
                calls_before = await node_calls(http, base)
                # Read after the counters, whose reading costs the gateway CPU.
                cpu_before, waits_before = running.cpu(), running.runqueue()
                run = await closed_loop(url, requests, seconds=args.seconds, work=work)
                cpu_after, waits_after = running.cpu(), running.runqueue()
                calls_after = await node_calls(http, base)
                print(f"  {requests.name}: {run.summary()}", flush=True)
                running.check_alive(f"during the {requests.name} capacity run")
                run.check(f"{requests.name} capacity")
                if fans_out:
                    check_every_node_answered(calls_before, calls_after, run.answered, f"{requests.name} capacity")
                if cpu_column:
                    cpu.add(cpu_column, run, Sample(cpu_before, cpu_after), Sample(waits_before, waits_after))
                return run

            print(f"capacity, closed loop with {tool_name()}:", flush=True)
            items_before = await query_items(http, base)
            ours = await measure(base, reports, cpu_column="per signed report (gateway run)", fans_out=True)
            items_after = await query_items(http, base)
            bare = await measure(floor, skeleton, cpu_column="per request (skeleton run)")
            note(
                "Signed three-region reports/s (capacity)",
                f"{ours.rate:,.0f}/s; skeleton {bare.rate:,.0f}/s; ratio {ours.rate / bare.rate:.2f} "
                f"({tool_name()}, {CONNECTIONS} in flight; gateway p50 {ours.p50 * 1000:.1f} ms, "
                f"p99 {ours.p99 * 1000:.1f} ms)",
            )
            node_calls_made = items_after[0] - items_before[0]
            note(
                "Subject queries per node call (capacity run)",
                f"{(items_after[1] - items_before[1]) / max(1.0, node_calls_made):.2f} "
                f"({node_calls_made:,.0f} calls to the three nodes)",
            )
            print("CPU per answer, by process:\n" + cpu.markdown(), flush=True)
            load = max(ours.rate, 10.0)  # what the runs below are scaled from

            steady = await open_loop(0.6 * ours.rate, 10, report)
            running.check_alive("during the latency run")
            if steady.errors:
                raise BenchmarkFailed(
                    f"latency at 60 % of capacity: {steady.summary()}; the figure is void "
                    f"(regions missing: {lacking.most_common(3)})"
                )
            note("Latency at 60 % of capacity", steady.summary())

            for proxy in proxies.values():
                proxy.delay = 0.05
            for _ in range(50):
                await report(faulty)
            lacking.clear()
            delayed = await open_loop(20, 5, lambda: report(faulty))
            running.check_alive("during the delayed run")
            note("Every node delayed 50 ms", delayed.summary() + _also_missing(lacking))
            for proxy in proxies.values():
                proxy.delay = 0.0

            by_code = Requests(
                "verify-code",
                "GET",
                [(f"/api/v1/verify/{i['code']}", b"") for i in issued[:200]],
                200,
                {},
                must_hold=b'"genuine": true',
            )
            coded = await measure(base, by_code, cpu_column="per verification by code")
            by_jws = Requests(
                "verify-jws",
                "POST",
                [("/api/v1/verify", i["jws"].encode()) for i in issued[:50]],
                200,
                {"Content-Type": "text/plain"},
                must_hold=b'"genuine": true',
            )
            signed = await measure(base, by_jws)
            note(
                "Verifications/s over HTTP",
                f"by code (GET) {coded.rate:,.0f}/s, p50 {coded.p50 * 1000:.1f} ms, p99 {coded.p99 * 1000:.1f} ms; "
                f"signed report (POST) {signed.rate:,.0f}/s ({tool_name()})",
            )

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
                        missing = regions_missing(data, allowed_missing=Region.HEBEI)
                        lacking.update(missing)
                        return not missing
                    return False

            before = await node_calls(http, faulty)
            lacking.clear()
            stopped = await open_loop(0.5 * load, 6, report_incomplete)
            after = await node_calls(http, faulty)
            running.check_alive("during the run with a node stopped")
            hebei_calls = sum(
                value - before.get(key, 0)
                for key, value in after.items()
                if key[0] == "hebei" and key[1] != "CIRCUIT_OPEN"
            )
            requests = stopped.done + stopped.errors
            note(
                "One node stopped",
                f"{stopped.summary()}; {incomplete} marked incomplete; "
                f"max {max(stopped.latencies, default=0) * 1000:.0f} ms "
                f"(deadline 3000 ms); calls to the stopped node {hebei_calls:.0f} for {requests} requests "
                f"({hebei_calls / max(1, requests):.2f}×)" + _also_missing(lacking),
            )
            hebei.refuse = False
            await asyncio.sleep(6)  # the breaker's cool-down, then a probe closes it
            await open_loop(5, 2, lambda: report(faulty))
            hebei.delay = 2.0
            lacking.clear()
            slowed = await open_loop(0.3 * load, 6, lambda: report(faulty, allowed_missing=Region.HEBEI))
            running.check_alive("during the run with a node slowed")
            note("One node slowed by 2 s", f"{slowed.summary()} (per-region deadline 2000 ms)" + _also_missing(lacking))
            hebei.delay = 0.0
        running.check_alive("before the figures were written")

    if args.write:
        write(Path(args.write), figures, cpu, args)


def write(path: Path, figures: dict[str, str], cpu: CpuTable, args: argparse.Namespace) -> None:
    targets = {
        "Signed three-region reports/s (capacity)": "≥ 500/s, ratio to the four-process skeleton ≥ 0.3",
        "Latency at 60 % of capacity": "p50 ≤ 5 ms, p99 ≤ 20 ms",
        "Every node delayed 50 ms": "p50 ≤ 60 ms",
        "Verifications/s over HTTP": "≥ 2 500/s",
        "One node stopped": "all answered within the deadline, marked incomplete; ≤ 1.2× calls",
        "One node slowed by 2 s": "p99 ≤ per-region deadline + 20 ms",
    }
    rows = "\n".join(f"| {key} | {targets.get(key, '')} | {value} |" for key, value in figures.items())
    notes_path = path.with_name("BENCHMARKS-gateway-notes.md")
    notes = notes_path.read_text(encoding="utf-8") if notes_path.exists() else ""
    seconds = f" --seconds {args.seconds:g}" if args.seconds != DEFAULT_SECONDS else ""
    section = f"""
## Gateway ({args.records:,} records per node, three nodes, SQLite)

`python -m bench.gateway --records {args.records}{seconds} --write docs/BENCHMARKS.md`,
run {time.strftime("%Y-%m-%d")} on {machine()}.
Every component runs in its own process, as deployed: three nodes; a gateway connected
to them directly; a second gateway whose node connections pass through small TCP proxies
in the load generator's process, for the runs with a delayed, stopped or slowed node;
and the skeleton, the floor any gateway of this shape stands on — three gRPC servers
answering {ANSWER_BYTES:,} fixed bytes (about a real node's answer) and a front door that takes the
HTTP request, calls all three at once, joins their answers and signs them with Ed25519
(`bench.skeleton`), four processes. All of them and the load generator share the two
cores. Each listens on a port the OS chose, and answered its readiness check (gRPC health
`SERVING` for nodes, `GET /healthz` 200 for the gateways and the front door) from that
port, owning it alone, before anything was measured. The run stops and writes nothing
when a component exits or is not ready, or when a measured report lacks a region: every
answer is checked, and so is the gateway's own count of its calls to each node.

Capacity is closed-loop: {tool_name()}, {CONNECTIONS} requests in flight, {args.seconds:.0f} s after a 3 s
warm-up, every answer checked (status, and for reports every region answered). The
gateway and the skeleton are measured one after the other in the same run, and the ratio
is the gateway's rate over the skeleton's. Latency at 60 % of capacity is open-loop
(requests sent at a fixed rate by a Python generator, latency counted from when each was
due; any error voids it). Verification is measured closed-loop, as capacity, by code
(`GET /api/v1/verify/{{code}}` over the codes of 200 reports just issued) and of signed
reports (`POST /api/v1/verify`); the load comes from one address, so the measured gateway
allows {BENCH_LOOKUPS_PER_MINUTE:,} lookups a minute (`JJJ_GATEWAY_LOOKUPS_PER_MINUTE`; 60 by default).

| what | target | measured |
|---|---|---|
{rows}

CPU per answer of each process during the two capacity runs: user and system time from
`/proc/<pid>/stat` before and after the run (the load generator's from the kernel's
account of it when it exits), divided by the answers. Processes off the measured path
show what they spent meanwhile. How busy the two cores were, and how long the processes
waited for one (run-queue time from `/proc/<pid>/task/*/schedstat`), tell how much of a
rate this machine's other work took.

{cpu.markdown()}

{notes}"""
    write_section(path, "Gateway (", section)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="length of each capacity run")
    parser.add_argument("--work", default="var/bench-gateway")
    parser.add_argument("--write")
    args = parser.parse_args()
    main_or_fail(lambda: main(args))
