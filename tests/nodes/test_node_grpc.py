"""A real node over gRPC on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from credit.catalogue import Scope, catalogue
from credit.identifiers import SubjectKind
from credit.profiles import get_profile
from credit.regions import Region
from credit.rules import Procedure, RecordStatus
from federation import wire
from federation.wire import SCOPE_TO_PB
from protos.credit.v1 import node_pb2 as pb
from tests.conftest import StartNode
from tests.nodes.builders import ACME, APPLIED, CUTOFF, OTHER, penalty


def options(profile: str = "tianjin-2023", years: int = 3, applied: date = APPLIED) -> pb.QueryOptions:
    return pb.QueryOptions(
        profile=profile, years=years, application_date=pb.Date(year=applied.year, month=applied.month, day=applied.day)
    )


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    raw = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    status = status_pb2.Status()
    status.ParseFromString(raw)
    return status


def violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    found = []
    for detail in rich_status(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


RECORDS = [
    penalty(decision_no="A-counted", decided_on=date(2024, 3, 15)),
    penalty(decision_no="B-simplified", decided_on=date(2024, 4, 1), procedure=Procedure.SIMPLIFIED),
    penalty(decision_no="C-old", decided_on=date(2021, 1, 4)),
    penalty(decision_no="D-repaired", decided_on=date(2024, 5, 1), status=RecordStatus.REPAIRED),
    penalty(
        decision_no="E-listed",
        domain="market_regulation",
        scope=Scope.ABNORMAL_OPERATIONS_LIST,
        decided_on=date(2023, 1, 1),
        procedure=Procedure.NOT_APPLICABLE,
    ),
    penalty(OTHER, decision_no="F-other"),
]


async def test_query_subject_applies_the_profile(db_url: str, start_node_at: StartNode) -> None:
    node = await start_node_at(Region.TIANJIN, db_url, RECORDS)
    result = await node.stub.QuerySubject(
        pb.QuerySubjectRequest(subject_id=ACME, options=options(), purpose="招标投标")
    )

    assert result.region == "tianjin"
    assert result.profile.id == "tianjin-2023"
    assert (result.window.cutoff.year, result.window.cutoff.month, result.window.cutoff.day) == (2025, 6, 5)
    assert CUTOFF.year == result.window.cutoff.year
    assert result.catalogue_version == "2024.1"
    assert result.HasField("data_as_of")
    by_key = {(r.domain, r.scope): r for r in result.results}
    penalties = by_key[("market_regulation", pb.SCOPE_ADMINISTRATIVE_PENALTY)]
    assert penalties.outcome == pb.OUTCOME_RECORDS
    assert [r.decision_no for r in penalties.records] == ["A-counted"]
    assert penalties.records[0].provenance.content_hash
    assert {(e.reason, e.count) for e in penalties.excluded} == {
        (pb.EXCLUSION_SIMPLIFIED_PROCEDURE, 1),
        (pb.EXCLUSION_CREDIT_REPAIRED, 1),
    }
    listed = by_key[("market_regulation", pb.SCOPE_ABNORMAL_OPERATIONS_LIST)]
    assert [r.decision_no for r in listed.records] == ["E-listed"]
    assert by_key[("taxation", pb.SCOPE_ADMINISTRATIVE_PENALTY)].outcome == pb.OUTCOME_NO_RECORD
    # Pairs the catalogue does not cover are left out of the answer: exactly the covered
    # domain × profile scope pairs of Tianjin's enterprise catalogue are there.
    assert ("finance", pb.SCOPE_SERIOUS_DISHONESTY_LIST) not in by_key
    profile = get_profile("tianjin-2023")
    assert set(by_key) == {
        (entry.domain.code, SCOPE_TO_PB[scope])
        for entry in catalogue(Region.TIANJIN).for_subject(SubjectKind.ENTERPRISE)
        for scope in entry.scopes
        if scope in profile.scopes
    }
    assert all(r.outcome != pb.OUTCOME_NOT_COVERED for r in result.results)

    national = await node.stub.QuerySubject(
        pb.QuerySubjectRequest(subject_id=ACME, options=options("national-2025", 5))
    )
    penalties = {(r.domain, r.scope): r for r in national.results}[
        ("market_regulation", pb.SCOPE_ADMINISTRATIVE_PENALTY)
    ]
    assert sorted(r.decision_no for r in penalties.records) == ["A-counted", "B-simplified", "C-old"]


async def test_batch_check_answers_every_subject_in_order(db_url: str, start_node_at: StartNode) -> None:
    node = await start_node_at(Region.TIANJIN, db_url, RECORDS)
    clean = "91350100M000100Y43"
    ids = [clean, ACME, "not-a-code", OTHER, ACME.lower()]
    response = await node.stub.CheckSubjects(
        pb.CheckSubjectsRequest(subject_ids=ids, options=options(), purpose="评优评先")
    )

    assert [c.subject_id for c in response.checks] == ids
    clean_check, acme, bad, other, acme_again = response.checks
    assert not clean_check.rejected and not clean_check.hits
    assert {(h.domain, h.scope, h.count) for h in acme.hits} == {
        ("market_regulation", pb.SCOPE_ADMINISTRATIVE_PENALTY, 1),
        ("market_regulation", pb.SCOPE_ABNORMAL_OPERATIONS_LIST, 1),
    }
    assert "18" in bad.rejected and not bad.hits
    assert [h.count for h in other.hits] == [1]
    assert acme_again.hits == acme.hits
    assert response.window.cutoff.day == 5


async def test_a_sparse_batch_answer_holds_only_subjects_with_something_to_say(
    db_url: str, start_node_at: StartNode
) -> None:
    node = await start_node_at(Region.TIANJIN, db_url, RECORDS)
    clean = "91350100M000100Y43"
    ids = [clean, ACME, "not-a-code", "", clean.lower()]
    request = pb.CheckSubjectsRequest(subject_ids=ids, options=options(), purpose="评优评先")
    full = await node.stub.CheckSubjects(request)
    request.sparse = True
    sparse = await node.stub.CheckSubjects(request)

    assert not full.sparse and sparse.sparse
    assert [(c.index, c.subject_id) for c in sparse.checks] == [(1, ACME), (2, "not-a-code"), (3, "")]
    assert list(sparse.kinds) == [pb.SUBJECT_KIND_ENTERPRISE, pb.SUBJECT_KIND_ENTERPRISE, 0, 0, 1]
    assert "主体标识为空" in sparse.checks[2].rejected
    assert wire.check_lines(sparse.SerializeToString()) == wire.check_lines(full.SerializeToString())


async def test_catalogue_of_an_empty_node(db_url: str, start_node_at: StartNode) -> None:
    node = await start_node_at(Region.HEBEI, db_url)
    catalogue = await node.stub.GetCatalogue(pb.GetCatalogueRequest())
    assert catalogue.region == "hebei"
    assert catalogue.version == "2024.1"
    assert len([e for e in catalogue.entries if e.subject_kind == pb.SUBJECT_KIND_ENTERPRISE]) == 38
    assert not catalogue.HasField("data_as_of")


async def test_change_feed_streams_in_order_and_resumes(db_url: str, start_node_at: StartNode) -> None:
    node = await start_node_at(Region.TIANJIN, db_url, RECORDS)
    changes = [c async for c in node.stub.WatchChanges(pb.WatchChangesRequest(after_seq=0))]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    assert sorted(c.record.decision_no for c in changes) == sorted(r.decision_no for r in RECORDS)
    resumed = [c async for c in node.stub.WatchChanges(pb.WatchChangesRequest(after_seq=changes[2].seq))]
    assert [c.record.decision_no for c in resumed] == [c.record.decision_no for c in changes[3:]]


@pytest.mark.parametrize(
    ("request_", "field", "needle"),
    [
        (pb.QuerySubjectRequest(subject_id="91350100M000100Y44"), "subject_id", "'3'"),
        (pb.QuerySubjectRequest(subject_id="11010519491231002Y"), "subject_id", "X"),
        (
            pb.QuerySubjectRequest(subject_id=ACME, options=pb.QueryOptions(profile="shanghai-2020")),
            "options.profile",
            "shanghai-2020",
        ),
        (pb.QuerySubjectRequest(subject_id=ACME, options=pb.QueryOptions(years=4)), "years", "4"),
        (
            pb.QuerySubjectRequest(
                subject_id=ACME, options=pb.QueryOptions(application_date=pb.Date(year=2025, month=2, day=30))
            ),
            "options.application_date",
            "2025-2-30",
        ),
        (pb.QuerySubjectRequest(subject_id=ACME, purpose="x" * 201), "purpose", "200"),
    ],
)
async def test_bad_queries_are_invalid_argument_with_details(
    tmp_path: object, start_node_at: StartNode, request_: pb.QuerySubjectRequest, field: str, needle: str
) -> None:
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await node.stub.QuerySubject(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in caught.value.details()
    found = violations(caught.value)
    assert found and found[0][0] == field and needle in found[0][1]


async def test_oversized_and_empty_batches_are_refused(tmp_path: object, start_node_at: StartNode) -> None:
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db", max_batch=100)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await node.stub.CheckSubjects(pb.CheckSubjectsRequest(subject_ids=[ACME] * 101))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 100" in caught.value.details()
    assert violations(caught.value)[0][0] == "subject_ids"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await node.stub.CheckSubjects(pb.CheckSubjectsRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    ok = await node.stub.CheckSubjects(pb.CheckSubjectsRequest(subject_ids=[ACME] * 100))
    assert len(ok.checks) == 100


async def test_malformed_protobuf_is_invalid_argument(tmp_path: object, start_node_at: StartNode) -> None:
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db")
    raw_call = node.channel.unary_unary("/credit.v1.RegionalNode/QuerySubject")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw_call(b"\xff\xff\xff\xff garbage")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed protobuf" in caught.value.details()


async def test_message_size_limit(tmp_path: object, start_node_at: StartNode) -> None:
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db", max_message_bytes=64 * 1024)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await node.stub.CheckSubjects(pb.CheckSubjectsRequest(subject_ids=[ACME] * 5000))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_change_feed_follows_new_changes(tmp_path: object, start_node_at: StartNode) -> None:
    from tests.conftest import load

    db = f"sqlite:///{tmp_path}/n.db"
    node = await start_node_at(Region.TIANJIN, db, RECORDS[:1])
    stream = node.stub.WatchChanges(pb.WatchChangesRequest(after_seq=0, follow=True))
    first = await stream.read()
    assert first.record.decision_no == RECORDS[0].decision_no
    load(db, [penalty(decision_no="LATE-1")])
    later = await asyncio.wait_for(stream.read(), timeout=10)
    assert later.record.decision_no == "LATE-1" and later.seq > first.seq
    stream.cancel()


async def test_metrics_and_healthz_over_http(tmp_path: object, start_node_at: StartNode) -> None:
    import socket

    import aiohttp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db", metrics_listen=f"127.0.0.1:{port}")
    await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=ACME))
    with pytest.raises(grpc.aio.AioRpcError):
        await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id="bad"))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as reply:
            assert reply.status == 200 and (await reply.json())["status"] == "ok"
        async with http.get(f"http://127.0.0.1:{port}/metrics") as reply:
            text = await reply.text()
    assert 'jjj_node_rpcs_total{code="OK",method="/credit.v1.RegionalNode/QuerySubject",region="tianjin"}' in text
    assert 'code="INVALID_ARGUMENT"' in text
    assert "jjj_node_rpc_seconds_bucket" in text


async def test_every_call_is_counted_through_a_handler_wrapped_once(tmp_path: object, start_node_at: StartNode) -> None:
    from types import SimpleNamespace

    from prometheus_client import REGISTRY

    from federation.interceptors import ServiceInterceptor

    method = "/credit.v1.RegionalNode/QuerySubject"
    labels = {"region": "tianjin", "method": method}

    def seen() -> tuple[float, float]:
        ok = REGISTRY.get_sample_value("jjj_node_rpcs_total", {**labels, "code": "OK"}) or 0.0
        timed = REGISTRY.get_sample_value("jjj_node_rpc_seconds_count", labels) or 0.0
        return ok, timed

    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db")
    before = seen()
    for _ in range(3):
        await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=ACME))
    assert seen() == (before[0] + 3, before[1] + 3)

    interceptor = ServiceInterceptor(region="tianjin")
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    other = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    details = SimpleNamespace(method=method)

    async def given(answer: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        async def continuation(_details: object) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
            return answer

        return await interceptor.intercept_service(continuation, details)  # type: ignore[arg-type]

    first = await given(handler)
    assert first is not handler and await given(handler) is first
    assert await given(other) is not first  # a handler replaced is wrapped anew


async def test_known_pilot_codes_are_accepted_with_a_warning(tmp_path: Path, start_node_at: StartNode) -> None:
    pilot = ACME[:-1] + ("0" if ACME[-1] != "0" else "1")  # fails the check
    codes = tmp_path / "pilot.txt"
    codes.write_text(f"# early pilot codes\n{pilot.lower()}\n", encoding="utf-8")
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db", pilot_codes_file=str(codes))
    result = await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=pilot))
    assert result.subject_id == pilot and any("pilot" in w for w in result.warnings)
    batch = await node.stub.CheckSubjects(pb.CheckSubjectsRequest(subject_ids=[pilot, ACME[:-1] + "Y"]))
    assert not batch.checks[0].rejected and batch.checks[0].warnings
    assert batch.checks[1].rejected
    # Sparsely: the pilot code is answered for its warning, the plain code by its kind.
    asked = [ACME, pilot, ACME[:-1] + "Y", "91350100M000100Y43"]
    full = await node.stub.CheckSubjects(pb.CheckSubjectsRequest(subject_ids=asked))
    sparse = await node.stub.CheckSubjects(pb.CheckSubjectsRequest(subject_ids=asked, sparse=True))
    assert [(c.index, bool(c.warnings), bool(c.rejected)) for c in sparse.checks] == [
        (1, True, False),
        (2, False, True),
    ]
    assert wire.check_lines(sparse.SerializeToString()) == wire.check_lines(full.SerializeToString())


async def test_a_year_the_calendar_does_not_know_falls_back_and_says_so(
    tmp_path: Path, start_node_at: StartNode
) -> None:
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db")
    result = await node.stub.QuerySubject(
        pb.QuerySubjectRequest(subject_id=ACME, options=options(applied=date(2031, 3, 10)))
    )
    assert not result.window.calendar_exact
    assert result.window.calendar_note and result.window.calendar_note in result.warnings
    assert (result.window.cutoff.year, result.window.cutoff.month, result.window.cutoff.day) == (2031, 2, 27)
