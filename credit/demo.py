"""The named demo subjects: the same in every region, so that a three-region report about
them has something to show. Seeded by the nodes, logged in as by the gateway's demo
accounts; built from fixed bodies so the check characters are real. Never for production."""

from __future__ import annotations

from dataclasses import dataclass

from credit.identifiers import SubjectKind, make_resident_id, make_uscc


@dataclass(frozen=True, slots=True)
class DemoSubject:
    key: str
    id: str
    kind: SubjectKind
    name: str
    description: str


DEMO_SUBJECTS = (
    DemoSubject(
        "clean",
        make_uscc("91120116MA05JBXQ0"),
        SubjectKind.ENTERPRISE,
        "天津清源科技有限公司",
        "no record in any region",
    ),
    DemoSubject(
        "records",
        make_uscc("91110108MA01RXNE2"),
        SubjectKind.ENTERPRISE,
        "北京恒泰建设工程有限公司",
        "records in Beijing and Tianjin",
    ),
    DemoSubject(
        "person",
        make_resident_id("12010419850312004"),
        SubjectKind.PERSON,
        "李*华",
        "a person with one health penalty in Tianjin",
    ),
    DemoSubject(
        "clean_person", make_resident_id("13010219900101002"), SubjectKind.PERSON, "王*明", "a person with no record"
    ),
)
