"""A region whose node is down is served from another region's replica, and says so.

Real nodes and a real gateway on loopback: Tianjin holds the demo records; Beijing and
Hebei follow Tianjin's change feed. Then Tianjin's node stops.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pypdf import PdfReader

from credit.clock import beijing_text
from credit.regions import Region
from gateway.access.keys import KeyStore
from gateway.demo import seed_demo_accounts
from gateway.reports.pdf import render, verify_pdf
from gateway.server import RunningGateway, start_gateway
from gateway.settings import GatewaySettings
from nodes.seed import generate
from tests.conftest import NodeHandle, StartNode
from tests.gateway import sealing
from tests.gateway.conftest import TODAY, Api, issue_on

StartGateway = Callable[..., Awaitable[tuple[Api, RunningGateway]]]


async def in_step(node: NodeHandle, origin: Region, *, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        cursor = (await asyncio.to_thread(node.node.replica.read_cursors)).get(origin)
        if cursor is not None and cursor.synced_at is not None and cursor.lag == 0:
            return
        assert loop.time() < deadline, f"{node.node.settings.region.value} not in step with {origin.value}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def federation(
    tmp_path: Path, start_node_at: StartNode
) -> AsyncIterator[tuple[dict[Region, NodeHandle], StartGateway]]:
    KeyStore(tmp_path / "keys").ensure()
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(KeyStore(tmp_path / "keys").keyring().jwks()), encoding="utf-8")

    def drafts(region: Region) -> list[Any]:
        return [d for batch in generate(region, subjects=0, today=TODAY) for d in batch]

    nodes: dict[Region, NodeHandle] = {}
    nodes[Region.TIANJIN] = await start_node_at(
        Region.TIANJIN, f"sqlite:///{tmp_path / 'tianjin.db'}", drafts(Region.TIANJIN), gateway_jwks=str(jwks)
    )
    for region in (Region.BEIJING, Region.HEBEI):
        nodes[region] = await start_node_at(
            region,
            f"sqlite:///{tmp_path / region.value}.db",
            drafts(region),
            gateway_jwks=str(jwks),
            peers={Region.TIANJIN: nodes[Region.TIANJIN].address},
        )
    for region in (Region.BEIJING, Region.HEBEI):
        await in_step(nodes[region], Region.TIANJIN)

    gateways: list[RunningGateway] = []
    async with aiohttp.ClientSession() as http:

        async def start(name: str = "gw", **options: Any) -> tuple[Api, RunningGateway]:
            settings = GatewaySettings.from_env(
                {},
                listen="127.0.0.1:0",
                grpc_listen="127.0.0.1:0",
                db_url=f"sqlite:///{tmp_path / name}.db",
                keys_dir=str(tmp_path / "keys"),
                nodes={region: handle.address for region, handle in nodes.items()},
                deadline=3.0,
                region_deadline=1.0,
                **options,
            )
            running = await start_gateway(settings)
            issue_on(running, TODAY)
            seed_demo_accounts(running.registry)
            gateways.append(running)
            return Api(http, running.url), running

        yield nodes, start
        for running in gateways:
            await running.stop()


async def report(api: Api, login: tuple[str, str]) -> dict[str, Any]:
    token = await api.login(*login)
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={})
    assert status == 201, body
    return dict(body)


RECORDS_CO = ("records-co", "demo-records-2024")
CLEAN_CO = ("clean-co", "demo-clean-2024")


def region_entry(document: dict[str, Any], region: Region) -> dict[str, Any]:
    return dict(next(r for r in document["regions"] if r["region"] == region.value))


def cells(document: dict[str, Any], region: Region) -> list[dict[str, Any]]:
    return [c for line in document["lines"] for c in line["cells"] if c["region"] == region.value]


async def test_a_stopped_region_is_served_from_a_replica_and_says_so(federation) -> None:  # type: ignore[no-untyped-def]
    nodes, start = federation
    api, _ = await start()
    before = await report(api, RECORDS_CO)
    assert region_entry(before["report"], Region.TIANJIN)["source"] == "node"
    assert "served_by" not in region_entry(before["report"], Region.TIANJIN)

    await nodes[Region.TIANJIN].node.stop(0)
    after = await report(api, RECORDS_CO)
    tianjin = region_entry(after["report"], Region.TIANJIN)
    assert tianjin["status"] == "answered" and tianjin["source"] == "replica"
    assert tianjin["served_by"] in ("beijing", "hebei")
    assert tianjin["served_by_name"] == Region(tianjin["served_by"]).name_zh
    as_of = datetime.fromisoformat(tianjin["replica_as_of"])
    assert (datetime.now(UTC) - as_of).total_seconds() < 60
    # The same answer as Tianjin's own node gave, under the same catalogue and data as-of.
    node_before = region_entry(before["report"], Region.TIANJIN)
    assert tianjin["catalogue_version"] == node_before["catalogue_version"]
    assert tianjin["data_as_of"] == node_before["data_as_of"]
    assert cells(after["report"], Region.TIANJIN) == cells(before["report"], Region.TIANJIN)
    assert after["report"]["verdict"] == before["report"]["verdict"] == "has_records"
    for region in (Region.BEIJING, Region.HEBEI):
        assert region_entry(after["report"], region)["source"] == "node"

    clean = await report(api, CLEAN_CO)
    assert clean["report"]["verdict"] == "clean"  # the replica answered for everything Tianjin claims
    assert region_entry(clean["report"], Region.TIANJIN)["source"] == "replica"

    # The portal's report page and the printed report say where Tianjin's answer came from.
    token = await api.login(*RECORDS_CO)
    status, page, _ = await api.call(
        "GET", f"/reports/{after['report_no']}", headers={"Cookie": f"jjj_session={token}"}
    )
    assert status == 200
    as_of = beijing_text(tianjin["replica_as_of"])  # pages print Beijing time
    assert f"由{tianjin['served_by_name']}节点副本提供，数据截至 {as_of}" in page


async def test_a_replica_answer_keeps_the_objection_mark(federation) -> None:  # type: ignore[no-untyped-def]
    nodes, start = federation
    api, _ = await start()
    owner = await api.login(*RECORDS_CO)
    before = await report(api, RECORDS_CO)
    target = next(r for c in cells(before["report"], Region.TIANJIN) for r in c.get("records", ()))
    filing = {"report_no": before["report_no"], "record_id": target["record_id"], "reason": "该决定书送达对象有误"}
    status, case, _ = await api.call("POST", "/api/v1/objections", owner, json=filing)
    assert status == 201, case

    # Both followers hear of the open objection on Tianjin's feed.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    for region in (Region.BEIJING, Region.HEBEI):
        while True:
            held = await nodes[region].node.replica.current_for(Region.TIANJIN, before["report"]["subject"]["id"])
            if any(r.record_id == target["record_id"] and r.under_objection for r in held):
                break
            assert loop.time() < deadline, f"{region.value} never marked {target['record_id']}"
            await asyncio.sleep(0.05)

    await nodes[Region.TIANJIN].node.stop(0)
    after = await report(api, RECORDS_CO)
    assert region_entry(after["report"], Region.TIANJIN)["source"] == "replica"
    marked = {r["record_id"]: r for c in cells(after["report"], Region.TIANJIN) for r in c.get("records", ())}
    assert marked[target["record_id"]]["objection"] == "open"
    assert all("objection" not in r for rid, r in marked.items() if rid != target["record_id"])
    page = await api.call("GET", f"/reports/{after['report_no']}", headers={"Cookie": f"jjj_session={owner}"})
    assert "异议处理中" in page[1]


async def test_the_printed_report_carries_the_replica_note(federation) -> None:  # type: ignore[no-untyped-def]
    nodes, start = federation
    api, running = await start()
    await nodes[Region.TIANJIN].node.stop(0)
    body = await report(api, RECORDS_CO)
    url = "https://credit.example.cn/verify"
    pdf = await asyncio.to_thread(render, body["report"], body["jws"], verify_url=url, seal=sealing.federation().seal)
    keyring = KeyStore(Path(running.settings.keys_dir)).keyring()
    trust = sealing.federation().trust
    document = await asyncio.to_thread(verify_pdf, pdf, keyring, trust=trust, verify_url_for=lambda _doc: url)
    assert document == body["report"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    served_by = region_entry(body["report"], Region.TIANJIN)["served_by_name"]
    assert f"由{served_by}节点副本提供" in text.replace("\n", "")


async def test_beyond_the_staleness_limit_the_region_is_unavailable(federation) -> None:  # type: ignore[no-untyped-def]
    nodes, start = federation
    api, _ = await start(replica_max_age_seconds=0)
    await nodes[Region.TIANJIN].node.stop(0)
    body = await report(api, CLEAN_CO)
    tianjin = region_entry(body["report"], Region.TIANJIN)
    assert tianjin["status"] == "unavailable" and tianjin["source"] == "node"
    assert "beyond the 0 s limit" in tianjin["reason"] and "no usable replica" in tianjin["reason"]
    assert body["report"]["verdict"] == "incomplete"
    assert not any(c["outcome"] == "no_record" for c in cells(body["report"], Region.TIANJIN))


async def test_a_replica_that_has_fallen_behind_too_long_is_not_used(federation) -> None:  # type: ignore[no-untyped-def]
    nodes, start = federation
    api, _ = await start(replica_max_age_seconds=5)
    # Both followers were last in step with Tianjin two hours ago (Tianjin went down then).
    await nodes[Region.TIANJIN].node.stop(0)
    for region in (Region.BEIJING, Region.HEBEI):
        await nodes[region].node.stop_following()
        engine = nodes[region].node.replica.engine
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE replica_cursors SET synced_at = ? WHERE origin = 'tianjin'",
                (datetime(2025, 6, 16, 1, 0, tzinfo=UTC).replace(tzinfo=None).isoformat(sep=" "),),
            )
    await asyncio.sleep(1.1)  # the nodes read cursors at most once a second
    body = await report(api, CLEAN_CO)
    tianjin = region_entry(body["report"], Region.TIANJIN)
    assert tianjin["status"] == "unavailable"
    assert "2025-06-16T01:00:00Z" in tianjin["reason"] and "beyond the 5 s limit" in tianjin["reason"]
    assert body["report"]["verdict"] == "incomplete"


async def test_without_the_fallback_a_stopped_region_is_unavailable(federation) -> None:  # type: ignore[no-untyped-def]
    nodes, start = federation
    api, _ = await start(replica_fallback=False)
    await nodes[Region.TIANJIN].node.stop(0)
    body = await report(api, CLEAN_CO)
    tianjin = region_entry(body["report"], Region.TIANJIN)
    assert tianjin["status"] == "unavailable" and "replica" not in tianjin["reason"]
    assert body["report"]["verdict"] == "incomplete"


async def test_a_region_not_replicated_anywhere_stays_unavailable(federation) -> None:  # type: ignore[no-untyped-def]
    nodes, start = federation
    api, _ = await start()
    await nodes[Region.HEBEI].node.stop(0)  # nobody follows Hebei
    body = await report(api, CLEAN_CO)
    hebei = region_entry(body["report"], Region.HEBEI)
    assert hebei["status"] == "unavailable"
    assert "no usable replica" in hebei["reason"] and "NOT_FOUND" in hebei["reason"]
    assert body["report"]["verdict"] == "incomplete"


async def test_a_gateway_that_never_reached_the_region_gets_its_catalogue_from_the_peer(federation) -> None:  # type: ignore[no-untyped-def]
    nodes, start = federation
    await nodes[Region.TIANJIN].node.stop(0)
    api, running = await start("late")  # starts with Tianjin already down
    assert running.service is not None
    assert running.service.fanout.catalogues()[Region.TIANJIN] is None
    body = await report(api, CLEAN_CO)
    assert region_entry(body["report"], Region.TIANJIN)["source"] == "replica"
    assert running.service.fanout.catalogues()[Region.TIANJIN] is not None
    assert body["report"]["verdict"] == "clean"
    assert not any(c["outcome"] == "unavailable" for c in cells(body["report"], Region.TIANJIN))


def test_gateway_replica_settings() -> None:
    from credit.errors import InvalidInput

    default = GatewaySettings.from_env({})
    assert default.replica_fallback and default.replica_max_age_seconds == 3600
    settings = GatewaySettings.from_env(
        {"JJJ_GATEWAY_REPLICA_FALLBACK": "0", "JJJ_GATEWAY_REPLICA_MAX_AGE_SECONDS": "600"}
    )
    assert not settings.replica_fallback and settings.replica_max_age_seconds == 600
    assert GatewaySettings.from_env({"JJJ_GATEWAY_REPLICA_FALLBACK": "yes"}).replica_fallback
    for env in ({"JJJ_GATEWAY_REPLICA_FALLBACK": "maybe"}, {"JJJ_GATEWAY_REPLICA_MAX_AGE_SECONDS": "-1"}):
        with pytest.raises(InvalidInput):
            GatewaySettings.from_env(env)
