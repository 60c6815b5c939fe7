"""Lean answers: a node leaves its plain "no record" pairs out only for a caller that
holds the same coverage, says so, and the caller's result is the same as from a full
answer. Old callers and old nodes keep getting and giving full answers."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from credit.catalogue import catalogue
from credit.identifiers import SubjectKind, parse_subject
from credit.profiles import get_profile
from credit.queries import QueryOptions
from credit.regions import Region
from credit.rules import Outcome, Procedure, RecordStatus, coverage, evaluate
from credit.window import compute_window
from federation import wire
from federation.client import GrpcNodeClient, NodeUnavailable
from nodes.replica import Received
from nodes.service import NodeService
from nodes.servicer import RegionalNodeServicer
from nodes.store import MemoryRecordStore
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc
from tests.conftest import StartNode
from tests.nodes.builders import ACME, APPLIED, OTHER, penalty

PROFILE = get_profile("tianjin-2023")
OPTIONS = QueryOptions(profile="tianjin-2023", years=3, application_date=APPLIED)
TIANJIN = catalogue(Region.TIANJIN)
RECORDS = [
    penalty(decision_no="A-counted", decided_on=date(2024, 3, 15)),
    penalty(decision_no="B-simplified", domain="taxation", procedure=Procedure.SIMPLIFIED),  # excluded only
    penalty(decision_no="C-repaired", domain="ecology_environment", status=RecordStatus.REPAIRED),
    penalty(decision_no="D-old", decided_on=date(2021, 1, 4)),
]


def _records(drafts: list[Any]) -> list[Any]:
    store = MemoryRecordStore(region=Region.TIANJIN)
    store.write(drafts, source="test", now=datetime(2025, 6, 1, tzinfo=UTC))
    return list(store._current.values())


@pytest.mark.parametrize("subject_id", [ACME, OTHER, "120101198001011234"])
def test_a_lean_answer_decodes_to_the_full_one(subject_id: str) -> None:
    subject = parse_subject(subject_id)
    window = compute_window(APPLIED, 3, PROFILE)
    result = evaluate(subject, _records(RECORDS), catalogue=TIANJIN, profile=PROFILE, window=window, data_as_of=None)
    full = wire.result_to_pb(result)
    lean = wire.result_to_pb(result, omit_no_record=True)

    assert lean.no_record_omitted and not full.no_record_omitted
    kept = [(r.domain, r.outcome) for r in lean.results]
    assert all(r.records or r.excluded for r in lean.results)
    assert len(lean.results) == sum(1 for r in result.results if r.records or r.excluded), kept
    assert len(full.results) == len(coverage(TIANJIN, PROFILE, subject.kind))
    from_full = wire.result_from_pb(full, subject, PROFILE)
    from_lean = wire.result_from_pb(lean, subject, PROFILE, catalogue=TIANJIN)
    assert from_lean == from_full
    assert [r for r in from_full.results] == [r for r in result.results if r.outcome is not Outcome.NOT_COVERED]


def test_a_lean_answer_cannot_be_read_without_the_catalogue() -> None:
    subject = parse_subject(ACME)
    result = evaluate(
        subject, [], catalogue=TIANJIN, profile=PROFILE, window=compute_window(APPLIED, 3, PROFILE), data_as_of=None
    )
    with pytest.raises(ValueError, match="no catalogue"):
        wire.result_from_pb(wire.result_to_pb(result, omit_no_record=True), subject, PROFILE)


def test_the_coverage_digest_follows_the_pairs_not_the_names() -> None:
    enterprise = wire.coverage_digest(TIANJIN, PROFILE, SubjectKind.ENTERPRISE)
    assert len(enterprise) == 16
    assert enterprise != wire.coverage_digest(TIANJIN, PROFILE, SubjectKind.PERSON)
    assert enterprise != wire.coverage_digest(catalogue(Region.BEIJING), PROFILE, SubjectKind.ENTERPRISE)
    # The 2025 profile adds coercion and judgments: Beijing covers some, Tianjin none.
    national = get_profile("national-2025")
    assert enterprise == wire.coverage_digest(TIANJIN, national, SubjectKind.ENTERPRISE)
    beijing = catalogue(Region.BEIJING)
    assert wire.coverage_digest(beijing, PROFILE, SubjectKind.ENTERPRISE) != wire.coverage_digest(
        beijing, national, SubjectKind.ENTERPRISE
    )
    # A catalogue that covers one scope less is another coverage, whatever its version says.
    first = TIANJIN.entries[0]
    narrower = dataclasses.replace(TIANJIN, entries=(dataclasses.replace(first, scopes=()), *TIANJIN.entries[1:]))
    assert narrower.version == TIANJIN.version
    assert wire.coverage_digest(narrower, PROFILE, first.subject) != wire.coverage_digest(
        TIANJIN, PROFILE, first.subject
    )
    # The same pairs under another name and version are the same coverage.
    renamed = dataclasses.replace(TIANJIN, version="2099.9")
    assert wire.coverage_digest(renamed, PROFILE, SubjectKind.ENTERPRISE) == enterprise


def _request(known: bytes = b"", subject_id: str = ACME) -> pb.QuerySubjectRequest:
    return wire.query_to_pb(parse_subject(subject_id), OPTIONS, "招标投标", known_coverage=known)


async def test_a_node_leaves_no_record_pairs_out_only_for_a_caller_that_knows_them(
    tmp_path: Path, start_node_at: StartNode
) -> None:
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path / 'node.db'}", RECORDS)
    known = wire.coverage_digest(TIANJIN, PROFILE, SubjectKind.ENTERPRISE)

    lean = await node.stub.QuerySubject(_request(known))
    full = await node.stub.QuerySubject(_request())  # an older gateway
    other = await node.stub.QuerySubject(
        _request(wire.coverage_digest(catalogue(Region.HEBEI), PROFILE, SubjectKind.ENTERPRISE))
    )

    assert lean.no_record_omitted
    assert sorted((r.domain, r.outcome) for r in lean.results) == [
        ("ecology_environment", pb.OUTCOME_NO_RECORD),
        ("market_regulation", pb.OUTCOME_RECORDS),
        ("taxation", pb.OUTCOME_NO_RECORD),
    ]
    pairs = len(coverage(TIANJIN, PROFILE, SubjectKind.ENTERPRISE))
    for answer in (full, other):
        assert not answer.no_record_omitted
        assert len(answer.results) == pairs
    subject = parse_subject(ACME)
    assert wire.result_from_pb(lean, subject, PROFILE, catalogue=TIANJIN) == wire.result_from_pb(full, subject, PROFILE)
    # A subject with nothing at all is answered by its header alone.
    clean = await node.stub.QuerySubject(_request(known, OTHER))
    assert clean.no_record_omitted and not clean.results


async def test_the_client_asks_for_lean_answers_and_puts_the_pairs_back(
    tmp_path: Path, start_node_at: StartNode
) -> None:
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path / 'node.db'}", RECORDS)
    client = GrpcNodeClient(Region.TIANJIN, node.address)
    subject = parse_subject(ACME)
    try:
        with_catalogue = await client.query(
            subject, PROFILE, OPTIONS, purpose="test", timeout=5, catalogue=await client.catalogue(timeout=5)
        )
        without = await client.query(subject, PROFILE, OPTIONS, purpose="test", timeout=5)
    finally:
        await client.close()
    assert with_catalogue == without
    assert len(with_catalogue.results) == len(coverage(TIANJIN, PROFILE, SubjectKind.ENTERPRISE))


class Careless(RegionalNodeServicer):
    """A node that leaves pairs out of every answer, asked or not."""

    def __init__(self) -> None:
        store = MemoryRecordStore(region=Region.TIANJIN)
        store.write([penalty()], source="test", now=datetime(2025, 6, 1, tzinfo=UTC))
        super().__init__(service=NodeService(store=store, catalogue=TIANJIN))

    async def QuerySubject(self, request: Any, context: Any) -> Any:
        answer = await super().QuerySubject(request, context)
        answer.no_record_omitted = True
        del answer.results[:]
        return answer


async def test_an_answer_that_leaves_pairs_out_unasked_is_refused() -> None:
    server = grpc.aio.server()
    node_pb2_grpc.add_RegionalNodeServicer_to_server(Careless(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = GrpcNodeClient(Region.TIANJIN, f"127.0.0.1:{port}")
    try:
        with pytest.raises(NodeUnavailable) as refused:
            await client.query(parse_subject(ACME), PROFILE, OPTIONS, purpose="test", timeout=5)
    finally:
        await client.close()
        await server.stop(0)
    assert refused.value.code == "WRONG_NODE"
    assert not refused.value.retryable


class Older(RegionalNodeServicer):
    """A node of the version before lean answers: it does not know ``known_coverage``
    (protobuf keeps the unknown field aside) and answers every pair, flag unset."""

    def __init__(self) -> None:
        store = MemoryRecordStore(region=Region.TIANJIN)
        store.write([penalty()], source="test", now=datetime(2025, 6, 1, tzinfo=UTC))
        super().__init__(service=NodeService(store=store, catalogue=TIANJIN))
        self.asked: list[bytes] = []

    async def QuerySubject(self, request: Any, context: Any) -> Any:
        self.asked.append(request.known_coverage)
        request.ClearField("known_coverage")
        return await super().QuerySubject(request, context)


async def test_a_node_of_the_previous_version_answers_a_lean_request_in_full() -> None:
    older = Older()
    server = grpc.aio.server()
    node_pb2_grpc.add_RegionalNodeServicer_to_server(older, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = GrpcNodeClient(Region.TIANJIN, f"127.0.0.1:{port}")
    subject = parse_subject(ACME)
    try:
        lean_asked = await client.query(subject, PROFILE, OPTIONS, purpose="test", timeout=5, catalogue=TIANJIN)
        plain = await client.query(subject, PROFILE, OPTIONS, purpose="test", timeout=5)
    finally:
        await client.close()
        await server.stop(0)
    assert older.asked == [wire.coverage_digest(TIANJIN, PROFILE, SubjectKind.ENTERPRISE), b""]
    assert lean_asked == plain
    assert len(plain.results) == len(coverage(TIANJIN, PROFILE, SubjectKind.ENTERPRISE))


class _FromTest:
    def peer(self) -> str:
        return "test"


async def test_a_replica_answer_is_lean_under_the_origin_catalogue(tmp_path: Path, start_node_at: StartNode) -> None:
    tianjin = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path / 'tianjin.db'}", RECORDS)
    beijing = await start_node_at(Region.BEIJING, f"sqlite:///{tmp_path / 'beijing.db'}")
    batches = [b async for b in tianjin.node.servicer.WatchChangeBatches(pb.WatchChangesRequest(), _FromTest())]
    replica = beijing.node.replica
    replica.start(Region.TIANJIN, tianjin.address)
    replica.save_catalogue(Region.TIANJIN, await tianjin.stub.GetCatalogue(pb.GetCatalogueRequest()))
    replica.apply(Region.TIANJIN, [Received(b, datetime.now(UTC)) for b in batches], after_seq=0)
    subject = parse_subject(ACME)

    def ask(known: bytes) -> pb.QueryReplicaRequest:
        return pb.QueryReplicaRequest(origin="tianjin", query=_request(known))

    lean = await beijing.stub.QueryReplica(ask(wire.coverage_digest(TIANJIN, PROFILE, SubjectKind.ENTERPRISE)))
    # Beijing's own coverage is not the one the replica answers under.
    full = await beijing.stub.QueryReplica(
        ask(wire.coverage_digest(catalogue(Region.BEIJING), PROFILE, SubjectKind.ENTERPRISE))
    )
    assert lean.no_record_omitted and len(lean.results) == 3
    assert not full.no_record_omitted and len(full.results) == len(coverage(TIANJIN, PROFILE, SubjectKind.ENTERPRISE))
    assert wire.result_from_pb(lean, subject, PROFILE, catalogue=TIANJIN) == wire.result_from_pb(full, subject, PROFILE)
    client = GrpcNodeClient(Region.BEIJING, beijing.address)
    try:
        answered = await client.query_replica(
            Region.TIANJIN, subject, PROFILE, OPTIONS, purpose="test", timeout=5, catalogue=TIANJIN
        )
    finally:
        await client.close()
    assert answered.results == wire.result_from_pb(full, subject, PROFILE).results
