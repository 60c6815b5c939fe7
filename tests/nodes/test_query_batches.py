"""QuerySubjects on a real node: each item is answered, refused and audited exactly as its
own QuerySubject call would be."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from google.rpc import status_pb2

from credit.audit import Action
from credit.regions import Region
from credit.signing import Keyring, SigningKey
from federation.assertions import METADATA_KEY, on_behalf_of
from nodes.servicer import MAX_QUERY_BATCH
from protos.credit.v1 import node_pb2 as pb
from tests.conftest import NodeHandle, StartNode
from tests.nodes.builders import ACME, APPLIED, OTHER, penalty

GATEWAY = SigningKey.generate()
OPTIONS = pb.QueryOptions(
    profile="tianjin-2023", years=3, application_date=pb.Date(year=APPLIED.year, month=APPLIED.month, day=APPLIED.day)
)


def asserting(subject: str, user: str = "bank") -> str:
    return on_behalf_of(GATEWAY, issuer="gw", user=user, role="third_party", subject=subject, purpose="招标投标")


def query(subject: str) -> pb.QuerySubjectRequest:
    return pb.QuerySubjectRequest(subject_id=subject, options=OPTIONS, purpose="招标投标")


@pytest.fixture
async def node(tmp_path: Path, start_node_at: StartNode) -> NodeHandle:
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(Keyring([GATEWAY.private.public_key()]).jwks()), encoding="utf-8")
    records = [penalty(decision_no="津市监罚〔2024〕1号"), penalty(subject=OTHER, decision_no="津市监罚〔2024〕2号")]
    return await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db", records, gateway_jwks=str(jwks))


async def single(node: NodeHandle, request: pb.QuerySubjectRequest, token: str) -> pb.SubjectOutcome:
    """The outcome of one QuerySubject call, in the form a QuerySubjects item takes."""
    metadata = ((METADATA_KEY, token),) if token else None
    try:
        return pb.SubjectOutcome(result=await node.stub.QuerySubject(request, metadata=metadata))
    except grpc.aio.AioRpcError as error:
        trailer = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
        status = status_pb2.Status.FromString(trailer) if trailer else None
        assert status is not None and status.code == error.code().value[0] and status.message == error.details()
        return pb.SubjectOutcome(error=status.SerializeToString())


def outcome_text(outcome: pb.SubjectOutcome) -> str:
    if outcome.HasField("result"):
        return f"result {outcome.result.subject_id} {len(outcome.result.results)} results"
    status = status_pb2.Status.FromString(outcome.error)
    code = next(code for code in grpc.StatusCode if code.value[0] == status.code)
    return f"{code.name}: {status.message}"


async def test_items_are_answered_and_refused_as_their_own_calls(node: NodeHandle) -> None:
    cases = [
        (query(ACME), lambda: asserting(ACME)),
        (query(OTHER), lambda: asserting(OTHER)),
        (query(OTHER), lambda: asserting(ACME)),  # an assertion for another subject
        (query("not-a-code"), lambda: asserting("NOT-A-CODE")),  # invalid input, with field violations
        (query(ACME), lambda: ""),  # no assertion
        (query(ACME), lambda: "garbage"),
    ]
    singles = [await single(node, request, make()) for request, make in cases]
    reply = await node.stub.QuerySubjects(
        pb.QuerySubjectsRequest(queries=[pb.SubjectQuery(query=request, assertion=make()) for request, make in cases])
    )
    assert [outcome_text(o) for o in reply.outcomes] == [outcome_text(o) for o in singles]
    kinds = [o.WhichOneof("outcome") for o in reply.outcomes]
    assert kinds == ["result", "result", "error", "error", "error", "error"]
    assert any(d.records for d in reply.outcomes[0].result.results)  # the answer, not just its shape
    for batched, alone in zip(reply.outcomes, singles, strict=True):
        if alone.HasField("result"):
            assert batched.result == alone.result
        else:  # code, message and details (field violations, error info) all the same
            assert status_pb2.Status.FromString(batched.error) == status_pb2.Status.FromString(alone.error)
    invalid = status_pb2.Status.FromString(reply.outcomes[3].error)
    assert len(invalid.details) == 2  # ErrorInfo and BadRequest


async def test_each_item_keeps_its_own_assertion_and_audit_entry(node: NodeHandle) -> None:
    audit = node.node.servicer.audit
    assert audit is not None
    token = asserting(ACME, user="bank-a")
    reply = await node.stub.QuerySubjects(
        pb.QuerySubjectsRequest(
            queries=[
                pb.SubjectQuery(query=query(ACME), assertion=token),
                pb.SubjectQuery(query=query(OTHER), assertion=asserting(OTHER, user="bank-b")),
                pb.SubjectQuery(query=query(ACME), assertion=token),  # the same assertion again: a replay
            ]
        )
    )
    assert reply.outcomes[0].HasField("result") and reply.outcomes[1].HasField("result")
    # Items run concurrently: whichever of the two uses of the token came second is the replay.
    assert "used before" in outcome_text(reply.outcomes[2]) or "used before" in outcome_text(reply.outcomes[0])
    await node.node.servicer.settle()
    queries = [e for e in audit.find(limit=50) if e.action == Action.NODE_QUERY.value]
    assert sorted((e.actor, e.subject) for e in queries) == [("bank-a", ACME), ("bank-b", OTHER)]
    refused = [e for e in audit.find(limit=50) if e.action == Action.REFUSED.value]
    assert [(e.subject, "used before" in e.detail) for e in refused] == [(ACME, True)]


async def test_a_batch_is_bounded(node: NodeHandle) -> None:
    item = pb.SubjectQuery(query=query(ACME), assertion=asserting(ACME))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await node.stub.QuerySubjects(pb.QuerySubjectsRequest(queries=[item] * (MAX_QUERY_BATCH + 1)))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"at most {MAX_QUERY_BATCH}" in str(raised.value.details())
    empty = await node.stub.QuerySubjects(pb.QuerySubjectsRequest())
    assert list(empty.outcomes) == []
