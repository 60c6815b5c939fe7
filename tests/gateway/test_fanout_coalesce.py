"""Queries coalesced into QuerySubjects calls, against real nodes on loopback: the same
answers and the same failures as single calls, an old node, deadlines, a caller that
stops waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from credit.catalogue import catalogue
from credit.errors import CreditError
from credit.identifiers import Subject, make_uscc, parse_subject
from credit.profiles import get_profile
from credit.queries import QueryOptions
from credit.regions import Region
from credit.report import Verdict, merge
from credit.rules import SubjectResult
from credit.signing import Keyring, SigningKey
from credit.window import compute_window
from federation.assertions import AssertionVerifier, on_behalf_of
from federation.client import GrpcNodeClient, NodeUnavailable
from federation.interceptors import ServiceInterceptor
from gateway.reports.fanout import FanOut
from nodes.service import NodeService
from nodes.servicer import RegionalNodeServicer
from nodes.store import MemoryRecordStore
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc
from tests.conftest import StartNode
from tests.nodes.builders import ACME, APPLIED, OTHER, penalty

PROFILE = get_profile("tianjin-2023")
OPTIONS = QueryOptions(profile="tianjin-2023", years=3, application_date=APPLIED)
SUBJECTS = [
    parse_subject(code) for code in (ACME, OTHER, make_uscc("91130100MA07ABCD3"), make_uscc("91110105MA01XYW45"))
]
GATEWAY = SigningKey.generate()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def batch_calls(region: Region) -> float:
    return sample("jjj_gateway_node_query_calls_total", region=region.value, method="QuerySubjects")


class GatedServicer(RegionalNodeServicer):
    """A real node service over memory that records the calls it gets and holds them at
    a gate until the test opens it; QuerySubjects can fail as a whole first."""

    def __init__(self, region: Region, *, assertions: AssertionVerifier | None = None) -> None:
        store = MemoryRecordStore(region=region)
        store.write(
            [penalty(decision_no=f"{region.value}-1"), penalty(subject=OTHER, decision_no=f"{region.value}-2")],
            source="test",
            now=datetime.now(UTC),
        )
        super().__init__(service=NodeService(store=store, catalogue=catalogue(region)), assertions=assertions)
        self.gate = asyncio.Event()
        self.gate.set()
        self.calls: list[tuple[str, int]] = []
        self.fail_batches: list[grpc.StatusCode] = []  # whole-call failures, one per QuerySubjects call

    async def QuerySubject(self, request, context):  # type: ignore[no-untyped-def]
        self.calls.append(("QuerySubject", 1))
        await self.gate.wait()
        return await super().QuerySubject(request, context)

    async def QuerySubjects(self, request, context):  # type: ignore[no-untyped-def]
        self.calls.append(("QuerySubjects", len(request.queries)))
        await self.gate.wait()
        if self.fail_batches:
            await context.abort(self.fail_batches.pop(0), "scripted outage")
        return await super().QuerySubjects(request, context)


Serve = Callable[..., Awaitable[tuple[str, GatedServicer]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[grpc.aio.Server] = []

    async def start(region: Region = Region.TIANJIN, *, old: bool = False, **kwargs: Any) -> tuple[str, GatedServicer]:
        server = grpc.aio.server(interceptors=[ServiceInterceptor(region=region.value)])
        servicer = GatedServicer(region, **kwargs)
        if old:
            # A node of the previous version: the methods it had, QuerySubjects unknown to it.
            handlers = {
                "QuerySubject": grpc.unary_unary_rpc_method_handler(
                    servicer.QuerySubject,
                    request_deserializer=pb.QuerySubjectRequest.FromString,
                    response_serializer=pb.SubjectResult.SerializeToString,
                ),
            }
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("credit.v1.RegionalNode", handlers),))
        else:
            node_pb2_grpc.add_RegionalNodeServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", servicer

    yield start
    for server in servers:
        await server.stop(0)


async def held(servicer: GatedServicer, calls: int) -> None:
    """Wait until the node holds ``calls`` calls at its gate."""
    for _ in range(200):
        if len(servicer.calls) >= calls:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the node got {servicer.calls}, not {calls} calls")


def ask(client: GrpcNodeClient, subject: Subject, *, timeout: float = 5.0, assertion: str = "") -> asyncio.Task[Any]:
    return asyncio.ensure_future(
        client.query(subject, PROFILE, OPTIONS, purpose="招标投标", timeout=timeout, assertion=assertion)
    )


async def test_queries_waiting_for_a_call_go_together_and_answer_as_alone(serve: Serve) -> None:
    address, servicer = await serve()
    client = GrpcNodeClient(Region.TIANJIN, address, max_in_flight=1, patience=60.0)
    alone = GrpcNodeClient(Region.TIANJIN, address, coalesce=False)
    try:
        expected = [await ask(alone, subject) for subject in SUBJECTS]
        assert servicer.calls == [("QuerySubject", 1)] * len(SUBJECTS)
        servicer.calls.clear()
        before = batch_calls(Region.TIANJIN)
        servicer.gate.clear()
        first = ask(client, SUBJECTS[0])
        await held(servicer, 1)
        waiting = [ask(client, SUBJECTS[i % len(SUBJECTS)]) for i in range(12)]
        await asyncio.sleep(0.05)
        assert servicer.calls == [("QuerySubject", 1)]  # the rest wait for the call in flight
        servicer.gate.set()
        answers = [await first, *await asyncio.gather(*waiting)]
        assert servicer.calls == [("QuerySubject", 1), ("QuerySubjects", 12)]
        assert answers == [expected[0], *(expected[i % len(SUBJECTS)] for i in range(12))]
        assert any(result.results for result in answers)
        assert batch_calls(Region.TIANJIN) == before + 1
    finally:
        await client.close()
        await alone.close()


async def test_queries_do_not_wait_out_a_far_nodes_round_trip(serve: Serve) -> None:
    """To a node whose recent calls all took the client's patience or more (far away),
    queued queries leave in calls of their own instead of waiting a whole round trip,
    up to four calls out; to a node that answered quickly they wait for the call out."""
    address, servicer = await serve()
    client = GrpcNodeClient(Region.TIANJIN, address, max_in_flight=1, patience=0.02)

    async def slowly(subject: Subject) -> None:
        servicer.gate.clear()
        asked = ask(client, subject)
        await asyncio.sleep(0.03)
        servicer.gate.set()
        await asked

    try:
        await ask(client, SUBJECTS[0])  # a quick answer: near
        servicer.gate.clear()
        first = ask(client, SUBJECTS[0])
        await held(servicer, 2)
        waiting = ask(client, SUBJECTS[1])
        await asyncio.sleep(0.1)
        assert len(servicer.calls) == 2  # it waits for the call out
        servicer.gate.set()
        await asyncio.gather(first, waiting)

        for _ in range(64):  # every recent call slow: far
            await slowly(SUBJECTS[2])
        servicer.calls.clear()
        servicer.gate.clear()
        out = [ask(client, SUBJECTS[i % len(SUBJECTS)]) for i in range(1)]
        await held(servicer, 1)
        for calls in (2, 3, 4):
            out.append(ask(client, SUBJECTS[calls % len(SUBJECTS)]))
            await held(servicer, calls)  # at once, not after the call out
        out += [ask(client, SUBJECTS[i % len(SUBJECTS)]) for i in range(2)]
        await asyncio.sleep(0.1)
        assert len(servicer.calls) == 4  # at most four out: the last two wait
        servicer.gate.set()
        answers = await asyncio.gather(*out)
        assert len(answers) == 6 and all(a.subject.id for a in answers)
    finally:
        await client.close()


async def test_a_refused_item_fails_as_its_own_call_and_alone(serve: Serve, tmp_path: Path) -> None:
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(Keyring([GATEWAY.private.public_key()]).jwks()), encoding="utf-8")
    address, servicer = await serve(assertions=AssertionVerifier(jwks, region=Region.TIANJIN))
    client = GrpcNodeClient(Region.TIANJIN, address, max_in_flight=1, patience=60.0)
    alone = GrpcNodeClient(Region.TIANJIN, address, coalesce=False)

    def token(subject: Subject) -> str:
        return on_behalf_of(GATEWAY, issuer="gw", user="bank", role="third_party", subject=subject.id, purpose="p")

    cases: list[tuple[Subject, Callable[[], str]]] = [
        (SUBJECTS[0], lambda: token(SUBJECTS[0])),
        (SUBJECTS[1], lambda: token(SUBJECTS[0])),  # for another subject: PERMISSION_DENIED
        (SUBJECTS[1], lambda: ""),  # none: UNAUTHENTICATED, a fault of the gateway's
        (SUBJECTS[2], lambda: "not.a.token"),
        (SUBJECTS[1], lambda: token(SUBJECTS[1])),
    ]

    async def outcome(task: Awaitable[SubjectResult]) -> tuple[str, str, str]:
        try:
            result = await task
        except CreditError as error:
            reason = error.reason if isinstance(error, NodeUnavailable) else ""
            return type(error).__name__, str(error), reason
        return "ok", result.subject.id, ""

    try:
        expected = [await outcome(ask(alone, subject, assertion=make())) for subject, make in cases]
        assert [kind for kind, _, _ in expected] == [
            "ok",
            "PermissionDenied",
            "NodeUnavailable",
            "NodeUnavailable",
            "ok",
        ]
        servicer.calls.clear()
        servicer.gate.clear()
        first = ask(client, SUBJECTS[3], assertion=token(SUBJECTS[3]))
        await held(servicer, 1)
        waiting = [ask(client, subject, assertion=make()) for subject, make in cases]
        await asyncio.sleep(0.05)
        servicer.gate.set()
        assert await outcome(first) == ("ok", SUBJECTS[3].id, "")
        assert [await outcome(task) for task in waiting] == expected
        assert servicer.calls == [("QuerySubject", 1), ("QuerySubjects", len(cases))]
    finally:
        await client.close()
        await alone.close()


async def test_an_old_node_gets_single_calls_and_that_is_remembered(serve: Serve) -> None:
    address, servicer = await serve(old=True)
    client = GrpcNodeClient(Region.TIANJIN, address, max_in_flight=1, patience=60.0)
    before = batch_calls(Region.TIANJIN)
    try:
        for _ in range(2):
            servicer.calls.clear()
            servicer.gate.clear()
            first = ask(client, SUBJECTS[0])
            await held(servicer, 1)
            waiting = [ask(client, subject) for subject in SUBJECTS]
            await asyncio.sleep(0.05)
            servicer.gate.set()
            answers = [await first, *await asyncio.gather(*waiting)]
            assert [a.subject.id for a in answers] == [SUBJECTS[0].id, *(s.id for s in SUBJECTS)]
            assert servicer.calls == [("QuerySubject", 1)] * (1 + len(SUBJECTS))
        assert batch_calls(Region.TIANJIN) == before + 1  # tried once, then no more
    finally:
        await client.close()


async def test_a_query_whose_deadline_passes_in_the_queue_fails_then(serve: Serve) -> None:
    address, servicer = await serve()
    client = GrpcNodeClient(Region.TIANJIN, address, max_in_flight=1, patience=60.0)
    loop = asyncio.get_running_loop()
    try:
        servicer.gate.clear()
        first = ask(client, SUBJECTS[0], timeout=5.0)
        await held(servicer, 1)
        started = loop.time()
        with pytest.raises(NodeUnavailable) as raised:
            await ask(client, SUBJECTS[1], timeout=0.2)
        assert 0.15 < loop.time() - started < 1.5  # at its own deadline, not when the call returns
        assert raised.value.code == "DEADLINE_EXCEEDED" and raised.value.reason == "超时 (deadline exceeded)"
        servicer.gate.set()
        assert (await first).subject.id == SUBJECTS[0].id
        await asyncio.sleep(0.05)
        assert servicer.calls == [("QuerySubject", 1)]  # the expired query was never sent
    finally:
        await client.close()


async def test_a_batch_has_its_earliest_members_deadline(serve: Serve) -> None:
    address, servicer = await serve()
    client = GrpcNodeClient(Region.TIANJIN, address, max_in_flight=1, patience=60.0)
    loop = asyncio.get_running_loop()
    try:
        servicer.gate.clear()
        first = ask(client, SUBJECTS[0], timeout=0.2)
        await held(servicer, 1)
        started = loop.time()
        soon, later = ask(client, SUBJECTS[1], timeout=1.0), ask(client, SUBJECTS[2], timeout=4.0)
        for task in (first, soon, later):
            with pytest.raises(NodeUnavailable) as raised:
                await task
            assert raised.value.code == "DEADLINE_EXCEEDED"
        assert loop.time() - started < 2.5  # the batch ended at the earlier deadline
        assert servicer.calls == [("QuerySubject", 1), ("QuerySubjects", 2)]
        servicer.gate.set()
    finally:
        await client.close()


async def test_one_caller_that_stops_waiting_fails_no_other(serve: Serve) -> None:
    address, servicer = await serve()
    client = GrpcNodeClient(Region.TIANJIN, address, max_in_flight=1, patience=60.0)
    try:
        servicer.gate.clear()
        in_flight = ask(client, SUBJECTS[0])
        await held(servicer, 1)
        queued = [ask(client, subject) for subject in SUBJECTS[1:]]
        await asyncio.sleep(0.02)
        in_flight.cancel()  # its call is out: its answer is dropped
        queued[1].cancel()  # still queued: it leaves the queue
        await asyncio.sleep(0.02)
        servicer.gate.set()
        answers = await asyncio.gather(queued[0], queued[2])
        assert [a.subject.id for a in answers] == [SUBJECTS[1].id, SUBJECTS[3].id]
        assert in_flight.cancelled() and queued[1].cancelled()
        assert servicer.calls == [("QuerySubject", 1), ("QuerySubjects", 2)]
        # The client goes on as before.
        assert (await ask(client, SUBJECTS[2])).subject.id == SUBJECTS[2].id
    finally:
        await client.close()


async def test_a_batch_that_fails_as_a_whole_is_retried_per_member(serve: Serve) -> None:
    address, servicer = await serve()
    fan = FanOut({Region.TIANJIN: GrpcNodeClient(Region.TIANJIN, address, max_in_flight=1, patience=60.0)})
    servicer.fail_batches = [grpc.StatusCode.UNAVAILABLE]
    servicer.gate.clear()
    tasks = [asyncio.ensure_future(fan.query(subject, PROFILE, OPTIONS, purpose="p")) for subject in SUBJECTS]
    await held(servicer, 1)
    await asyncio.sleep(0.05)
    servicer.gate.set()
    answers = [(await task)[Region.TIANJIN] for task in tasks]
    assert [a.subject.id for a in answers if isinstance(a, SubjectResult)] == [s.id for s in SUBJECTS]
    assert ("QuerySubjects", len(SUBJECTS) - 1) in servicer.calls  # the batch that failed, then the retries
    assert len(servicer.calls) > 2


async def test_many_concurrent_reports_merge_as_before(tmp_path: Path, start_node_at: StartNode) -> None:
    addresses = {}
    for region in Region:
        records = [penalty(decision_no=f"{region.value}-1"), penalty(subject=OTHER, decision_no=f"{region.value}-2")]
        addresses[region] = (await start_node_at(region, f"sqlite:///{tmp_path / region.value}.db", records)).address
    window = compute_window(APPLIED, 3, PROFILE)

    async def reports(fan: FanOut, subjects: list[Subject]) -> list[Any]:
        await fan.refresh_catalogues()
        answers = await asyncio.gather(*(fan.query(s, PROFILE, OPTIONS, purpose="招标投标") for s in subjects))
        return [
            merge(s, PROFILE, window, catalogues=fan.catalogues(), answers=a)
            for s, a in zip(subjects, answers, strict=True)
        ]

    subjects = [SUBJECTS[i % len(SUBJECTS)] for i in range(40)]
    alone = FanOut({r: GrpcNodeClient(r, a, coalesce=False) for r, a in addresses.items()})
    expected = [await reports(alone, [subject]) for subject in subjects]
    before = {region: batch_calls(region) for region in Region}
    coalescing = FanOut({r: GrpcNodeClient(r, a, max_in_flight=1, patience=60.0) for r, a in addresses.items()})
    got = await reports(coalescing, subjects)
    assert got == [report for [report] in expected]
    assert {report.verdict for report in got} == {Verdict.HAS_RECORDS, Verdict.CLEAN}
    assert all(batch_calls(region) > before[region] for region in Region)


async def test_without_coalescing_every_query_is_its_own_call_at_once(serve: Serve) -> None:
    address, servicer = await serve()
    client = GrpcNodeClient(Region.TIANJIN, address, coalesce=False)
    try:
        servicer.gate.clear()
        tasks = [ask(client, subject) for subject in SUBJECTS]
        await held(servicer, len(SUBJECTS))  # all out together, none waiting for another
        servicer.gate.set()
        assert [a.subject.id for a in await asyncio.gather(*tasks)] == [s.id for s in SUBJECTS]
        assert servicer.calls == [("QuerySubject", 1)] * len(SUBJECTS)
    finally:
        await client.close()
