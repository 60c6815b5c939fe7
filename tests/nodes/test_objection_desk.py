"""Objections and credit repair at the owning node: real nodes over gRPC, on SQLite and
PostgreSQL. Every outcome but a refusal is a new record version on the change feed."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date
from pathlib import Path

import grpc
import pytest
from PIL import Image

from credit.cases import CaseKind, case_number, check_attachment, parse_case_number
from credit.regions import Region
from credit.signing import Keyring, SigningKey
from federation.assertions import BATCH, METADATA_KEY, on_behalf_of
from protos.credit.v1 import node_pb2 as pb
from tests.conftest import NodeHandle, StartNode
from tests.nodes.builders import ACME, APPLIED, OTHER, penalty

RECORDS = [
    penalty(decision_no="津罚-1"),
    penalty(decision_no="津罚-2", decided_on=date(2024, 4, 1)),
    penalty(OTHER, decision_no="津罚-3"),
]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def node(db_url: str, start_node_at: StartNode) -> NodeHandle:
    return await start_node_at(Region.TIANJIN, db_url, RECORDS)


async def records_of(node: NodeHandle, subject: str = ACME) -> dict[str, pb.CreditRecord]:
    options = pb.QueryOptions(application_date=pb.Date(year=APPLIED.year, month=APPLIED.month, day=APPLIED.day))
    result = await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=subject, options=options))
    return {r.decision_no: r for d in result.results for r in d.records}


async def feed(node: NodeHandle) -> list[pb.RecordChange]:
    return [change async for change in node.stub.WatchChanges(pb.WatchChangesRequest(after_seq=0))]


async def file(node: NodeHandle, record_id: str, **fields: object) -> pb.Objection:
    fields.setdefault("kind", pb.OBJECTION_KIND_OBJECTION)
    fields.setdefault("reason", "处罚决定已被复议机关撤销")
    return await node.stub.FileObjection(pb.FileObjectionRequest(subject_id=ACME, record_id=record_id, **fields))


async def test_an_objection_marks_the_record_until_it_is_revoked(node: NodeHandle) -> None:
    before = await records_of(node)
    target = before["津罚-1"]
    case = await file(node, target.record_id, attachment=pb.Attachment(filename="复议决定书.pdf", data=PDF))
    assert case.number.startswith("TJ-YY-")
    assert case.state == pb.OBJECTION_STATE_OPEN and case.record_version == 1 and case.filed_by == "unasserted"
    assert case.attachment.sha256 == hashlib.sha256(PDF).hexdigest() and case.attachment.size == len(PDF)
    assert case.attachment.content_type == "application/pdf" and not case.attachment.data
    assert case.record.under_objection

    # 异议处理中 in every answer while open; the other record is untouched; no new version.
    during = await records_of(node)
    assert during["津罚-1"].under_objection and not during["津罚-2"].under_objection
    assert len(await feed(node)) == len(RECORDS)

    mine = await node.stub.ListObjections(pb.ListObjectionsRequest(subject_id=ACME))
    assert [c.number for c in mine.objections] == [case.number]
    assert not (await node.stub.ListObjections(pb.ListObjectionsRequest(subject_id=OTHER))).objections
    full = await node.stub.GetObjection(pb.GetObjectionRequest(number=case.number, with_attachment=True))
    assert full.attachment.data == PDF

    done = await node.stub.ResolveObjection(
        pb.ResolveObjectionRequest(number=case.number, resolution=pb.RESOLUTION_REVOKED, note="经核实，予以撤销")
    )
    assert done.state == pb.OBJECTION_STATE_CLOSED and done.resolution == pb.RESOLUTION_REVOKED
    assert done.new_version == 2 and done.resolution_note == "经核实，予以撤销" and done.HasField("resolved_at")
    assert done.record.version == 2 and done.record.status == pb.RECORD_STATUS_REVOKED
    assert not done.record.under_objection

    # The outcome is the record's next version on the change feed, and reports stop counting it.
    changes = await feed(node)
    assert len(changes) == len(RECORDS) + 1
    last = changes[-1].record
    assert (last.record_id, last.version, last.status) == (target.record_id, 2, pb.RECORD_STATUS_REVOKED)
    assert last.provenance.source == f"{case.number} revoked" and not last.under_objection
    after = await records_of(node)
    assert "津罚-1" not in after and not after["津罚-2"].under_objection

    closed = await node.stub.ListObjections(pb.ListObjectionsRequest(state=pb.OBJECTION_STATE_CLOSED))
    assert [c.number for c in closed.objections] == [case.number]
    assert not (await node.stub.ListObjections(pb.ListObjectionsRequest(state=pb.OBJECTION_STATE_OPEN))).objections


async def test_upheld_corrected_and_credit_repair_each_store_a_version(node: NodeHandle) -> None:
    records = await records_of(node)
    first, second = records["津罚-1"], records["津罚-2"]

    upheld = await file(node, first.record_id)
    await node.stub.ResolveObjection(
        pb.ResolveObjectionRequest(number=upheld.number, resolution=pb.RESOLUTION_UPHELD, note="事实清楚，维持")
    )
    corrected = await file(node, second.record_id, reason="罚款金额有误", attachment=pb.Attachment(data=png()))
    assert corrected.attachment.content_type == "image/png" and corrected.attachment.filename == "attachment.png"
    await node.stub.ResolveObjection(
        pb.ResolveObjectionRequest(
            number=corrected.number,
            resolution=pb.RESOLUTION_CORRECTED,
            note="金额更正",
            correction=pb.Correction(content="罚款人民币500元"),
        )
    )
    repair = await file(node, first.record_id, kind=pb.OBJECTION_KIND_CREDIT_REPAIR, reason="已缴清罚款")
    assert repair.number.startswith("TJ-XF-")
    refused = await node.stub.ResolveObjection(
        pb.ResolveObjectionRequest(number=repair.number, resolution=pb.RESOLUTION_REFUSED, note="未满最短公示期")
    )
    assert refused.new_version == 0
    direct = await node.stub.RepairRecord(pb.RepairRecordRequest(record_id=first.record_id, note="津信修〔2025〕8号"))
    assert direct.number.startswith("TJ-XF-") and direct.state == pb.OBJECTION_STATE_CLOSED
    assert direct.resolution == pb.RESOLUTION_REPAIRED and direct.new_version == 3

    changes = [c.record for c in (await feed(node))[len(RECORDS) :]]
    assert [(r.decision_no, r.version) for r in changes] == [("津罚-1", 2), ("津罚-2", 2), ("津罚-1", 3)]
    assert changes[0].provenance.content_hash == first.provenance.content_hash  # upheld: same content
    assert changes[0].provenance.source == f"{upheld.number} upheld"
    assert (
        changes[1].content == "罚款人民币500元" and changes[1].provenance.content_hash != second.provenance.content_hash
    )
    assert changes[1].category == second.category and changes[1].decided_on == second.decided_on
    assert (
        changes[2].status == pb.RECORD_STATUS_REPAIRED and changes[2].provenance.source == f"{direct.number} repaired"
    )
    # A repaired record is no longer counted under the Tianjin profile.
    assert set(await records_of(node)) == {"津罚-2"}


async def expect(code: grpc.StatusCode, call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    return str(caught.value.details())


async def test_bad_requests_are_refused_and_change_nothing(node: NodeHandle) -> None:
    records = await records_of(node)
    own = records["津罚-1"].record_id
    others = (await records_of(node, OTHER))["津罚-3"].record_id
    bad = grpc.StatusCode.INVALID_ARGUMENT

    await expect(grpc.StatusCode.NOT_FOUND, file(node, "no-such-record"))
    await expect(grpc.StatusCode.NOT_FOUND, file(node, others))  # another subject's record
    await expect(bad, file(node, own, reason="  "))
    await expect(bad, file(node, own, reason="长" * 2001))
    await expect(bad, file(node, own, kind=pb.OBJECTION_KIND_UNSPECIFIED))
    detail = await expect(bad, file(node, own, attachment=pb.Attachment(filename="a.pdf", data=b"just text")))
    assert "PDF" in detail
    await expect(bad, file(node, own, attachment=pb.Attachment(filename="big.pdf", data=PDF + b"0" * (4 << 20))))

    case = await file(node, own)
    await expect(grpc.StatusCode.FAILED_PRECONDITION, file(node, own))  # one open objection per record
    resolve = node.stub.ResolveObjection
    await expect(
        bad, resolve(pb.ResolveObjectionRequest(number=case.number, resolution=pb.RESOLUTION_REPAIRED, note="x"))
    )
    await expect(
        bad, resolve(pb.ResolveObjectionRequest(number=case.number, resolution=pb.RESOLUTION_CORRECTED, note="x"))
    )
    await expect(bad, resolve(pb.ResolveObjectionRequest(number=case.number, resolution=pb.RESOLUTION_REVOKED)))
    await expect(
        bad,
        resolve(
            pb.ResolveObjectionRequest(
                number=case.number,
                resolution=pb.RESOLUTION_UPHELD,
                note="维持",
                correction=pb.Correction(content="不应更改"),
            )
        ),
    )
    await expect(
        bad,
        resolve(
            pb.ResolveObjectionRequest(
                number=case.number,
                resolution=pb.RESOLUTION_CORRECTED,
                note="更正",
                correction=pb.Correction(removed_on=pb.Date(year=2020, month=1, day=1)),
            )
        ),
    )
    await expect(
        bad, resolve(pb.ResolveObjectionRequest(number="not-a-case", resolution=pb.RESOLUTION_UPHELD, note="x"))
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        resolve(pb.ResolveObjectionRequest(number="BJ-YY-00000001", resolution=pb.RESOLUTION_UPHELD, note="x")),
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        resolve(pb.ResolveObjectionRequest(number="TJ-YY-00009999", resolution=pb.RESOLUTION_UPHELD, note="x")),
    )
    await expect(grpc.StatusCode.NOT_FOUND, node.stub.RepairRecord(pb.RepairRecordRequest(record_id="nope", note="x")))
    await expect(bad, node.stub.ListObjections(pb.ListObjectionsRequest(limit=5000)))
    # Another subject does not see the case.
    await expect(
        grpc.StatusCode.NOT_FOUND, node.stub.GetObjection(pb.GetObjectionRequest(number=case.number, subject_id=OTHER))
    )

    assert len(await feed(node)) == len(RECORDS)  # nothing stored by any refusal
    assert (await node.stub.GetObjection(pb.GetObjectionRequest(number=case.number))).state == pb.OBJECTION_STATE_OPEN

    ok = pb.ResolveObjectionRequest(number=case.number, resolution=pb.RESOLUTION_UPHELD, note="维持")
    await resolve(ok)
    await expect(grpc.StatusCode.FAILED_PRECONDITION, resolve(ok))  # decided once
    assert len(await feed(node)) == len(RECORDS) + 1
    # Revoked records cannot be repaired.
    await resolve(
        pb.ResolveObjectionRequest(number=(await file(node, own)).number, resolution=pb.RESOLUTION_REVOKED, note="撤销")
    )
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION, node.stub.RepairRecord(pb.RepairRecordRequest(record_id=own, note="x"))
    )


GATEWAY = SigningKey.generate()


def asserting(subject: str, role: str, user: str = "someone") -> tuple[tuple[str, str], ...]:
    token = on_behalf_of(GATEWAY, issuer="gw", user=user, role=role, subject=subject, purpose="异议")
    return ((METADATA_KEY, token),)


async def test_only_authorities_list_and_decide_every_case(tmp_path: Path, start_node_at: StartNode) -> None:
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(Keyring([GATEWAY.private.public_key()]).jwks()), encoding="utf-8")
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db", RECORDS, gateway_jwks=str(jwks))
    options = pb.QueryOptions(application_date=pb.Date(year=2025, month=6, day=16))
    result = await node.stub.QuerySubject(
        pb.QuerySubjectRequest(subject_id=ACME, options=options), metadata=asserting(ACME, "enterprise")
    )
    record_id = next(r.record_id for d in result.results for r in d.records)
    request = pb.FileObjectionRequest(
        subject_id=ACME, record_id=record_id, kind=pb.OBJECTION_KIND_OBJECTION, reason="错误"
    )

    await expect(grpc.StatusCode.UNAUTHENTICATED, node.stub.FileObjection(request))
    # An assertion for another subject cannot file against this one's record.
    await expect(
        grpc.StatusCode.PERMISSION_DENIED, node.stub.FileObjection(request, metadata=asserting(OTHER, "enterprise"))
    )
    case = await node.stub.FileObjection(request, metadata=asserting(ACME, "enterprise", user="clean-co"))
    assert case.filed_by == "clean-co"

    every = pb.ListObjectionsRequest()
    await expect(
        grpc.StatusCode.PERMISSION_DENIED, node.stub.ListObjections(every, metadata=asserting(BATCH, "enterprise"))
    )
    listed = await node.stub.ListObjections(every, metadata=asserting(BATCH, "agency"))
    assert [c.number for c in listed.objections] == [case.number]
    decide = pb.ResolveObjectionRequest(number=case.number, resolution=pb.RESOLUTION_UPHELD, note="维持")
    await expect(
        grpc.StatusCode.PERMISSION_DENIED, node.stub.ResolveObjection(decide, metadata=asserting(BATCH, "third_party"))
    )
    done = await node.stub.ResolveObjection(decide, metadata=asserting(BATCH, "agency", user="officer-tj"))
    assert done.resolved_by == "officer-tj"


def test_case_numbers_and_attachments() -> None:
    number = case_number(Region.HEBEI, CaseKind.CREDIT_REPAIR, 42)
    assert number == "HE-XF-00000042"
    assert parse_case_number(number.lower()) == (Region.HEBEI, CaseKind.CREDIT_REPAIR, 42)
    for bad in ("", "XX-YY-1", "BJ-ZZ-1", "BJ-YY-", "BJ-YY-1; drop"):
        with pytest.raises(Exception, match="办件编号"):
            parse_case_number(bad)
    assert check_attachment("../../etc/passwd.pdf", PDF).filename == ".._.._etc_passwd.pdf"
