"""A node's answer carries the subject's entry in its region's register of market entities."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from credit.identifiers import make_resident_id
from credit.regions import Region
from credit.registers import SubjectRegistration
from protos.credit.v1 import node_pb2 as pb
from tests.conftest import StartNode
from tests.nodes.builders import ACME, OTHER, penalty
from tests.nodes.test_node_grpc import options
from tests.nodes.test_replication import in_step, origin_versions

ENTRY = SubjectRegistration(
    subject_id=ACME,
    name="天津测试科技有限公司",
    region=Region.TIANJIN,
    legal_rep="张达博",
    address="天津市滨海新区平谊路153号",
    authority="天津市滨海新区市场监督管理局",
    established_on=date(2015, 11, 5),
    status="存续",
)
PERSON = make_resident_id("12010419850312004")


async def test_the_answer_carries_the_registration_when_the_register_knows_the_subject(
    db_url: str, start_node_at: StartNode
) -> None:
    node = await start_node_at(Region.TIANJIN, db_url, [penalty()], registrations=[ENTRY])
    known = await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=ACME, options=options()))
    assert known.register_searched and known.HasField("registration")
    got = known.registration
    assert (got.name, got.legal_representative, got.address, got.authority, got.status) == (
        "天津测试科技有限公司", "张达博", "天津市滨海新区平谊路153号", "天津市滨海新区市场监督管理局", "存续",
    )  # fmt: skip
    assert (got.established_on.year, got.established_on.month, got.established_on.day) == (2015, 11, 5)

    # Looked up and not found: searched, no entry.
    unknown = await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=OTHER, options=options()))
    assert unknown.register_searched and not unknown.HasField("registration")
    # A person is in no register of market entities: not looked for.
    person = await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=PERSON, options=options()))
    assert not person.register_searched and not person.HasField("registration")


async def test_a_node_without_a_register_does_not_say_the_subject_is_unknown(
    tmp_path: Path, start_node_at: StartNode
) -> None:
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path / 'node.db'}", [penalty()])
    answer = await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=ACME, options=options()))
    assert not answer.register_searched and not answer.HasField("registration")


async def test_registers_are_not_replicated(tmp_path: Path, start_node_at: StartNode) -> None:
    origin_db = f"sqlite:///{tmp_path / 'origin.db'}"
    origin = await start_node_at(Region.TIANJIN, origin_db, [penalty()], registrations=[ENTRY])
    follower = await start_node_at(
        Region.BEIJING, f"sqlite:///{tmp_path / 'follower.db'}", peers={Region.TIANJIN: origin.address}
    )
    await in_step(follower.node.replica, Region.TIANJIN, origin_versions(origin_db)[-1][0])
    query = pb.QuerySubjectRequest(subject_id=ACME, options=options())
    served = await follower.stub.QueryReplica(pb.QueryReplicaRequest(origin="tianjin", query=query))
    assert served.replica.served_by == "beijing"
    assert not served.register_searched and not served.HasField("registration")
