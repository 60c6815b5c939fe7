"""Several gateway processes on one PostgreSQL database behave as one instance.

Two ``jjj gateway`` processes (two replicas behind a load balancer, or two workers) over
three real nodes: a session ended through one is refused by the other within the bound
(auth.ENDED_REFRESH), five wrong passwords spread over both lock the account in both, a
batch job whose process is killed mid-way is finished by the other with every row once,
and ``jjj audit verify`` finds the one audit chain they wrote intact. Then two gateways
in one test process: one follows each change feed, every one sees what it supersedes,
and the other takes the feeds over when the follower stops."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from credit.audit import Action
from credit.regions import Region
from credit.rules import RecordStatus
from gateway.access.auth import ENDED_REFRESH
from gateway.batch.jobs import results
from gateway.demo import seed_demo_accounts
from gateway.registry import Registry
from gateway.server import start_gateway
from gateway.settings import GatewaySettings
from infra.auditlog import entries
from infra.db import sync_engine
from infra.leases import Leases
from nodes.records import make_draft
from nodes.seed import generate, synthetic_subject
from tests.conftest import NodeHandle, StartNode, load
from tests.gateway.conftest import TODAY, Api, start_demo_nodes
from tests.gateway.processes import ROOT, GatewayProcess, alive, start_gateway_process

LEASE = 2  # seconds: a dead holder's batch job is taken over within a few
SUBJECTS = 100_000  # 20 chunks a region: long enough to be killed half-way


def _nodes_arg(nodes: dict[Region, NodeHandle]) -> str:
    return ",".join(f"{region.value}={handle.address}" for region, handle in nodes.items())


async def _start_pair(pg_url: str, tmp_path: Path, nodes: dict[Region, NodeHandle]) -> list[GatewayProcess]:
    args = (
        "--db", pg_url, "--keys-dir", str(tmp_path / "keys"), "--nodes", _nodes_arg(nodes),
        "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
    )  # fmt: skip
    env = {"JJJ_GATEWAY_LEASE_SECONDS": str(LEASE), "JJJ_LOG_FORMAT": "json"}
    return list(
        await asyncio.gather(
            start_gateway_process(*args, env=env, log=tmp_path / "a.log"),
            start_gateway_process(*args, env=env, log=tmp_path / "b.log"),
        )
    )


async def _status(api: Api, path: str, token: str | None = None) -> int:
    status, _, _ = await api.call("GET", path, token)
    return status


async def _sessions_end_everywhere(one: Api, other: Api) -> None:
    token = await one.login("clean-co", "demo-clean-2024")
    assert await _status(other, "/api/v1/reports/JJJ-NONE", token) == 404  # honoured there, and remembered
    status, _, _ = await one.call("POST", "/api/v1/logout", token)
    assert status == 204
    ended = time.monotonic()
    assert await _status(one, "/api/v1/reports/JJJ-NONE", token) == 401  # at once where it ended
    while await _status(other, "/api/v1/reports/JJJ-NONE", token) != 401:
        assert time.monotonic() - ended < ENDED_REFRESH + 3, "the other process still honours the ended session"
        await asyncio.sleep(0.1)
    assert await _status(other, "/api/v1/reports/JJJ-NONE", token) == 401


async def _wrong_passwords_lock_everywhere(one: Api, other: Api) -> None:
    for api in (one, other, one, other, one):
        status, body, _ = await api.call("POST", "/api/v1/login", json={"username": "bank", "password": "wrong-guess"})
        assert status == 401, body
    for api in (other, one):  # locked in both, even with the right password
        status, body, reply = await api.call(
            "POST", "/api/v1/login", json={"username": "bank", "password": "demo-bank-2024"}
        )
        assert status == 429, body
        assert int(reply.headers["Retry-After"]) > 0


def _holder_pid(leases: Leases, name: str) -> int | None:
    held = leases.holders(name).get(name)
    return int(held[0].split("/")[1]) if held is not None else None


def _answers(pg_url: str, job_id: str) -> int:
    engine = sync_engine(pg_url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).select_from(results).where(results.c.job_id == job_id)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def _done_entries(pg_url: str, job_id: str) -> int:
    engine = sync_engine(pg_url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(
                entries.c.action == Action.BATCH_CHECK.value, entries.c.detail.startswith(f"{job_id} done")
            )
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


async def _batch_survives_its_holder(pg_url: str, gateways: list[GatewayProcess], apis: list[Api]) -> None:
    listed = [synthetic_subject(Region.TIANJIN, i).id for i in range(SUBJECTS)]
    officer = await apis[0].login("agency", "demo-agency-2024")
    status, job, _ = await apis[0].call(
        "POST",
        "/api/v1/batches?purpose=%E8%B5%84%E6%A0%BC%E5%AE%A1%E6%9F%A5",
        officer,
        data=io.BytesIO("\n".join(listed).encode()),
        headers={"Content-Type": "text/plain"},
    )
    assert status == 202, job
    job_id, total = job["job_id"], SUBJECTS // 5_000 * 3

    # The process running the job is the one holding its lease: killed once it has
    # answers stored, and before it has them all.
    registry_leases = Leases(sync_engine(pg_url), holder="test")
    try:
        holder: int | None = None
        deadline = time.monotonic() + 120
        while holder is None or await asyncio.to_thread(_answers, pg_url, job_id) == 0:
            assert time.monotonic() < deadline, "the job did not start"
            holder = await asyncio.to_thread(_holder_pid, registry_leases, f"batch:{job_id}")
            await asyncio.sleep(0.02)
        killed = next(g for g in gateways if g.pid == holder)
        killed.process.send_signal(signal.SIGKILL)
        await killed.process.wait()
        before = await asyncio.to_thread(_answers, pg_url, job_id)
        assert 0 < before < total, f"{before} of {total} answers when its process was killed: not half-way"

        survivor = apis[1 - gateways.index(killed)]
        token = await survivor.login("agency", "demo-agency-2024")
        deadline = time.monotonic() + 300
        while (body := (await survivor.call("GET", f"/api/v1/batches/{job_id}", token))[1])["status"] != "done":
            assert time.monotonic() < deadline, f"the survivor did not finish the job: {body}"
            await asyncio.sleep(0.2)
        assert await asyncio.to_thread(_answers, pg_url, job_id) == total  # one answer per chunk and region
        assert await asyncio.to_thread(registry_leases.holders, "batch:") == {}  # given back once done
    finally:
        registry_leases.engine.dispose()

    status, text, _ = await survivor.call("GET", f"/api/v1/batches/{job_id}/table.csv", token)
    assert status == 200
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))[1:]
    assert [int(row[0]) for row in rows] == list(range(1, SUBJECTS + 1))  # no row missing, none twice
    assert [row[1] for row in rows] == listed
    assert all(row[4] in ("三地均无记录", "有记录", "重复") for row in rows)  # every region answered every row
    assert await asyncio.to_thread(_done_entries, pg_url, job_id) == 1  # finished once


def _audit_verify(pg_url: str, keys: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    jwks = tmp_path / "jwks.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    written = subprocess.run(
        [sys.executable, "-m", "jjj", "keys", "jwks", "--keys-dir", str(keys)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    jwks.write_text(written.stdout, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "jjj", "audit", "verify", "--db", pg_url, "--jwks", str(jwks)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )  # fmt: skip


async def test_two_gateway_processes_on_one_database_act_as_one(
    pg_url: str, tmp_path: Path, start_node_at: StartNode
) -> None:
    nodes = await start_demo_nodes(tmp_path, start_node_at)
    registry = Registry.open(pg_url)
    seed_demo_accounts(registry)
    registry.close()
    gateways = await _start_pair(pg_url, tmp_path, nodes)
    try:
        async with aiohttp.ClientSession() as http:
            apis = [Api(http, gateway.url) for gateway in gateways]
            await _sessions_end_everywhere(apis[0], apis[1])
            await _sessions_end_everywhere(apis[1], apis[0])
            await _wrong_passwords_lock_everywhere(apis[0], apis[1])
            await _batch_survives_its_holder(pg_url, gateways, apis)
    finally:
        statuses = [await gateway.stop() for gateway in gateways]
    assert sorted(statuses) == [-signal.SIGKILL, 0]  # the survivor stopped cleanly on SIGTERM
    assert not any(alive(gateway.pid) for gateway in gateways)

    verified = await asyncio.to_thread(_audit_verify, pg_url, tmp_path / "keys", tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "INTACT" in verified.stdout


async def _verify_status(api: Api, code: str) -> str:
    status, body, _ = await api.call("GET", f"/api/v1/verify/{code}")
    assert status == 200, body
    return str(body["status"])


async def _until_superseded(apis: list[Api], code: str) -> None:
    deadline = time.monotonic() + 60
    while any([await _verify_status(api, code) != "superseded" for api in apis]):
        assert time.monotonic() < deadline, "not superseded everywhere"
        await asyncio.sleep(0.1)


def _revoke(nodes: dict[Region, NodeHandle], region: Region, record_id: str) -> None:
    """An authority revokes a record (after an objection): a new version on its region's feed."""
    drafts = [d for batch in generate(region, subjects=0, today=TODAY) for d in batch]
    original = next(d for d in drafts if d.record_id == record_id)
    fields = {f.name: getattr(original, f.name) for f in dataclasses.fields(original)}
    revoked = make_draft(
        **{name: value for name, value in fields.items() if name not in ("content_hash", "status")},
        status=RecordStatus.REVOKED,
    )
    load(nodes[region].node.settings.db_url, [revoked], source="objection-upheld")


async def test_one_process_follows_each_feed_and_every_process_sees_what_it_supersedes(
    pg_url: str, tmp_path: Path, start_node_at: StartNode
) -> None:
    nodes = await start_demo_nodes(tmp_path, start_node_at)
    settings = GatewaySettings.from_env(
        {},
        listen="127.0.0.1:0",
        grpc_listen="127.0.0.1:0",
        db_url=pg_url,
        keys_dir=str(tmp_path / "keys"),
        nodes={region: handle.address for region, handle in nodes.items()},
        lease_seconds=1,
    )
    first = await start_gateway(settings)
    second = await start_gateway(settings)
    running = [first, second]
    leases = Leases(sync_engine(pg_url), holder="test")
    try:
        seed_demo_accounts(first.registry)
        holders = {gateway.watcher.leases.holder: gateway for gateway in running if gateway.watcher is not None}
        deadline = time.monotonic() + 30
        while len(feeds := leases.holders("feed:")) < 3:
            assert time.monotonic() < deadline, feeds
            await asyncio.sleep(0.1)
        assert {holder for holder, _ in feeds.values()} <= set(holders)
        follower = holders[feeds["feed:beijing"][0]]
        other = second if follower is first else first

        async with aiohttp.ClientSession() as http:
            apis = [Api(http, gateway.url) for gateway in running]
            # A report issued through the process that does not follow Beijing's feed …
            owner = await apis[running.index(other)].login("records-co", "demo-records-2024")
            _, issued, _ = await apis[running.index(other)].call("POST", "/api/v1/reports", owner, json={"years": 3})
            records = [
                (Region(cell["region"]), record["record_id"])
                for line in issued["report"]["lines"]
                for cell in line["cells"]
                for record in cell.get("records", ())
            ]
            beijing = next(record_id for region, record_id in records if region is Region.BEIJING)
            later = next((region, record_id) for region, record_id in records if region is not Region.BEIJING)
            assert {await _verify_status(api, issued["verification_code"]) for api in apis} == {"valid"}
            # … is superseded by a change the follower marks, and both processes say so.
            _revoke(nodes, Region.BEIJING, beijing)
            await _until_superseded(apis, issued["verification_code"])

            # The follower stops: the other takes its feeds over and marks the next change.
            await follower.stop()
            running.remove(follower)
            apis = [Api(http, other.url)]
            _, again, _ = await apis[0].call("POST", "/api/v1/reports", owner, json={"years": 3})
            assert await _verify_status(apis[0], again["verification_code"]) == "valid"
            assert other.watcher is not None
            deadline = time.monotonic() + 30
            while {holder for holder, _ in leases.holders("feed:").values()} != {other.watcher.leases.holder}:
                assert time.monotonic() < deadline, "the feeds were not taken over"
                await asyncio.sleep(0.1)
            _revoke(nodes, *later)
            await _until_superseded(apis, again["verification_code"])
    finally:
        for gateway in running:
            await gateway.stop()
        leases.engine.dispose()
