"""The fan-out's replica fallback against real nodes: a hung region, an open breaker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from credit.catalogue import catalogue
from credit.identifiers import parse_subject
from credit.profiles import get_profile
from credit.queries import QueryOptions
from credit.regions import Region
from credit.report import RegionFailure, ReplicaResult, Source, Verdict, merge
from credit.rules import Outcome, SubjectResult
from credit.window import compute_window
from federation.client import GrpcNodeClient
from gateway.reports.fanout import FanOut
from nodes.service import NodeService
from nodes.servicer import RegionalNodeServicer
from nodes.store import MemoryRecordStore
from protos.credit.v1 import node_pb2_grpc
from tests.conftest import NodeHandle, StartNode
from tests.nodes.builders import ACME, APPLIED, penalty

SUBJECT = parse_subject(ACME)
PROFILE = get_profile("tianjin-2023")
OPTIONS = QueryOptions(profile="tianjin-2023", years=3, application_date=APPLIED)


class Failing(RegionalNodeServicer):
    """A Tianjin node over memory whose feed works but whose QuerySubject hangs or fails."""

    def __init__(self, behaviour: str) -> None:
        store = MemoryRecordStore(region=Region.TIANJIN)
        store.write([penalty(decision_no="T-1")], source="test", now=datetime(2025, 6, 1, tzinfo=UTC))
        super().__init__(service=NodeService(store=store, catalogue=catalogue(Region.TIANJIN)))
        self.behaviour = behaviour
        self.calls = 0

    async def QuerySubject(self, request: Any, context: Any) -> Any:
        self.calls += 1
        if self.behaviour == "hang":
            await asyncio.sleep(30)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "scripted outage")


@pytest.fixture
async def failing() -> AsyncIterator[Callable[[str], Any]]:
    servers = []

    async def start(behaviour: str) -> tuple[str, Failing]:
        server = grpc.aio.server()
        servicer = Failing(behaviour)
        node_pb2_grpc.add_RegionalNodeServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", servicer

    yield start
    for server in servers:
        await server.stop(0)


async def followers(tmp_path: Path, start_node_at: StartNode, tianjin: str) -> dict[Region, NodeHandle]:
    nodes = {}
    for region in (Region.BEIJING, Region.HEBEI):
        nodes[region] = await start_node_at(
            region, f"sqlite:///{tmp_path / region.value}.db", peers={Region.TIANJIN: tianjin}
        )
    for handle in nodes.values():
        for _ in range(200):
            cursor = handle.node.replica.read_cursors().get(Region.TIANJIN)
            if cursor is not None and cursor.synced_at is not None and cursor.last_seq == 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the replica of Tianjin did not catch up")
    return nodes


async def test_a_hung_region_is_served_from_a_replica_within_the_deadline(
    failing: Callable[[str], Any], tmp_path: Path, start_node_at: StartNode
) -> None:
    address, _ = await failing("hang")
    nodes = await followers(tmp_path, start_node_at, address)
    clients = {Region.TIANJIN: GrpcNodeClient(Region.TIANJIN, address)}
    clients |= {region: GrpcNodeClient(region, handle.address) for region, handle in nodes.items()}
    fan = FanOut(clients, deadline=1.5, region_deadline=0.5)  # type: ignore[arg-type]
    await fan.refresh_catalogues()
    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="招标投标")
    elapsed = loop.time() - started
    assert 0.5 <= elapsed < 1.5  # the node's own deadline, then the replica, within the overall one
    served = answers[Region.TIANJIN]
    assert isinstance(served, ReplicaResult) and served.served_by in (Region.BEIJING, Region.HEBEI)
    assert served.region is Region.TIANJIN and served.replica_as_of is not None
    assert any(r.outcome is Outcome.RECORDS for r in served.results)
    assert all(
        isinstance(a, SubjectResult) and not isinstance(a, ReplicaResult)
        for r, a in answers.items()
        if r is not Region.TIANJIN
    )

    report = merge(SUBJECT, PROFILE, compute_window(APPLIED, 3, PROFILE), catalogues=fan.catalogues(), answers=answers)
    outcome = next(o for o in report.regions if o.region is Region.TIANJIN)
    assert outcome.source is Source.REPLICA and outcome.served_by is served.served_by
    assert outcome.replica_as_of == served.replica_as_of
    assert report.verdict is Verdict.HAS_RECORDS
    for client in clients.values():
        await client.close()


async def test_with_the_breaker_open_the_replica_answers_at_once(
    failing: Callable[[str], Any], tmp_path: Path, start_node_at: StartNode
) -> None:
    address, servicer = await failing("unavailable")
    nodes = await followers(tmp_path, start_node_at, address)
    clients = {Region.TIANJIN: GrpcNodeClient(Region.TIANJIN, address)}
    clients |= {region: GrpcNodeClient(region, handle.address) for region, handle in nodes.items()}
    fan = FanOut(clients, deadline=2.0, region_deadline=1.0, breaker_threshold=3, breaker_cooldown=60)  # type: ignore[arg-type]
    await fan.refresh_catalogues()
    for _ in range(3):
        answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="招标投标")
        assert isinstance(answers[Region.TIANJIN], ReplicaResult)
    calls = servicer.calls
    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="招标投标")
    assert loop.time() - started < 0.5
    assert isinstance(answers[Region.TIANJIN], ReplicaResult)
    assert servicer.calls == calls  # the open breaker kept the failing node out of it

    # A replica too old for the limit is not used, and the reason says so.
    fan.replica_max_age = 0
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="招标投标")
    failure = answers[Region.TIANJIN]
    assert isinstance(failure, RegionFailure)
    assert failure.reason.startswith("熔断中") and "beyond the 0 s limit" in failure.reason
    for client in clients.values():
        await client.close()
