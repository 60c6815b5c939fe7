"""What the gateway does, in the domain's words; HTTP and gRPC handlers only translate."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog

from credit import policy
from credit.audit import Action, Event, EventOutcome
from credit.clock import china_date
from credit.codes import new_report_number, new_verification_code, parse_verification_code
from credit.document import DEMO_ORGANISATION, Issue, issuer_name, profile_name, report_document, valid_until
from credit.errors import FailedPrecondition, InvalidInput, NotFound, TooManyAttempts
from credit.identifiers import Subject, parse_subject
from credit.issued import issued_document
from credit.policy import Principal, Redeemer
from credit.profiles import get_profile
from credit.queries import MAX_PURPOSE, QueryOptions, check_purpose
from credit.regions import Region
from credit.registers import RegisterFinding, find_registration
from credit.report import MergedReport, RegionFailure, merge
from credit.rules import SubjectResult
from credit.signing import Keyring, SigningKey, VerificationError, canonical, sign_canonical, verify
from credit.window import compute_window
from federation.assertions import on_behalf_of
from gateway.registry import RegisteredReport, Registry, already_registered, report_write
from gateway.reports.fanout import FanOut
from gateway.reports.pdf import render as render_pdf
from gateway.reports.seal import Seal, SealTrust
from gateway.reports.verify import read_upload
from infra.auditlog import AuditLog
from infra.throttle import AddressLimit

log = structlog.get_logger("jjj.gateway")
RETENTION = timedelta(days=3653)  # 10 years (报告保存10年)
LOOKUPS_PER_MINUTE = 60  # verification-code lookups per client address, by default
SUMMARIES_REMEMBERED = 20_000  # verification summaries kept in memory (about 2 kB each)
APPLICATION_DATE_IS_TODAY = (
    "申请日期即报告出具当日（北京时间），不能指定 (the application date is the day of issue, China Standard Time, "
    "and cannot be chosen)"
)


# Who was given a report (by number) through a grant that still lasts at a moment.
RedeemerLookup = Callable[[str, datetime], Awaitable[Sequence[Redeemer]]]


@dataclass(frozen=True, slots=True)
class IssuedReport:
    document: dict[str, Any]
    jws: str
    status: str
    # The document's canonical JSON, when at hand: replies embed it as it is instead of
    # encoding the document again.
    canonical: bytes = b""

    @property
    def document_json(self) -> str:
        """The document's canonical JSON as text ("" when not at hand)."""
        return self.canonical.decode()


@dataclass(frozen=True, slots=True)
class Verification:
    """What a verifier is told: genuine or not, why, and the registered summary."""

    genuine: bool
    status: str  # valid / superseded / revoked / unknown / not_genuine
    reason: str = ""
    summary: dict[str, Any] | None = None
    sealed_by: str = ""  # a printed report's: the organisation whose PDF signature it carries
    holder_name: str = ""  # a person's own printed copy's: the full name it prints for them


def summary_of(document: dict[str, Any], *, status: str, now: datetime) -> dict[str, Any]:
    """What a verifier is shown of a genuine report: who it is about (with the
    registration details it certifies), what it covers,
    under which rules, what it says overall and whether each region answered, when it was
    issued and until when it stands in for a certificate (its profile's validity period),
    and its registered status: enough to match a paper report against.

    Raises nothing: a field the document lacks is shown empty.
    """
    return Summary.of(document).at(status=status, now=now)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a verifier is shown of a report, but its status and whether it is past its
    validity: what never changes once the report is issued, so it is made once per report
    and remembered (see :meth:`ReportService.verify_code`)."""

    fields: dict[str, Any]
    until: date | None

    @classmethod
    def of(cls, document: dict[str, Any]) -> Summary:
        """Raises nothing: a field the document lacks is shown empty."""
        subject = document.get("subject") or {}
        window = document.get("window") or {}
        profile = document.get("profile") or {}
        issued_at = str(document.get("issued_at", ""))
        until = valid_until(document)
        register = subject.get("register")
        fields = {
            "report_no": document.get("report_no", ""),
            "subject_id": subject.get("id", ""),
            "subject_name": subject.get("name", ""),
            "subject_kind": subject.get("kind", ""),
            # What the report certifies of the subject's registration: the details, or in
            # words why it shows none ("" for a report issued before registers were read).
            "register": register if isinstance(register, dict) else None,
            "register_note": str(subject.get("register_note") or ""),
            "profile": f"{profile.get('id', '')}@{profile.get('version', '')}",
            "profile_name": profile_name(document),
            "title": document.get("title", ""),
            "issuer_name": issuer_name(document),
            "window": {
                "application_date": window.get("application_date", ""),
                "years": window.get("years", 0),
                "start": window.get("start", ""),
                "cutoff": window.get("cutoff", ""),
            },
            "verdict": document.get("verdict", ""),
            "regions": [
                {
                    "region": str(region.get("region", "")),
                    "name": str(region.get("name", "")),
                    "status": str(region.get("status", "")),
                    "data_as_of": region.get("data_as_of"),
                    "reason": region.get("reason"),
                }
                for region in document.get("regions") or ()
                if isinstance(region, dict)
            ],
            "issued_at": issued_at,
            "valid_until": until.isoformat() if until is not None else "",
        }
        return cls(fields, until)

    def at(self, *, status: str, now: datetime) -> dict[str, Any]:
        """The summary with the report's registered ``status``, seen at ``now``: a new
        dict each time, whose nested values are shared with every other (read them, do not
        change them). Raises nothing."""
        return {
            **self.fields,
            "past_validity": self.until is not None and china_date(now) > self.until,
            "status": status,
        }


def _payload(jws: str) -> dict[str, Any]:
    """The document inside a token this gateway signed and registered (trusted: it comes
    from the registry, not from the caller)."""
    body = jws.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


class ReportService:
    def __init__(
        self,
        *,
        fanout: FanOut,
        registry: Registry,
        signing_key: SigningKey,
        keyring: Keyring,
        issuer: str,
        audit: AuditLog,
        default_profile: str = "tianjin-2023",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        redeemers: RedeemerLookup | None = None,
        organisation: str = DEMO_ORGANISATION,
        contact: str = "",
        seal: Seal | None = None,
        seal_trust: SealTrust | None = None,
        lookups_per_minute: int = LOOKUPS_PER_MINUTE,
    ) -> None:
        # Who was given a report through a grant (kept by the grants' room, which this
        # one cannot import): they may open it again, and download it.
        self.redeemers = redeemers
        # The application date is the day of issue in China Standard Time, read from this
        # clock; no caller chooses it (tests set the clock).
        self.clock = clock
        # Verification-code lookups a minute per client address, in this process (the
        # server gives each worker process its share of the instance's limit).
        self.lookups = AddressLimit(limit=lookups_per_minute, window=60.0)
        # The unchanging part of what verifiers are shown, by report hash (a report's
        # status is read afresh at every lookup; the rest of its summary never changes).
        self._summaries: OrderedDict[str, Summary] = OrderedDict()
        self.fanout = fanout
        self.registry = registry
        self.audit = audit
        self.signing_key = signing_key
        self.keyring = keyring
        self.issuer = issuer
        self.default_profile = default_profile
        # The issuing organisation people read, its contact details, its document-signing
        # certificate (every printed report is signed with it) and the CA(s) a handed-in
        # PDF's signature must chain to.
        self.organisation = organisation
        self.contact = contact
        self.seal = seal
        self.seal_trust = seal_trust

    async def _may_ask_for(self, principal: Principal, subject_id: str, purpose: str = "") -> None:
        refusal = policy.report_refusal(principal, subject_id)
        if refusal is None:
            return
        log.warning("access_refused", username=principal.username, role=principal.role.value, subject=subject_id)
        await self.audit.record(
            Event(
                principal.username,
                principal.role.value,
                Action.REFUSED,
                subject_id,
                purpose[:MAX_PURPOSE],
                EventOutcome.REFUSED,
                "report of another subject",
            )
        )
        raise refusal

    async def issue(
        self,
        principal: Principal,
        *,
        subject_id: str,
        years: int = 0,
        profile_id: str = "",
        purpose: str = "",
    ) -> IssuedReport:
        """Ask the three regions, merge, sign, register.

        Raises:
            InvalidIdentifier: the subject identifier is invalid.
            UnknownName: an unknown profile.
            InvalidWindow: years other than the profile offers.
            PermissionDenied: the principal may not get this subject's report.
        """
        subject = parse_subject(subject_id or principal.subject_id or "", field="subject")
        check_purpose(purpose)
        await self._may_ask_for(principal, subject.id, purpose)
        return await self.issue_authorised(
            principal,
            subject=subject,
            years=years,
            profile_id=profile_id,
            purpose=purpose,
        )

    async def _gather(
        self, principal: Principal, subject: Subject, years: int, profile_id: str, purpose: str
    ) -> tuple[MergedReport, datetime, str, RegisterFinding]:
        """Ask the three regions and merge their answers: the report's content, the moment
        it stands for, the subject's name (the register's; only a subject no register
        knows is named by its records) and what the registers said.

        Raises:
            UnknownName: an unknown profile.
            InvalidWindow: years other than the profile offers.
        """
        profile = get_profile(profile_id or self.default_profile)
        issued_at = self.clock()
        applied = china_date(issued_at)
        window = compute_window(applied, years, profile)
        options = QueryOptions(profile=profile.id, years=window.years, application_date=applied)

        def assertion() -> str:
            # One for every node call: a node accepts each assertion once.
            return on_behalf_of(
                self.signing_key,
                issuer=self.issuer,
                user=principal.username,
                role=principal.role.value,
                subject=subject.id,
                purpose=purpose,
            )

        answers = await self.fanout.query(subject, profile, options, purpose=purpose, assertion=assertion)
        report = merge(subject, profile, window, catalogues=self.fanout.catalogues(), answers=answers)
        finding = register_finding(subject, answers)
        name = finding.registration.name if finding.registration else _subject_name(answers)
        return report, issued_at, name, finding

    def _issue(
        self,
        issued_at: datetime,
        subject_name: str,
        finding: RegisterFinding,
        *,
        report_no: str = "",
        verification_code: str = "",
    ) -> Issue:
        """What this gateway adds to a report: itself as the issuer (its technical name, the
        organisation people read and its contact), the moment, the subject's name and what
        the registers said. A draft leaves the number and the verification code empty."""
        return Issue(
            report_no=report_no,
            verification_code=verification_code,
            issued_at=issued_at,
            issuer=self.issuer,
            subject_name=subject_name,
            register=finding,
            issuer_name=self.organisation,
            issuer_contact=self.contact,
        )

    async def draft(
        self, principal: Principal, *, subject_id: str, years: int = 0, profile_id: str = "", purpose: str = ""
    ) -> dict[str, Any]:
        """What the subject's report would say now, as a document that is neither numbered,
        signed nor registered (no verification code leads to it): a grant's preview.

        Raises:
            InvalidIdentifier: the subject identifier is invalid.
            UnknownName: an unknown profile.
            InvalidWindow: years other than the profile offers.
            PermissionDenied: the principal may not get this subject's report.
        """
        subject = parse_subject(subject_id, field="subject")
        check_purpose(purpose)
        await self._may_ask_for(principal, subject.id, purpose)
        report, at, name, finding = await self._gather(principal, subject, years, profile_id, purpose or "授权预览")
        return report_document(report, self._issue(at, name, finding))

    async def issue_authorised(
        self,
        principal: Principal,
        *,
        subject: Subject,
        years: int = 0,
        profile_id: str = "",
        purpose: str = "",
    ) -> IssuedReport:
        """Issue a report the caller has already authorised (a subject's own, or a
        grant's): ask, merge, sign, then register it and log the access in one
        transaction.

        Raises:
            UnknownName: an unknown profile.
            InvalidWindow: years other than the profile offers.
            FailedPrecondition: the drawn number or verification code is already registered.
            sqlalchemy.exc.OperationalError: the registry cannot be written (nothing is).
        """
        purpose = purpose or "无违法违规证明"
        report, issued_at, name, finding = await self._gather(principal, subject, years, profile_id, purpose)
        profile = report.profile
        issue = self._issue(
            issued_at,
            name,
            finding,
            report_no=new_report_number(china_date(issued_at)),
            verification_code=new_verification_code(),
        )
        document, payload = issued_document(report, issue)
        token = sign_canonical(payload, self.signing_key)
        entry = RegisteredReport(
            report_no=issue.report_no,
            verification_code=issue.verification_code,
            subject_id=subject.id,
            subject_kind=subject.kind.value,
            profile=profile.ref,
            verdict=report.verdict.value,
            sha256=hashlib.sha256(token.encode()).hexdigest(),
            jws=token,
            status="valid",
            issued_at=issued_at,
            retain_until=issued_at + RETENTION,
            requested_by=principal.username,
        )
        records = [
            (cell.region.value, record.record_id, record.version)
            for line in report.lines
            for cell in line.cells
            for record in cell.records
        ]
        event = Event(
            principal.username,
            principal.role.value,
            Action.REPORT_ISSUED,
            subject.id,
            purpose,
            detail=f"{issue.report_no} verdict={report.verdict.value}",
        )
        # The report is registered and its issue audited in one transaction: no report
        # without its audit entry, nor an entry for a report that was not registered.
        with already_registered(entry):
            await self.audit.record_with(event, report_write(entry, records))
        log.info("report_issued", report_no=issue.report_no, verdict=report.verdict.value, by=principal.username)
        return IssuedReport(document, token, "valid", payload)

    async def _holds_redeemed(self, principal: Principal, entry: RegisteredReport) -> bool:
        # Asked only when the rules would refuse otherwise: one lookup for a third party.
        if self.redeemers is None or policy.report_refusal(principal, entry.subject_id) is None:
            return False
        redeemers = await self.redeemers(entry.report_no, self.clock())
        return policy.report_refusal(principal, entry.subject_id, redeemers=redeemers, home=self.issuer) is None

    async def get(self, principal: Principal, report_no: str) -> IssuedReport:
        """A registered report, for its subject (or an admin), or for whoever was given it
        through a grant that still lasts (see ``redeemers``).

        Raises:
            NotFound: no such report.
            PermissionDenied: another subject's report.
        """
        entry = await self.registry.report_by_number(report_no.strip())
        if entry is None:
            raise NotFound(f"没有编号为 {report_no} 的报告 (no report numbered {report_no})")
        if not await self._holds_redeemed(principal, entry):
            await self._may_ask_for(principal, entry.subject_id)
        await self.audit.record(
            Event(principal.username, principal.role.value, Action.REPORT_VIEWED, entry.subject_id, detail=report_no)
        )
        return IssuedReport(verify(entry.jws, self.keyring), entry.jws, entry.status)

    async def mine(
        self, principal: Principal, *, page: int = 1, per_page: int = 20
    ) -> tuple[list[RegisteredReport], bool]:
        """A page (counted from 1) of the reports a subject's account had issued about its
        own subject, newest first, and whether another page follows; none for an account
        that speaks for no subject.

        Raises:
            InvalidInput: a page below 1 or beyond what anyone pages through.
        """
        if not 1 <= page <= 10_000:
            raise InvalidInput.for_field("page", "页码应为 1 至 10000 (page must be 1 to 10000)")
        subject = policy.own_subject(principal)
        if subject is None:
            return [], False
        found = await self.registry.reports_of(
            subject, requested_by=principal.username, offset=(page - 1) * per_page, limit=per_page + 1
        )
        return found[:per_page], len(found) > per_page

    async def registered(self, report_no: str) -> IssuedReport:
        """A registered report with its current status, for a caller already authorised.

        Raises:
            NotFound: no such report.
        """
        entry = await self.registry.report_by_number(report_no)
        if entry is None:
            raise NotFound(f"没有编号为 {report_no} 的报告 (no report numbered {report_no})")
        return IssuedReport(verify(entry.jws, self.keyring), entry.jws, entry.status)

    def printed(self, issued: IssuedReport, *, verify_url: str, holder_name: str = "") -> bytes:
        """The printed report (PDF), signed by the issuing organisation; ``holder_name``
        for a person's own copy (see :func:`gateway.reports.pdf.render`). Takes a
        fraction of a second of CPU: call it off the event loop.

        Raises:
            FailedPrecondition: this instance has no document-signing certificate (so it
                prints no report), or signing failed.
            ValueError: ``holder_name`` cannot stand for the subject's name.
        """
        if self.seal is None:
            raise FailedPrecondition(
                "本站未配置签发机构的文书签名证书，暂不能出具 PDF 报告 (this gateway has no document-signing "
                "certificate: set JJJ_GATEWAY_SEAL_CERT and JJJ_GATEWAY_SEAL_KEY)"
            )
        return render_pdf(issued.document, issued.jws, verify_url=verify_url, seal=self.seal, holder_name=holder_name)

    async def verify_code(self, code: str, *, address: str = "") -> Verification:
        """What the registry says about a verification code; ``address`` (the caller's)
        is limited to the service's lookups a minute.

        Raises:
            InvalidInput: not a well-formed code (wrong length, typo caught by the check).
            TooManyAttempts: too many lookups from ``address``.
        """
        if address:
            try:
                self.lookups.check(address, "核验")
            except TooManyAttempts as exc:
                await self._refused_lookup(address, exc.detail)
                raise
        try:
            canonical_code = parse_verification_code(code)
        except InvalidInput as exc:
            await self._refused_lookup(address, exc.detail)
            raise
        # The report's hash and status: a small read. Its summary is made from the
        # registered document only the first time (and again once forgotten).
        found = await self.registry.status_by_code(canonical_code)
        summary = self._summaries.get(found[0]) if found is not None else None
        if found is not None and summary is None:
            entry = await self.registry.report_by_code(canonical_code)
            if entry is not None:
                summary = self._remember(entry.sha256, Summary.of(_payload(entry.jws)))
                found = entry.sha256, entry.status
            else:
                found = None
        # The public verification log keeps report hashes only, never identifiers.
        await self._verified(found[0] if found else "", "code", found is not None)
        if found is None or summary is None:
            return Verification(False, "unknown", "没有与此核验码对应的报告 (no report has this verification code)")
        status = found[1]
        return Verification(True, status, summary=summary.at(status=status, now=self.clock()))

    def _remember(self, sha256: str, summary: Summary) -> Summary:
        self._summaries[sha256] = summary
        while len(self._summaries) > SUMMARIES_REMEMBERED:
            self._summaries.popitem(last=False)
        return summary

    async def _refused_lookup(self, address: str, reason: str) -> None:
        await self.audit.record(
            Event(
                "public",
                "verifier",
                Action.VERIFIED,
                outcome=EventOutcome.REFUSED,
                detail=f"code refused from {address or '-'}: {reason}"[:200],
            )
        )

    async def _verified(self, report_hash: str, how: str, found: bool) -> None:
        await self.audit.record(
            Event(
                "public",
                "verifier",
                Action.VERIFIED,
                outcome=EventOutcome.OK if found else EventOutcome.REFUSED,
                detail=f"{how} sha256={report_hash or '-'}",
            )
        )

    async def verify_report(self, token: str) -> Verification:
        """Whether a signed report is genuine, and its registered status."""
        if not token.isascii():  # never a compact JWS (and not hashable as sent: lone surrogates)
            return Verification(False, "not_genuine", "不是完整的签名报告 (not a compact JWS: non-ASCII characters)")
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        try:
            document = verify(token, self.keyring)
        except VerificationError as exc:
            await self._verified(digest, "jws", False)
            return Verification(False, "not_genuine", exc.detail)
        entry = await self.registry.report_by_hash(digest)
        await self._verified(digest, "jws", entry is not None)
        if entry is None:
            return Verification(
                False, "unknown", "签名有效但未登记 (signed by a known key but not in the registry)", None
            )
        return Verification(True, entry.status, summary=summary_of(document, status=entry.status, now=self.clock()))

    async def verify_upload(
        self, data: bytes, *, verify_url_for: Callable[[dict[str, Any]], str] | None = None
    ) -> Verification:
        """Whether a handed-in report (a PDF, a JWS, JSON holding one, or the bare JSON
        document) is genuine, and its registered status (see :mod:`gateway.reports.verify`).

        Raises nothing for a file that is not genuine: the answer says why.
        """
        try:
            upload = await asyncio.to_thread(
                read_upload, data, self.keyring, trust=self.seal_trust, verify_url_for=verify_url_for
            )
        except VerificationError as exc:
            return Verification(False, "not_genuine", exc.detail)
        if upload.token:
            return await self.verify_report(upload.token)
        if upload.bare is not None:
            # A bare report document: genuine only if it is exactly what was signed.
            entry = await self.registry.report_by_code(str(upload.bare["verification_code"]))
            if entry is not None and canonical(verify(entry.jws, self.keyring)) == canonical(upload.bare):
                return await self.verify_report(entry.jws)
            return Verification(False, "not_genuine", "内容与登记的报告不一致 (does not match the registered report)")
        printed = upload.printed or {}
        entry = await self.registry.report_by_code(str(printed.get("verification_code", "")))
        if entry is None or entry.report_no != printed.get("report_no"):
            return Verification(False, "unknown", "签名有效但未登记 (signed by a known key but not in the registry)")
        return dataclasses.replace(
            await self.verify_report(entry.jws), sealed_by=upload.sealed_by, holder_name=upload.holder_name
        )


def register_finding(subject: Subject, answers: Mapping[Region, SubjectResult | RegionFailure]) -> RegisterFinding:
    """What the regions' registers said about the subject (see :func:`credit.registers.find_registration`):
    a region whose own node answered looked in its register when it says so; a failed
    region, or one answered from a peer's replica, did not.

    Raises nothing.
    """
    found = {
        region: answer.registration
        for region, answer in answers.items()
        if isinstance(answer, SubjectResult) and answer.register_searched
    }
    return find_registration(subject, found, asked=answers.keys())


def _subject_name(answers: Mapping[Region, SubjectResult | RegionFailure]) -> str:
    for answer in answers.values():
        for result in getattr(answer, "results", ()):
            for record in result.records:
                if record.subject_name:
                    return str(record.subject_name)
    return ""
