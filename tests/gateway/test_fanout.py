"""Fan-out against real nodes on loopback: stopped, hung, flaky and missing regions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path

import grpc
import pytest

from credit.catalogue import catalogue
from credit.identifiers import parse_subject
from credit.profiles import get_profile
from credit.queries import QueryOptions
from credit.regions import Region
from credit.report import RegionFailure, Verdict, merge
from credit.rules import SubjectResult
from credit.window import compute_window
from federation.client import GrpcNodeClient
from gateway.reports.fanout import CircuitBreaker, FanOut, RetryBudget
from nodes.service import NodeService
from nodes.servicer import RegionalNodeServicer
from nodes.store import MemoryRecordStore
from protos.credit.v1 import node_pb2_grpc
from tests.conftest import NodeHandle, StartNode
from tests.nodes.builders import ACME, APPLIED, penalty

SUBJECT = parse_subject(ACME)
PROFILE = get_profile("tianjin-2023")
OPTIONS = QueryOptions(profile="tianjin-2023", years=3, application_date=APPLIED)


class ScriptedServicer(RegionalNodeServicer):
    """A real node service over memory, whose QuerySubject can fail or stall first."""

    def __init__(self, region: Region, script: Callable[[int], str]) -> None:
        store = MemoryRecordStore(region=region)
        super().__init__(service=NodeService(store=store, catalogue=catalogue(region)))
        self.script = script
        self.calls = 0

    async def QuerySubject(self, request, context):  # type: ignore[no-untyped-def]
        self.calls += 1
        action = self.script(self.calls)
        if action == "unavailable":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scripted outage")
        if action == "hang":
            await asyncio.sleep(30)
        return await super().QuerySubject(request, context)


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Region, Callable[[int], str]], object]]:
    servers = []

    async def start(region: Region, script: Callable[[int], str]) -> tuple[str, ScriptedServicer]:
        server = grpc.aio.server()
        servicer = ScriptedServicer(region, script)
        node_pb2_grpc.add_RegionalNodeServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", servicer

    yield start  # type: ignore[misc]
    for server in servers:
        await server.stop(0)


async def three_nodes(tmp_path: Path, start_node_at: StartNode) -> dict[Region, NodeHandle]:
    handles = {}
    for region in Region:
        records = [penalty(decision_no=f"{region.value}-1")] if region is Region.TIANJIN else []
        handles[region] = await start_node_at(region, f"sqlite:///{tmp_path / region.value}.db", records)
    return handles


async def three_addresses(tmp_path: Path, start_node_at: StartNode) -> dict[Region, str]:
    return {region: handle.address for region, handle in (await three_nodes(tmp_path, start_node_at)).items()}


def fanout(addresses: dict[Region, str], **kwargs: float) -> FanOut:
    return FanOut({r: GrpcNodeClient(r, a) for r, a in addresses.items()}, **kwargs)  # type: ignore[arg-type]


async def test_three_regions_answer_and_merge(tmp_path: Path, start_node_at: StartNode) -> None:
    fan = fanout(await three_addresses(tmp_path, start_node_at))
    await fan.refresh_catalogues()
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="招标投标")
    assert all(isinstance(a, SubjectResult) for a in answers.values())
    report = merge(SUBJECT, PROFILE, compute_window(APPLIED, 3, PROFILE), catalogues=fan.catalogues(), answers=answers)
    assert report.verdict is Verdict.HAS_RECORDS
    assert fan.catalogues()[Region.HEBEI] is not None


async def test_a_stopped_node_makes_the_report_incomplete(tmp_path: Path, start_node_at: StartNode) -> None:
    handles = await three_nodes(tmp_path, start_node_at)
    fan = fanout({r: h.address for r, h in handles.items()}, deadline=2.0, region_deadline=1.0)
    await fan.refresh_catalogues()
    await handles[Region.HEBEI].node.stop(0)
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="评优评先")
    failure = answers[Region.HEBEI]
    assert isinstance(failure, RegionFailure) and "unavailable" in failure.reason
    assert isinstance(answers[Region.BEIJING], SubjectResult)
    window = compute_window(APPLIED, 3, PROFILE)
    report = merge(SUBJECT, PROFILE, window, catalogues=fan.catalogues(), answers=answers)
    assert report.verdict is Verdict.HAS_RECORDS  # Tianjin's record still shows
    clean_subject = parse_subject("91350100M000100Y43")
    answers = await fan.query(clean_subject, PROFILE, OPTIONS, purpose="评优评先")
    report = merge(clean_subject, PROFILE, window, catalogues=fan.catalogues(), answers=answers)
    assert report.verdict is Verdict.INCOMPLETE  # nothing found, but Hebei did not answer


async def test_a_hung_node_is_cut_off_at_its_deadline(scripted, tmp_path: Path, start_node_at: StartNode) -> None:  # type: ignore[no-untyped-def]
    addresses = await three_addresses(tmp_path, start_node_at)
    hung, servicer = await scripted(Region.BEIJING, lambda n: "hang")
    addresses[Region.BEIJING] = hung
    fan = fanout(addresses, deadline=1.5, region_deadline=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
    assert loop.time() - started < 10  # bounded by the deadline, not by the node's 30 s
    assert isinstance(answers[Region.BEIJING], RegionFailure)
    assert "deadline" in answers[Region.BEIJING].reason  # type: ignore[union-attr]
    assert isinstance(answers[Region.TIANJIN], SubjectResult)
    assert servicer.calls == 1  # a deadline is not retried


async def test_unavailable_is_retried_within_the_budget(scripted) -> None:  # type: ignore[no-untyped-def]
    address, servicer = await scripted(Region.TIANJIN, lambda n: "unavailable" if n == 1 else "ok")
    fan = fanout({Region.TIANJIN: address})
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
    assert isinstance(answers[Region.TIANJIN], SubjectResult)
    assert servicer.calls == 2


async def test_a_query_is_tried_at_most_three_times(scripted) -> None:  # type: ignore[no-untyped-def]
    address, servicer = await scripted(Region.TIANJIN, lambda n: "unavailable" if n <= 6 else "ok")
    fan = fanout({Region.TIANJIN: address}, breaker_threshold=1000)
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
    assert isinstance(answers[Region.TIANJIN], RegionFailure)
    assert servicer.calls == 3  # the first attempt and two retries, however much budget is left
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
    assert isinstance(answers[Region.TIANJIN], RegionFailure), answers
    assert servicer.calls == 6
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
    assert isinstance(answers[Region.TIANJIN], SubjectResult) and servicer.calls == 7


async def test_a_full_outage_does_not_multiply_calls(scripted) -> None:  # type: ignore[no-untyped-def]
    address, servicer = await scripted(Region.HEBEI, lambda n: "unavailable")
    fan = fanout({Region.HEBEI: address}, breaker_threshold=1000, breaker_cooldown=60)
    fan._regions[Region.HEBEI].budget = RetryBudget(ratio=0.1, cap=2.0, tokens=0.0)
    requests = 60
    for _ in range(requests):
        answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
        assert isinstance(answers[Region.HEBEI], RegionFailure)
    assert requests <= servicer.calls <= 1.2 * requests


async def test_the_circuit_opens_and_probes_again(scripted) -> None:  # type: ignore[no-untyped-def]
    state = {"down": True}
    address, servicer = await scripted(Region.HEBEI, lambda n: "unavailable" if state["down"] else "ok")
    now = [0.0]
    fan = fanout({Region.HEBEI: address}, breaker_threshold=3)
    fan._regions[Region.HEBEI].breaker = CircuitBreaker(threshold=3, cooldown=5.0, clock=lambda: now[0])
    fan._regions[Region.HEBEI].budget = RetryBudget(tokens=0.0, ratio=0.0)
    for _ in range(10):
        await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
    assert servicer.calls == 3  # then it failed fast
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
    assert "circuit open" in answers[Region.HEBEI].reason  # type: ignore[union-attr]
    now[0] = 6.0
    state["down"] = False
    answers = await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
    assert isinstance(answers[Region.HEBEI], SubjectResult) and servicer.calls == 4
    await fan.query(SUBJECT, PROFILE, OPTIONS, purpose="test")
    assert servicer.calls == 5  # closed again


def test_the_window_here_matches_the_nodes() -> None:
    assert compute_window(APPLIED, 3, PROFILE).cutoff == date(2025, 6, 5)
