"""Issued reports byte for byte: the canonical JSON and the JWS the report service
produces for a fixed set of answers, time, report number and key, held equal to what
the gateway produced when these files were written (``tests/gateway/data/reports/``).

The cases go through the whole issuing path (fan-out over nodes that answer from fixed
results, merge, document, canonical JSON, signature) and cover: enterprises and persons;
both profiles and both window lengths; records of every kind (lists with removal dates,
penalties with publicity dates, an objection open, text JSON must escape); records left
out by the profile; pairs a region does not cover; a region that does not answer, one
that answers for less than its catalogue claims, one answered from a peer's replica,
one whose catalogue the gateway does not know; registrations found, not found and not
looked for; warnings; an unnumbered preview. A change to any byte of a document fails
here: a report already issued must verify and read the same, and a new one for the same
answers must be the same document.

To write the files again (only when the document format changes on purpose)::

    python -m tests.gateway.test_report_bytes
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from credit.catalogue import Catalogue, Scope, catalogue
from credit.errors import NotFound, PermissionDenied
from credit.identifiers import Subject, SubjectKind, make_resident_id, make_uscc, parse_subject
from credit.policy import Principal, Role
from credit.profiles import get_profile
from credit.regions import Region
from credit.registers import SubjectRegistration
from credit.report import ReplicaResult
from credit.rules import CreditRecord, DomainResult, Outcome, Procedure, RecordStatus, SubjectResult, evaluate
from credit.signing import Keyring, SigningKey, canonical, verify
from credit.window import compute_window
from federation.client import NodeUnavailable
from gateway.registry import Registry
from gateway.reports import service as report_service
from gateway.reports.fanout import FanOut
from gateway.reports.service import ReportService
from infra.auditlog import AuditLog

GOLDEN = Path(__file__).with_name("data") / "reports"
ISSUED_AT = datetime(2025, 6, 16, 2, 0, 5, 250_000, tzinfo=UTC)  # 10:00:05 in Beijing
DATA_AS_OF = datetime(2025, 6, 16, 1, 30, tzinfo=UTC)
REPLICA_AS_OF = datetime(2025, 6, 16, 1, 45, 12, tzinfo=UTC)
ISSUER = "jjj-gateway-test"
# A fixed key: Ed25519 signatures are deterministic, so the JWS is fixed too.
KEY = SigningKey.from_private(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))

COMPANY = make_uscc("91110108MA01RXNE2")  # Beijing
CLEAN_COMPANY = make_uscc("91120116MA05JBXQ0")  # Tianjin
HEBEI_COMPANY = make_uscc("91130102MA0ABCDE1")
PERSON = make_resident_id("12010419850312004")  # Tianjin
CLEAN_PERSON = make_resident_id("13010219900101002")  # Hebei
_BODY = "91120116MA05JBXQ1"
PILOT = _BODY + next(c for c in "0123456789" if c != make_uscc(_BODY)[-1])  # fails the check
TRICKY = 'A "quoted" \\ back\\slash\nnew line\ttab \x01\x1f \u2028\u2029 \U0001f600 \ud7ff\ue000 </script>'


def _subject(raw: str) -> Subject:
    return parse_subject(raw, pilot_codes=frozenset({PILOT}))


def _entry(region: Region, kind: SubjectKind, scope: Scope, nth: int = 0) -> str:
    """The code of the ``nth`` domain the region covers for ``kind`` in ``scope``."""
    return [e.domain.code for e in catalogue(region).for_subject(kind) if scope in e.scopes][nth]


def _record(
    region: Region,
    subject: str,
    nth: int,
    *,
    scope: Scope = Scope.ADMINISTRATIVE_PENALTY,
    domain: str = "",
    which: int = 0,
    decided_on: date = date(2024, 3, 1),
    **fields: object,
) -> CreditRecord:
    kind = _subject(subject).kind
    values: dict[str, object] = {
        "record_id": f"{region.value}-{subject[-6:]}-{nth}",
        "version": 1 + nth % 3,
        "region": region,
        "subject_id": subject,
        "subject_kind": kind,
        "subject_name": "北京恒泰建设工程有限公司",
        "domain": domain or _entry(region, kind, scope, which),
        "scope": scope,
        "decision_no": f"{region.name_zh}罚〔{decided_on.year}〕{nth}号",
        "authority": f"{region.name_zh}市场监督管理局",
        "decided_on": decided_on,
        "category": "罚款",
        "content": "未按规定公示年度报告，罚款人民币五千元",
    }
    values.update(fields)
    return CreditRecord(**values)  # type: ignore[arg-type]


def _registration(region: Region, subject: str, **fields: object) -> SubjectRegistration:
    values: dict[str, object] = {
        "subject_id": subject,
        "name": "北京恒泰建设工程有限公司",
        "region": region,
        "legal_rep": "张三",
        "address": "北京市海淀区中关村大街1号",
        "authority": "北京市海淀区市场监督管理局",
        "established_on": date(2015, 4, 8),
        "status": "存续（在营、开业、在册）",
    }
    values.update(fields)
    return SubjectRegistration(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Answer:
    """What one region's node does in a case."""

    records: Sequence[CreditRecord] = ()
    data_as_of: datetime | None = DATA_AS_OF
    fails: bool = False  # the node does not answer
    register: SubjectRegistration | bool | None = False  # False: no register; None: not in it
    catalogue_known: bool = True  # False: the gateway cannot fetch the region's catalogue
    drop: frozenset[tuple[str, Scope]] = frozenset()  # pairs the answer leaves out
    without_not_covered: bool = True  # as nodes send them: "not covered" pairs left out
    extra: Sequence[DomainResult] = ()  # results beyond the catalogue
    replica_of: Region | None = None  # this node serves that region from its replica


@dataclass(frozen=True)
class Case:
    name: str
    subject: str
    profile: str = "tianjin-2023"
    years: int = 0
    answers: dict[Region, Answer] = field(default_factory=dict)
    organisation: str = "天津市公共信用信息中心"
    contact: str = "022-12345678（工作日 9:00-17:00）"
    preview: bool = False  # an unnumbered, unsigned preview (a grant's)


CASES = (
    Case(
        "enterprise-records-tianjin-3y",
        COMPANY,
        answers={
            Region.BEIJING: Answer(
                records=(
                    _record(Region.BEIJING, COMPANY, 1, publicity_until=date(2027, 3, 1)),
                    _record(Region.BEIJING, COMPANY, 2, decided_on=date(2023, 11, 20), under_objection=True),
                    _record(Region.BEIJING, COMPANY, 11, which=2, decided_on=date(2023, 11, 20)),
                    _record(Region.BEIJING, COMPANY, 3, decided_on=date(2024, 1, 5), procedure=Procedure.SIMPLIFIED),
                    _record(
                        Region.BEIJING,
                        COMPANY,
                        4,
                        scope=Scope.ABNORMAL_OPERATIONS_LIST,
                        decided_on=date(2022, 5, 6),
                        removed_on=date(2024, 8, 1),
                        procedure=Procedure.NOT_APPLICABLE,
                        category="列入经营异常名录",
                        content="通过登记的住所或者经营场所无法联系",
                    ),
                ),
                register=_registration(Region.BEIJING, COMPANY),
            ),
            Region.TIANJIN: Answer(
                records=(
                    _record(Region.TIANJIN, COMPANY, 5, content=TRICKY, authority=TRICKY),
                    _record(Region.TIANJIN, COMPANY, 6, which=1, category="不予行政处罚"),
                    _record(Region.TIANJIN, COMPANY, 7, status=RecordStatus.REPAIRED),
                    _record(Region.TIANJIN, COMPANY, 8, status=RecordStatus.REVOKED),
                ),
                register=None,
            ),
            Region.HEBEI: Answer(
                records=(
                    _record(Region.HEBEI, COMPANY, 9, procedure=Procedure.SIMPLIFIED),
                    _record(Region.HEBEI, COMPANY, 10, decided_on=date(2019, 1, 1)),  # before the window
                ),
                register=None,
            ),
        },
    ),
    Case(
        "enterprise-clean-national-5y",
        CLEAN_COMPANY,
        profile="national-2025",
        years=5,
        answers={region: Answer(register=None) for region in Region},
    ),
    Case(
        "enterprise-national-records-simplified-counted",
        CLEAN_COMPANY,
        profile="national-2025",
        answers={
            Region.BEIJING: Answer(
                records=(
                    _record(
                        Region.BEIJING,
                        CLEAN_COMPANY,
                        3,
                        scope=Scope.ADMINISTRATIVE_COERCION,
                        category="查封",
                        content="查封场所、设施或者财物",
                    ),
                    _record(
                        Region.BEIJING,
                        CLEAN_COMPANY,
                        4,
                        scope=Scope.CRIMINAL_JUDGMENT,
                        procedure=Procedure.NOT_APPLICABLE,
                        decision_no="（2024）京0108刑初100号",
                        authority="北京市海淀区人民法院",
                    ),
                ),
                register=None,
            ),
            Region.TIANJIN: Answer(
                records=(
                    _record(Region.TIANJIN, CLEAN_COMPANY, 1, procedure=Procedure.SIMPLIFIED),
                    _record(Region.TIANJIN, CLEAN_COMPANY, 2, which=1, category="不予行政处罚"),
                    _record(Region.TIANJIN, CLEAN_COMPANY, 5, which=2, status=RecordStatus.REVOKED),
                ),
                register=_registration(
                    Region.TIANJIN,
                    CLEAN_COMPANY,
                    name="天津清源科技有限公司",
                    legal_rep="",
                    established_on=None,
                    status="迁出",
                ),
            ),
            Region.HEBEI: Answer(
                register=_registration(Region.HEBEI, CLEAN_COMPANY, name="天津清源科技有限公司（冀）"),
            ),
        },
    ),
    Case(
        "enterprise-region-unavailable",
        HEBEI_COMPANY,
        answers={
            Region.BEIJING: Answer(records=(_record(Region.BEIJING, HEBEI_COMPANY, 1),), register=None),
            Region.TIANJIN: Answer(register=None),
            Region.HEBEI: Answer(fails=True),
        },
    ),
    Case(
        "enterprise-region-from-replica",
        COMPANY,
        years=5,
        answers={
            Region.BEIJING: Answer(register=_registration(Region.BEIJING, COMPANY), replica_of=Region.TIANJIN),
            Region.TIANJIN: Answer(
                fails=True,
                records=(_record(Region.TIANJIN, COMPANY, 1, decided_on=date(2021, 2, 3)),),
                data_as_of=None,
            ),
            Region.HEBEI: Answer(register=None),
        },
    ),
    Case(
        "enterprise-partial-answers-unknown-catalogue",
        COMPANY,
        answers={
            Region.BEIJING: Answer(
                register=_registration(Region.BEIJING, COMPANY, status="吊销"),
                drop=frozenset(
                    {
                        (
                            _entry(Region.BEIJING, SubjectKind.ENTERPRISE, Scope.ADMINISTRATIVE_PENALTY, 2),
                            Scope.ADMINISTRATIVE_PENALTY,
                        ),
                    }
                ),
            ),
            Region.TIANJIN: Answer(register=None, without_not_covered=False),
            Region.HEBEI: Answer(
                catalogue_known=False,
                without_not_covered=False,
                records=(_record(Region.HEBEI, COMPANY, 1),),
                extra=(
                    DomainResult(
                        "X99",
                        Scope.ADMINISTRATIVE_PENALTY,
                        Outcome.RECORDS,
                        (_record(Region.HEBEI, COMPANY, 2, domain="X99"),),
                    ),
                    DomainResult("X98", Scope.FATAL_ACCIDENT_LIST, Outcome.NOT_COVERED),
                    DomainResult("X97", Scope.ADMINISTRATIVE_COERCION, Outcome.NO_RECORD),
                ),
            ),
        },
    ),
    Case(
        "enterprise-no-registers-pilot-code",
        PILOT,
        answers={
            Region.BEIJING: Answer(),
            Region.TIANJIN: Answer(records=(_record(Region.TIANJIN, PILOT, 1, subject_name=TRICKY),)),
            Region.HEBEI: Answer(data_as_of=None),
        },
        organisation="",
        contact="",
    ),
    Case(
        "person-records",
        PERSON,
        answers={
            Region.BEIJING: Answer(),
            Region.TIANJIN: Answer(
                records=(
                    _record(Region.TIANJIN, PERSON, 1, subject_name="李*华", content="无证行医"),
                    _record(Region.TIANJIN, PERSON, 2, subject_name="李*华", procedure=Procedure.SIMPLIFIED),
                )
            ),
            Region.HEBEI: Answer(),
        },
    ),
    Case(
        "person-clean-national-5y-region-unavailable",
        CLEAN_PERSON,
        profile="national-2025",
        years=5,
        answers={Region.BEIJING: Answer(), Region.TIANJIN: Answer(fails=True), Region.HEBEI: Answer()},
    ),
    Case(
        "preview-enterprise-records",
        COMPANY,
        answers={
            Region.BEIJING: Answer(
                records=(_record(Region.BEIJING, COMPANY, 1, under_objection=True),),
                register=_registration(Region.BEIJING, COMPANY),
            ),
            Region.TIANJIN: Answer(register=None),
            Region.HEBEI: Answer(register=None),
        },
        preview=True,
    ),
)


class FixedNode:
    """A node that answers every query with one fixed result (or fails), as a client of
    the gateway sees it after decoding."""

    def __init__(self, region: Region, case: Case) -> None:
        self.region = region
        self.case = case
        self.answer = case.answers.get(region, Answer())

    def _result(self, region: Region, subject: Subject) -> SubjectResult:
        answer = self.case.answers.get(region, Answer())
        profile = get_profile(self.case.profile)
        window = compute_window(ISSUED_AT.date(), self.case.years, profile)
        result = evaluate(
            subject,
            answer.records,
            catalogue=catalogue(region),
            profile=profile,
            window=window,
            data_as_of=answer.data_as_of,
        )
        kept = tuple(
            r
            for r in result.results
            if (r.domain, r.scope) not in answer.drop
            and not (answer.without_not_covered and r.outcome is Outcome.NOT_COVERED)
        )
        result = dataclasses.replace(result, results=kept + tuple(answer.extra))
        if answer.register is not False and subject.kind is SubjectKind.ENTERPRISE:
            registration = answer.register if isinstance(answer.register, SubjectRegistration) else None
            result = dataclasses.replace(result, register_searched=True, registration=registration)
        return result

    async def query(self, subject: Subject, profile: object, options: object, **_: object) -> SubjectResult:
        if self.answer.fails:
            raise NodeUnavailable(self.region, "UNAVAILABLE", "connection refused", reason="无法连接 (unavailable)")
        return self._result(self.region, subject)

    async def query_replica(self, origin: Region, subject: Subject, *args: object, **_: object) -> ReplicaResult:
        if self.answer.replica_of is not origin:
            raise NotFound(f"no replica of {origin.value} here")
        return ReplicaResult.of(self._result(origin, subject), served_by=self.region, replica_as_of=REPLICA_AS_OF)

    async def catalogue(self, *, timeout: float, origin: Region | None = None) -> Catalogue:
        region = origin or self.region
        if not self.case.answers.get(region, Answer()).catalogue_known:
            raise PermissionDenied("catalogue withheld")
        return catalogue(region)


async def issue(case: Case, registry: Registry, numbers: Callable[[], tuple[str, str]]) -> tuple[bytes, str]:
    """The case's canonical JSON and JWS ("" for a preview), as the report service makes them."""
    audit = AuditLog(registry.engine, writes=registry.writes)
    fanout = FanOut(
        {region: FixedNode(region, case) for region in Region},  # type: ignore[misc]
        replica_max_age=10**10,
    )
    service = ReportService(
        fanout=fanout,
        registry=registry,
        signing_key=KEY,
        keyring=Keyring([KEY.private.public_key()]),
        issuer=ISSUER,
        audit=audit,
        clock=lambda: ISSUED_AT,
        organisation=case.organisation,
        contact=case.contact,
    )
    admin = Principal("admin", Role.ADMIN, None, ISSUER)
    if case.preview:
        document = await service.draft(admin, subject_id=case.subject, years=case.years, profile_id=case.profile)
        return canonical(document), ""
    report_no, code = numbers()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report_service, "new_report_number", lambda day: report_no)
        patch.setattr(report_service, "new_verification_code", lambda: code)
        issued = await service.issue_authorised(
            admin, subject=_subject(case.subject), years=case.years, profile_id=case.profile, purpose="投标"
        )
    assert issued.document_json.encode() == canonical(issued.document)
    return issued.document_json.encode(), issued.jws


def _numbers() -> Callable[[], tuple[str, str]]:
    count = iter(range(1, 1000))

    def next_numbers() -> tuple[str, str]:
        n = next(count)
        return f"JJJ-20250616-{n:010d}", f"7K3M-9QXR-2D8F-{n:04d}-P"

    return next_numbers


async def issue_all(db: Path) -> dict[str, tuple[bytes, str]]:
    registry = Registry.open(f"sqlite:///{db}")
    try:
        numbers = _numbers()
        return {case.name: await issue(case, registry, numbers) for case in CASES}
    finally:
        await registry.writes.flush()
        registry.close()


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, str]]:
    return asyncio.run(issue_all(tmp_path_factory.mktemp("golden") / "gateway.db"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def golden(case: Case) -> tuple[bytes, str]:
    """A case's canonical JSON and its JWS ("" for a preview). The JWS is kept in its
    detached form (RFC 7515 appendix F: ``header..signature``), its payload being the
    JSON file's bytes."""
    document = (GOLDEN / f"{case.name}.json").read_bytes()
    if case.preview:
        return document, ""
    header, empty, signature = (GOLDEN / f"{case.name}.jws").read_text(encoding="ascii").strip().split(".")
    assert not empty
    return document, f"{header}.{_b64(document)}.{signature}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_an_issued_report_is_the_same_document_byte_for_byte(issued: dict[str, tuple[bytes, str]], case: Case) -> None:
    assert issued[case.name] == golden(case)


@pytest.mark.parametrize("case", [case for case in CASES if not case.preview], ids=lambda case: case.name)
def test_the_golden_files_are_signed_reports(case: Case) -> None:
    document, jws = golden(case)
    assert canonical(verify(jws, Keyring([KEY.private.public_key()]))) == document


def test_the_cases_cover_what_they_claim() -> None:
    """Each kind of content the golden files are meant to hold is in at least one."""
    texts = [(GOLDEN / f"{case.name}.json").read_text(encoding="utf-8") for case in CASES]
    everything = "\n".join(texts)
    for needle in (
        '"outcome":"records"',
        '"outcome":"not_covered"',
        '"outcome":"unavailable"',
        '"excluded":',
        '"objection":"open"',
        '"source":"replica"',
        '"status":"unavailable"',
        '"register":{',
        '"register":null',
        '"register_note":',
        '"kind":"person"',
        '"id":"national-2025"',
        '"years":5',
        '"removed_on":"',
        '"publicity_until":"',
        '"domain":"X99"',
        '"report_no":""',
        '"notes":["',
        "\\u0001",
        "\\n",
        "\U0001f600",
    ):
        assert needle in everything, needle


def write() -> None:
    """Write the golden files from what the gateway issues now."""
    with tempfile.TemporaryDirectory() as folder:
        produced = asyncio.run(issue_all(Path(folder) / "gateway.db"))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, (document, jws) in produced.items():
        (GOLDEN / f"{name}.json").write_bytes(document)
        if jws:
            header, _, signature = jws.split(".")
            (GOLDEN / f"{name}.jws").write_text(f"{header}..{signature}\n", encoding="ascii")
        print(f"{name}: {len(document)} bytes", file=sys.stderr)


if __name__ == "__main__":
    write()


async def test_a_report_whose_audit_entry_cannot_be_written_is_not_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registering a report and auditing its issue are one transaction: when the audit
    log cannot be appended to, the caller gets the error and no report is registered
    (no verification code leads to a report whose issue left no trace)."""
    registry = Registry.open(f"sqlite:///{tmp_path / 'gateway.db'}")

    def refused(*_: object) -> None:
        raise RuntimeError("the audit log cannot be written")

    monkeypatch.setattr(AuditLog, "_append", refused)
    case = next(case for case in CASES if not case.preview)
    try:
        with pytest.raises(RuntimeError, match="audit log"):
            await issue(case, registry, lambda: ("JJJ-20250616-0000000001", "7K3M-9QXR-2D8F-0001-P"))
        assert await registry.report_by_number("JJJ-20250616-0000000001") is None
        assert await registry.status_by_code("7K3M-9QXR-2D8F-0001-P") is None
    finally:
        registry.close()
