"""The gateway's services against in-memory nodes (:mod:`tests.memory_node`): reports,
batch checks, objections and supersession, with the failures a node can have, in
milliseconds. The same journeys over real gRPC nodes are the end-to-end tests."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from credit.cases import CaseKind, CaseState, Resolution
from credit.demo import DEMO_SUBJECTS
from credit.errors import FailedPrecondition, InvalidInput, NotFound, PermissionDenied
from credit.policy import Principal, Role
from credit.queries import QueryOptions
from credit.regions import Region
from federation import wire
from federation.client import NodeUnavailable, node_error, status_text
from gateway.batch.jobs import count_rows
from gateway.batch.tables import csv_chunks
from gateway.objections.service import ObjectionService
from gateway.reports.service import summary_of
from gateway.reports.supersede import SupersedeWatcher
from gateway.server import RunningGateway, start_gateway
from gateway.settings import GatewaySettings
from tests.memory_node import MemoryNode, record, unavailable

TODAY = date(2025, 6, 16)
COMPANY = next(d for d in DEMO_SUBJECTS if d.key == "records").id
CLEAN = next(d for d in DEMO_SUBJECTS if d.key == "clean").id


@pytest.fixture
async def house(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, dict[Region, MemoryNode]]]:
    nodes = {region: MemoryNode(region, today=TODAY) for region in Region}
    nodes[Region.TIANJIN].store(record(Region.TIANJIN, COMPANY, decided_on=date(2024, 3, 1), record_id="tj-1"))
    settings = GatewaySettings.from_env(
        {},
        listen="127.0.0.1:0",
        grpc_listen="127.0.0.1:0",
        db_url=f"sqlite:///{tmp_path / 'gateway.db'}",
        keys_dir=str(tmp_path / "keys"),
        nodes={region: "memory" for region in Region},
        deadline=2.0,
        region_deadline=1.0,
    )
    running = await start_gateway(settings, clients=list(nodes.values()))
    assert running.service is not None
    running.service.clock = lambda: datetime(2025, 6, 16, 2, tzinfo=UTC)  # 10:00 in Beijing
    yield running, nodes
    await running.stop()
    assert all(node.closed for node in nodes.values())


def company(running: RunningGateway) -> Principal:
    return Principal("records-co", Role.ENTERPRISE, COMPANY, running.settings.issuer)


def officer(running: RunningGateway, region: str | None = None) -> Principal:
    return Principal("agency", Role.AGENCY, None, running.settings.issuer, region)


async def test_a_report_asks_each_node_once_with_its_own_assertion(house) -> None:  # type: ignore[no-untyped-def]
    running, nodes = house
    issued = await running.service.issue(company(running), subject_id=COMPANY, purpose="投标")
    document = issued.document
    assert document["verdict"] == "has_records"
    assert [r["status"] for r in document["regions"]] == ["answered"] * 3
    held = [
        (cell["region"], rec["record_id"])
        for line in document["lines"]
        for cell in line["cells"]
        for rec in cell.get("records", ())
    ]
    assert held == [("tianjin", "tj-1")]
    queries = [assertion for node in nodes.values() for call, assertion in node.calls if call == "query"]
    assert len(queries) == 3 and len(set(queries)) == 3 and all(queries)


async def test_an_unreachable_node_is_retried_then_reported_unavailable(house) -> None:  # type: ignore[no-untyped-def]
    running, nodes = house
    nodes[Region.HEBEI].fail = unavailable(Region.HEBEI)
    principal = Principal("clean-co", Role.ENTERPRISE, CLEAN, running.settings.issuer)
    document = (await running.service.issue(principal, subject_id=CLEAN, purpose="投标")).document
    hebei = next(r for r in document["regions"] if r["region"] == "hebei")
    assert document["verdict"] == "incomplete"
    assert hebei["status"] == "unavailable" and hebei["reason"].startswith("无法连接 (unavailable: connection refused)")
    assert sum(call == "query" for call, _ in nodes[Region.HEBEI].calls) >= 2  # retried: the read is idempotent
    assert sum(call == "query" for call, _ in nodes[Region.BEIJING].calls) == 1


async def test_a_node_refusal_is_not_retried_and_says_why(house) -> None:  # type: ignore[no-untyped-def]
    running, nodes = house
    nodes[Region.BEIJING].fail = PermissionDenied("代查声明已使用 (the assertion was used already)")
    document = (await running.service.issue(company(running), subject_id=COMPANY, purpose="投标")).document
    beijing = next(r for r in document["regions"] if r["region"] == "beijing")
    assert beijing["reason"].startswith("PERMISSION_DENIED: 代查声明已使用")
    assert sum(call == "query" for call, _ in nodes[Region.BEIJING].calls) == 1


async def test_a_batch_tabulates_every_region_and_a_missing_one(house, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    running, nodes = house
    monkeypatch.setattr("gateway.batch.jobs.RETRY_PAUSE", 0.01)
    nodes[Region.BEIJING].fail = NodeUnavailable(Region.BEIJING, "DEADLINE_EXCEEDED", "Deadline Exceeded")
    batches = running.batches
    job = await batches.submit(officer(running), [COMPANY, CLEAN, "not-a-code"], purpose="招标核查")
    await asyncio.wait_for(batches.wait(job.job_id), 30)
    rows = list(batches.rows(job.job_id))
    assert [row.subject for row in rows] == [COMPANY, CLEAN, "not-a-code"]
    assert rows[0].regions["tianjin"] and rows[0].regions["beijing"] is None
    assert rows[1].regions["tianjin"] == [] and rows[1].kind == "enterprise"
    assert rows[2].rejected
    table = b"".join(csv_chunks(rows)).decode("utf-8-sig")
    assert "北京暂不可用" in table and "有记录" in table
    # A deadline is worth another try; the stored reason is the node's status.
    assert sum(call == "check_subjects" for call, _ in nodes[Region.BEIJING].calls) == 3


async def test_cases_go_to_the_owning_node_and_back(house) -> None:  # type: ignore[no-untyped-def]
    running, nodes = house
    issued = await running.service.issue(company(running), subject_id=COMPANY, purpose="投标")
    cases = ObjectionService(running.service, nodes)
    filed = await cases.file(
        company(running), report_no=issued.document["report_no"], record_id="tj-1", kind=CaseKind.OBJECTION,
        reason="处罚已撤销",
    )  # fmt: skip
    assert filed.region is Region.TIANJIN and filed.state is CaseState.OPEN
    assert [c for c, _ in nodes[Region.TIANJIN].calls if c == "file_objection"] == ["file_objection"]
    with pytest.raises(FailedPrecondition):
        await cases.file(
            company(running), report_no=issued.document["report_no"], record_id="tj-1", kind=CaseKind.OBJECTION,
            reason="again",
        )  # fmt: skip
    mine, missing = await cases.mine(company(running))
    assert [c.number for c in mine] == [filed.number] and not missing
    with pytest.raises(PermissionDenied, match="本地区"):
        await cases.resolve(officer(running, "beijing"), filed.number, Resolution.REVOKED, note="核实")
    closed = await cases.resolve(officer(running, "tianjin"), filed.number, Resolution.REVOKED, note="核实")
    assert closed.state is CaseState.CLOSED and closed.new_version == 2
    with pytest.raises(NotFound):
        await cases.get(officer(running), "TJ-YY-00000099")


async def test_one_region_down_leaves_the_others_cases_listed(house) -> None:  # type: ignore[no-untyped-def]
    running, nodes = house
    nodes[Region.HEBEI].fail = unavailable(Region.HEBEI)
    cases, missing = await ObjectionService(running.service, nodes).mine(company(running))
    assert cases == [] and list(missing) == [Region.HEBEI]
    assert "河北节点暂不可用" in missing[Region.HEBEI]


async def test_a_new_version_supersedes_the_report(house) -> None:  # type: ignore[no-untyped-def]
    running, nodes = house
    issued = await running.service.issue(company(running), subject_id=COMPANY, purpose="投标")
    code = issued.document["verification_code"]
    assert (await running.service.verify_code(code)).status == "valid"
    old = nodes[Region.TIANJIN].records[0]
    nodes[Region.TIANJIN].store(dataclasses.replace(old, version=2, content="更正"))
    watcher = SupersedeWatcher(running.registry, [nodes[Region.TIANJIN]], retry=0.01)
    watcher.start()
    try:
        for _ in range(200):
            if (await running.service.verify_code(code)).status == "superseded":
                break
            await asyncio.sleep(0.02)
    finally:
        await watcher.stop()
    # The summary is made once per report, but its status is read afresh each time, and
    # it is what the document says.
    superseded = await running.service.verify_code(code)
    assert superseded.status == "superseded" and superseded.summary is not None
    assert superseded.summary == summary_of(issued.document, status="superseded", now=running.service.clock())
    assert (
        superseded.summary["status"] == "superseded" and superseded.summary["report_no"] == issued.document["report_no"]
    )


# One map from a node's status to the caller's error


def _rpc_error(code: grpc.StatusCode, details: str, status: status_pb2.Status | None = None) -> grpc.aio.AioRpcError:
    trailers = grpc.aio.Metadata()
    if status is not None:
        trailers.add("grpc-status-details-bin", status.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, details=details)


def test_a_refused_field_comes_back_with_its_violation() -> None:
    bad = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="subject_id", description="校验位不符")]
    )
    packed = any_pb2.Any()
    packed.Pack(bad)
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad subject", details=[packed])
    error = node_error(Region.TIANJIN, _rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "bad subject", status))
    assert isinstance(error, InvalidInput) and error.detail == "bad subject"
    assert [(v.field, v.description) for v in error.violations] == [("subject_id", "校验位不符")]


def test_a_details_trailer_that_contradicts_the_code_is_ignored() -> None:
    status = status_pb2.Status(code=code_pb2.NOT_FOUND, message="other")
    error = node_error(Region.TIANJIN, _rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "bad", status))
    assert isinstance(error, InvalidInput) and error.violations == ()


@pytest.mark.parametrize(
    ("code", "kind", "retryable", "transient"),
    [
        (grpc.StatusCode.UNAVAILABLE, NodeUnavailable, True, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, NodeUnavailable, False, True),
        (grpc.StatusCode.UNAUTHENTICATED, NodeUnavailable, False, False),
        (grpc.StatusCode.INTERNAL, NodeUnavailable, False, False),
        (grpc.StatusCode.NOT_FOUND, NotFound, None, None),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition, None, None),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied, None, None),
    ],
)
def test_each_status_maps_to_one_error(code, kind, retryable, transient) -> None:  # type: ignore[no-untyped-def]
    error = node_error(Region.HEBEI, _rpc_error(code, "why"))
    assert type(error) is kind
    assert status_text(error) == f"{code.name}: why"
    if isinstance(error, NodeUnavailable):
        assert (error.retryable, error.transient) == (retryable, transient)
        assert "河北节点暂不可用" in error.detail and error.http_status == 503


async def test_a_batch_answer_reads_back_from_its_stored_bytes() -> None:
    node = MemoryNode(Region.TIANJIN, [record(Region.TIANJIN, COMPANY, decided_on=date(2024, 3, 1))], today=TODAY)
    answer = await node.check_subjects([COMPANY, CLEAN, "x"], QueryOptions(), purpose="p", timeout=1, assertion="a")
    company_line, clean_line, bad_line = wire.check_lines(answer.payload)
    assert [count for _, _, count in company_line.hits] == [1]
    assert clean_line.hits == () and clean_line.kind == "enterprise" and not clean_line.rejected
    assert bad_line.rejected and bad_line.kind is None


async def test_a_sparse_answer_reads_back_as_the_full_one() -> None:
    node = MemoryNode(Region.TIANJIN, [record(Region.TIANJIN, COMPANY, decided_on=date(2024, 3, 1))], today=TODAY)
    asked = [CLEAN, COMPANY, "x", "", CLEAN.lower(), COMPANY]
    sparse = await node.check_subjects(asked, QueryOptions(), purpose="p", timeout=1, assertion="a")
    node.sparse_answers = False
    full = await node.check_subjects(asked, QueryOptions(), purpose="p", timeout=1, assertion="a")
    assert len(sparse.payload) < len(full.payload)
    lines = wire.check_lines(full.payload)
    assert wire.check_lines(sparse.payload) == lines
    flagged = ({i for i, line in enumerate(lines) if line.rejected}, {i for i, line in enumerate(lines) if line.hits})
    assert flagged == ({2, 3}, {1, 5})
    assert wire.flagged_lines(sparse.payload) == wire.flagged_lines(full.payload) == (*flagged, len(asked))


BATCH = [COMPANY, CLEAN, "not-a-code", "", COMPANY.lower(), CLEAN, "bad\x07entry", " ", COMPANY]


async def _tabulated(running: RunningGateway) -> tuple[list[tuple[object, ...]], dict[str, int]]:
    batches = running.batches
    job = await batches.submit(officer(running), BATCH, purpose="招标核查")
    await asyncio.wait_for(batches.wait(job.job_id), 30)
    rows = [dataclasses.astuple(row) for row in batches.rows(job.job_id)]
    counts = (await batches.status(officer(running), job.job_id)).counts
    assert counts is not None
    return rows, counts


async def test_a_batch_reads_the_same_from_sparse_and_full_answers(house) -> None:  # type: ignore[no-untyped-def]
    running, nodes = house
    assert running.batches is not None
    sparse_rows, sparse_counts = await _tabulated(running)
    # Nodes older than sparse answers answer in full; the table and its counts are the same.
    for node in nodes.values():
        node.sparse_answers = False
    full_rows, full_counts = await _tabulated(running)
    assert sparse_rows == full_rows and sparse_counts == full_counts
    assert sparse_counts == {
        "subjects": 9,
        "rejected": 2,
        "with_records": 1,
        "clear": 1,
        "incomplete": 0,
        "duplicates": 3,
        "empty": 2,
    }
    # One region older than the others, and one down.
    nodes[Region.HEBEI].sparse_answers = True
    nodes[Region.BEIJING].fail = PermissionDenied("代查声明已使用 (the assertion was used already)")
    rows, counts = await _tabulated(running)
    assert counts == {**sparse_counts, "clear": 0, "incomplete": 1}
    assert [row[:2] for row in rows] == [row[:2] for row in sparse_rows]


async def test_counting_a_job_agrees_with_its_rows(house, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    running, nodes = house
    monkeypatch.setattr("gateway.batch.jobs.CHUNK", 2)
    batches = running.batches
    assert batches is not None
    monkeypatch.setattr(batches, "chunk", 2)
    nodes[Region.HEBEI].sparse_answers = False
    job = await batches.submit(officer(running), BATCH, purpose="招标核查")
    await asyncio.wait_for(batches.wait(job.job_id), 30)
    assert batches.counts(job.job_id) == count_rows(batches.rows(job.job_id))
    nodes[Region.BEIJING].fail = PermissionDenied("代查声明已使用 (the assertion was used already)")
    down = await batches.submit(officer(running), [*BATCH, CLEAN.lower(), "x"], purpose="招标核查")
    await asyncio.wait_for(batches.wait(down.job_id), 30)
    assert batches.counts(down.job_id) == count_rows(batches.rows(down.job_id))
    assert batches.counts(down.job_id)["incomplete"] == 1
    assert [row.number for row in batches.rows(job.job_id, start=3)] == list(range(4, len(BATCH) + 1))
