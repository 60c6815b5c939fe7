"""Closed-loop load for capacity: a fixed number of requests in flight, each connection
sending its next request as soon as its last one was answered, for a fixed time.

wrk does it when it is installed (``apt-get install wrk``); otherwise a Python generator
does the same, slower and at a higher CPU cost per request, which the written figures
then say. Every answer is checked, not just counted: the wrong status, or a body
without what it must hold (or with what it must not), is a bad answer, and a run with
any bad answer, socket error or timeout raises ``BenchmarkFailed`` instead of giving a
figure.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.procs import BenchmarkFailed, run_measured

CONNECTIONS = 8
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Requests:
    """What a run sends, one of ``choices`` ((path, body) pairs) at random each time, and
    what a good answer is."""

    name: str
    method: str
    choices: list[tuple[str, bytes]]
    status: int
    headers: dict[str, str]
    must_hold: bytes = b""
    must_not_hold: bytes = b""

    def good(self, status: int, body: bytes) -> bool:
        return (
            status == self.status
            and (not self.must_hold or self.must_hold in body)
            and (not self.must_not_hold or self.must_not_hold not in body)
        )


@dataclass(frozen=True)
class Closed:
    """One closed-loop run: answers, how many were bad, socket errors, latencies, and the
    CPU seconds the load generator itself spent."""

    tool: str
    answered: int
    seconds: float
    bad: int
    errors: int
    p50: float
    p99: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.answered / self.seconds

    def summary(self) -> str:
        return (
            f"{self.rate:,.0f}/s ({self.answered:,} in {self.seconds:.1f} s, {CONNECTIONS} in flight), "
            f"p50 {self.p50 * 1000:.1f} ms, p99 {self.p99 * 1000:.1f} ms"
        )

    def check(self, what: str) -> None:
        """Raises BenchmarkFailed when any answer was bad or missing."""
        if self.answered == 0 or self.bad or self.errors:
            raise BenchmarkFailed(
                f"{what}: {self.bad} bad answers and {self.errors} socket errors or timeouts "
                f"in {self.answered} answers ({self.tool}); the figure is void"
            )


def wrk_installed() -> bool:
    return shutil.which("wrk") is not None


def tool_name() -> str:
    return "wrk" if wrk_installed() else "Python (aiohttp)"


async def closed_loop(base: str, requests: Requests, *, seconds: float, work: Path) -> Closed:
    """Load ``base`` closed-loop for ``seconds`` with wrk, or with Python without it."""
    if wrk_installed():
        return await _wrk(base, requests, seconds=seconds, work=work)
    return await _python(base, requests, seconds=seconds)


def _lua(text: bytes) -> str:
    decoded = text.decode("ascii")
    if "]==]" in decoded:
        raise ValueError("cannot quote a string holding ]==] as a Lua long string")
    return f"[==[{decoded}]==]"


def wrk_script(requests: Requests) -> str:
    """A wrk script sending ``requests`` and counting bad answers, whose ``done`` prints
    one ``RESULT`` line for ``_wrk`` to read."""
    choices = ",\n".join(f"  {{{_lua(path.encode())}, {_lua(body)}}}" for path, body in requests.choices)
    headers = ", ".join(f"[ {_lua(k.encode())} ] = {_lua(v.encode())}" for k, v in requests.headers.items())
    return f"""-- written by bench.load for {requests.name}
local choices = {{
{choices}
}}
local headers = {{{headers}}}
local want_status = {requests.status}
local must_hold = {_lua(requests.must_hold)}
local must_not_hold = {_lua(requests.must_not_hold)}
local prepared = {{}}
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(7)
  for i, choice in ipairs(choices) do
    local body = choice[2]
    if body == "" then body = nil end
    prepared[i] = wrk.format("{requests.method}", choice[1], headers, body)
  end
  bad = 0
end

function request()
  return prepared[math.random(#prepared)]
end

function response(status, headers, body)
  if status ~= want_status
    or (must_hold ~= "" and not string.find(body, must_hold, 1, true))
    or (must_not_hold ~= "" and string.find(body, must_not_hold, 1, true)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, bad_total,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99))))
end
"""


async def _wrk(base: str, requests: Requests, *, seconds: float, work: Path) -> Closed:
    script = work / f"wrk-{requests.name}.lua"
    script.write_text(wrk_script(requests), encoding="ascii")
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--timeout", f"{TIMEOUT_SECONDS}s"]
    finished = await run_measured([*argv, "-s", str(script), base], timeout=seconds + 60)
    line = next((ln for ln in finished.output.splitlines() if ln.startswith("RESULT ")), "")
    if finished.returncode != 0 or not line:
        raise BenchmarkFailed(f"wrk failed (exit {finished.returncode}):\n{finished.output}")
    answered, duration_us, errors, bad, p50_us, p99_us = (int(v) for v in line.split()[1:])
    return Closed("wrk", answered, duration_us / 1e6, bad, errors, p50_us / 1e6, p99_us / 1e6, finished.cpu)


async def _python(base: str, requests: Requests, *, seconds: float) -> Closed:
    rng = random.Random(7)
    latencies: list[float] = []
    bad = errors = 0
    cpu_before = time.process_time()
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started = time.perf_counter()
        stop = started + seconds

        async def connection() -> None:
            nonlocal bad, errors
            while time.perf_counter() < stop:
                path, body = rng.choice(requests.choices)
                sent = time.perf_counter()
                try:
                    async with http.request(
                        requests.method, base + path, data=body or None, headers=requests.headers
                    ) as reply:
                        answer = await reply.read()
                except (TimeoutError, aiohttp.ClientError):
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                bad += not requests.good(reply.status, answer)

        await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))] if latencies else 0.0

    cpu = time.process_time() - cpu_before
    return Closed("Python (aiohttp)", len(latencies), elapsed, bad, errors, pct(50), pct(99), cpu)
