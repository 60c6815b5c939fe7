"""Authorisation grants (授权查询): a subject lets a third party fetch its report.

The subject first previews what the grantee will see — who, under which profile, for
which period, and what the three regions say today — without a report being issued: a
preview is asked and merged but neither numbered, signed nor registered, so a preview
that is never confirmed leaves nothing in the registry. Confirming creates the grant and,
for a ``fixed`` grant, issues the one report it serves; a ``fresh`` grant issues a new
report at each use instead. The grant gets an authorisation code (shown once, stored only
as its SHA-256) and a QR code carrying the gateway's URL for it. A grant has a purpose, an
optional grantee — an organisation by its unified social credit code, whose every account
of this instance may use it, or one account (of this instance, ``user``, or of a trusted
peer instance, ``user@issuer``: see :func:`grantee_of`) — an expiry of at most 30 days and
a number of uses. Each use is counted atomically in the database, so two redemptions
racing for the last use cannot both succeed, and each use is kept (a redemption), so that
the redeemer can open the report again, and download it, without using the grant again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import segno

from credit import policy
from credit.audit import Action, Event, EventOutcome
from credit.codes import new_grant_code, parse_grant_code
from credit.errors import FailedPrecondition, InvalidInput, NotFound, PermissionDenied, TooManyAttempts
from credit.identifiers import SubjectKind, parse_subject
from credit.policy import Grantee, Principal, Role
from credit.queries import MAX_PURPOSE
from credit.signing import ALGORITHM, TokenType, VerificationError, canonical, sign_claims, token_header
from gateway.access.grant_store import Grant, GrantStore, Redemption, RedemptionStore
from gateway.registry import Organisation
from gateway.reports.service import IssuedReport, ReportService
from infra.throttle import AddressLimit

MAX_DAYS = 30
MAX_USES = 100
MODES = ("fixed", "fresh")
PREVIEW_LIFETIME = timedelta(minutes=15)
PREVIEW_AUDIENCE = "jjj-grant-preview"
CODE_LOOKUPS_PER_MINUTE = 30


@dataclass(frozen=True, slots=True)
class GrantTerms:
    purpose: str
    grantee: str | None
    days: int
    max_uses: int
    mode: str
    years: int
    profile: str
    grantee_org: str | None = None  # an organisation's unified social credit code

    @classmethod
    def parse(cls, body: dict[str, Any]) -> GrantTerms:
        """Terms from a request body, checked.

        Raises:
            InvalidInput: a missing purpose, an expiry beyond 30 days, uses out of range,
                an unknown mode, both an account and an organisation as grantee.
            InvalidIdentifier: an organisation's code that is not a unified social credit code.
        """
        purpose = str(body.get("purpose") or "").strip()
        if not purpose or len(purpose) > MAX_PURPOSE:
            raise InvalidInput.for_field(
                "purpose", f"请填写授权用途 (state the purpose, at most {MAX_PURPOSE} characters)"
            )
        days, uses = body.get("days", 7), body.get("max_uses", 1)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
            raise InvalidInput.for_field("days", f"授权期限为 1 至 {MAX_DAYS} 天 (1 to {MAX_DAYS} days)")
        if not isinstance(uses, int) or isinstance(uses, bool) or not 1 <= uses <= MAX_USES:
            raise InvalidInput.for_field("max_uses", f"使用次数为 1 至 {MAX_USES} 次 (1 to {MAX_USES} uses)")
        mode = str(body.get("mode") or "fixed")
        if mode not in MODES:
            raise InvalidInput.for_field("mode", "fixed (the previewed report) or fresh (a new report at each use)")
        grantee = body.get("grantee")
        named = grantee.strip() if isinstance(grantee, str) else ""
        user, at, issuer = named.rpartition("@")
        if grantee is not None and (not named or len(named) > 64 or (at and not (user and issuer))):
            raise InvalidInput.for_field(
                "grantee",
                "the grantee's account: its name, or name@issuer for an account at a peer gateway instance "
                "(at most 64 characters)",
            )
        years = body.get("years", 0)
        if not isinstance(years, int) or isinstance(years, bool):
            raise InvalidInput.for_field("years", "must be an integer")
        profile = body.get("profile") or ""
        if not isinstance(profile, str):
            raise InvalidInput.for_field("profile", "must be a string")
        org = body.get("grantee_org")
        if org is not None and not isinstance(org, str):
            raise InvalidInput.for_field("grantee_org", "must be a string")
        org_code = parse_subject(org, kind=SubjectKind.ENTERPRISE, field="grantee_org").id if org else None
        if org_code and named:
            raise InvalidInput.for_field(
                "grantee_org", "授权对象只能是一个机构或一个账号 (name an organisation or an account, not both)"
            )
        return cls(purpose, named or None, days, uses, mode, years, profile, org_code)


@dataclass(frozen=True, slots=True)
class Preview:
    token: str
    # What the grantee would see today: the report's document, neither numbered, signed
    # nor registered (its number and verification code are empty).
    draft: dict[str, Any]
    terms: GrantTerms
    organisation: Organisation | None  # the grantee organisation, by the name it has here


@dataclass(frozen=True, slots=True)
class CreatedGrant:
    grant: Grant
    code: str
    url: str
    qr_png: bytes
    organisation: Organisation | None = None
    report: IssuedReport | None = None  # a fixed grant's report, issued on confirmation
    # The issued report says something else than the preview did (data changed meanwhile).
    changed: bool = False


@dataclass(frozen=True, slots=True)
class Redeemed:
    grant: Grant
    report: IssuedReport
    redemption_id: str = ""  # reopens it without another use (empty: not kept)


def content_digest(document: dict[str, Any]) -> str:
    """A digest of what a report says (not of when or under which number it was issued):
    a preview and the report issued from it say the same when their digests are equal."""
    said = {key: document.get(key) for key in ("subject", "window", "profile", "lines", "verdict")}
    said["regions"] = [(r.get("region"), r.get("status")) for r in document.get("regions") or ()]
    return hashlib.sha256(canonical(said)).hexdigest()[:32]


def grantee_of(name: str, home: str) -> tuple[str, str]:
    """The account a grant is made out to, as (username, issuer).

    ``user@issuer`` names an account at the gateway instance ``issuer`` (a peer whose
    sessions this instance trusts); a bare ``user``, an account of this instance, whose
    issuer is ``home``. The name is split at its last ``@``, so a username that holds an
    ``@`` is named with its issuer. Grants stored before issuers were named hold bare names:
    accounts of this instance, as they always meant.

    Raises nothing.
    """
    user, at, issuer = name.rpartition("@")
    return (user, issuer) if at else (name, home)


def grantee_name(user: str, issuer: str, home: str) -> str:
    """How a grant stores its grantee: bare for an account of this instance (``home``)
    whose name holds no ``@``, ``user@issuer`` otherwise (read back by :func:`grantee_of`)."""
    return user if issuer == home and "@" not in user else f"{user}@{issuer}"


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def qr_png(text: str) -> bytes:
    """A QR code image (PNG) of ``text``, medium error correction, for screens and paper."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=6, border=4)
    return out.getvalue()


class GrantService:
    def __init__(self, reports: ReportService, *, public_url: str) -> None:
        self.reports = reports
        self.registry = reports.registry
        self.store = GrantStore(reports.registry)
        self.redemptions = RedemptionStore(reports.registry)
        self.audit = reports.audit
        self.public_url = public_url.rstrip("/")
        # Authorisation codes tried per client address (and process): a code is 80 random
        # bits, so this bounds the load and the audit rows one address can cause.
        self.lookups = AddressLimit(limit=CODE_LOOKUPS_PER_MINUTE, window=60.0)

    def url_for(self, code: str) -> str:
        """The portal page that redeems ``code`` (systems use ``/api/v1/grants/{code}/report``)."""
        return f"{self.public_url}/g/{code}"

    def _owner(self, principal: Principal) -> str:
        return policy.require_granting_subject(principal)

    async def preview(self, principal: Principal, terms: GrantTerms, *, subject_id: str = "") -> Preview:
        """What the grantee would see, asked now but not issued, and a token to confirm it
        with. ``subject_id``, when given, must be the principal's own: a grant is always
        for the granting subject.

        Raises:
            PermissionDenied: the principal is not a subject, or names another subject.
            InvalidInput: a grantee organisation that has no accounts here.
            InvalidWindow, UnknownName: bad years or profile.
        """
        subject = self._owner(principal)
        if subject_id and parse_subject(subject_id, field="subject").id != subject:
            await self.audit.record(
                Event(
                    principal.username,
                    principal.role.value,
                    Action.REFUSED,
                    parse_subject(subject_id, field="subject").id,
                    terms.purpose,
                    EventOutcome.REFUSED,
                    "grant for another subject",
                )
            )
            raise PermissionDenied("只能为本主体授权 (a grant can only be for your own subject)")
        organisation = await self.organisation(terms.grantee_org) if terms.grantee_org else None
        draft = await self.reports.draft(
            principal,
            subject_id=subject,
            years=terms.years,
            profile_id=terms.profile,
            purpose=f"授权预览：{terms.purpose}",
        )
        now = datetime.now(UTC)
        home = self.reports.issuer
        grantee = grantee_name(*grantee_of(terms.grantee, home), home) if terms.grantee else None
        preview_id = secrets.token_hex(12)
        claims: dict[str, Any] = {
            "iss": home,
            "aud": PREVIEW_AUDIENCE,
            "sub": principal.username,
            "jti": preview_id,
            "subject": subject,
            "content": content_digest(draft),
            "terms": {
                "purpose": terms.purpose,
                "grantee": grantee,
                "grantee_org": organisation.code if organisation else None,
                "days": terms.days,
                "max_uses": terms.max_uses,
                "mode": terms.mode,
                "years": draft["window"]["years"],
                "profile": draft["profile"]["id"],
            },
            "iat": now,
            "exp": now + PREVIEW_LIFETIME,
        }
        token = sign_claims(claims, self.reports.signing_key, TokenType.GRANT_PREVIEW)
        await self.audit.record(
            Event(
                principal.username,
                principal.role.value,
                Action.GRANT_PREVIEWED,
                subject,
                terms.purpose,
                detail=f"preview {preview_id} verdict={draft['verdict']} (no report issued)",
            )
        )
        effective = dataclasses.replace(
            terms, grantee=grantee, years=claims["terms"]["years"], profile=claims["terms"]["profile"]
        )
        return Preview(token, draft, effective, organisation)

    async def organisation(self, code: str) -> Organisation:
        """The organisation a grant may be made out to: one with accounts here.

        Raises:
            InvalidInput: no organisation with this code has accounts at this instance.
        """
        found = await self.registry.organisation(code)
        if found is None:
            raise InvalidInput.for_field(
                "grantee_org",
                f"统一社会信用代码为 {code} 的机构未在本系统开户，请核对代码 "
                f"(no organisation with the code {code} has accounts here)",
            )
        return found

    async def organisation_names(self, codes: set[str]) -> dict[str, str]:
        """The names of the organisations with these codes that have accounts here."""
        found = {}
        for code in sorted(codes):
            organisation = await self.registry.organisation(code)
            if organisation is not None:
                found[code] = organisation.name
        return found

    def _confirmed(self, principal: Principal, token: str) -> dict[str, Any]:
        # Only typed previews: one made before typing expired long ago (15 minutes).
        try:
            header = token_header(token, TokenType.GRANT_PREVIEW)
            key = self.reports.keyring.get(str(header.get("kid", "")))
            if key is None:
                raise jwt.InvalidTokenError("signed by an unknown key")
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[ALGORITHM], audience=PREVIEW_AUDIENCE)
        except VerificationError as exc:
            raise InvalidInput.for_field("preview", f"预览凭据无效 (not a valid preview token: {exc.detail})") from exc
        except jwt.ExpiredSignatureError as exc:
            raise FailedPrecondition("预览已过期，请重新预览 (the preview expired: preview again)") from exc
        except jwt.PyJWTError as exc:
            raise InvalidInput.for_field("preview", f"预览凭据无效 (not a valid preview token: {exc})") from exc
        if claims.get("sub") != principal.username or claims.get("subject") != principal.subject_id:
            raise PermissionDenied("这不是您的预览 (this preview belongs to someone else)")
        if not claims.get("jti"):
            # One made before previews stopped issuing reports (at most 15 minutes old).
            raise FailedPrecondition("预览已过期，请重新预览 (the preview expired: preview again)")
        return claims

    async def create(self, principal: Principal, *, preview: str, confirm: bool) -> CreatedGrant:
        """A grant from a confirmed preview, with its code shown this once; a fixed grant's
        report is issued now (a preview issues none).

        Raises:
            InvalidInput: no confirmation, or a malformed preview token.
            FailedPrecondition: the preview expired, or was confirmed already.
            PermissionDenied: another user's preview, or not a subject.
        """
        self._owner(principal)
        if confirm is not True:
            raise InvalidInput.for_field("confirm", "请确认预览内容后再授权 (confirm the preview to create the grant)")
        claims = self._confirmed(principal, preview)
        terms = claims["terms"]
        org_code = terms.get("grantee_org")
        organisation = await self.registry.organisation(org_code) if org_code else None
        now = datetime.now(UTC)
        code = new_grant_code()
        row = {
            "grant_id": "g_" + secrets.token_hex(8),
            "code_hash": code_hash(code),
            "subject_id": claims["subject"],
            "subject_kind": policy.subject_kind_of(principal).value,
            "created_by": principal.username,
            "grantee": terms["grantee"],
            "grantee_org": org_code,
            "purpose": terms["purpose"],
            "mode": terms["mode"],
            "report_no": "",
            "profile": terms["profile"],
            "years": terms["years"],
            "max_uses": terms["max_uses"],
            "uses": 0,
            "created_at": now,
            "expires_at": now + timedelta(days=terms["days"]),
            "revoked_at": None,
            "last_used_at": None,
            "preview_id": claims["jti"],
        }
        # The preview is claimed before a report is issued: confirming it twice issues none.
        grant = await self.store.add(row)
        if grant is None:
            raise FailedPrecondition("此预览已确认过，请重新预览 (this preview was confirmed already: preview again)")
        report = None
        if grant.mode == "fixed":
            try:
                report = await self.reports.issue_authorised(
                    principal,
                    subject=parse_subject(grant.subject_id, field="subject"),
                    years=grant.years,
                    profile_id=grant.profile,
                    purpose=f"授权查询：{grant.purpose}",
                )
                await self.store.set_report(grant.grant_id, report.document["report_no"])
            except BaseException:
                await self.store.remove(grant.grant_id)  # its code was never shown
                raise
            grant = dataclasses.replace(grant, report_no=report.document["report_no"])
        await self.audit.record(
            Event(
                principal.username,
                principal.role.value,
                Action.GRANT_CREATED,
                grant.subject_id,
                grant.purpose,
                detail=f"{grant.grant_id} grantee={grant.grantee or grant.grantee_org or '-'} uses={grant.max_uses} "
                f"mode={grant.mode} report={grant.report_no or '-'}",
            )
        )
        url = self.url_for(code)
        changed = report is not None and content_digest(report.document) != claims.get("content")
        return CreatedGrant(grant, code, url, qr_png(url), organisation, report, changed)

    async def redeem(self, code: str, principal: Principal | None, *, address: str = "", holder: str = "") -> Redeemed:
        """The report a grant lets its holder see, counting one use, and kept as a
        redemption that the redeemer may open again without another use: a signed-in
        redeemer by its account (or organisation), an anonymous one by ``holder``, a
        secret its browser keeps (without one, an anonymous redemption is not kept).

        Raises:
            InvalidInput: not a well-formed authorisation code.
            TooManyAttempts: too many codes tried from ``address`` lately.
            NotFound: no grant has this code.
            PermissionDenied: the grant names another grantee; revoked, expired or used up.
        """
        actor = principal.username if principal else f"anonymous@{address or 'unknown'}"
        role = principal.role.value if principal else "anonymous"
        try:
            if address:
                self.lookups.check(address, "授权码查询")
            canonical_code = parse_grant_code(code)
        except (InvalidInput, TooManyAttempts) as exc:
            # Refusals are audited too: a malformed or throttled code is someone trying.
            await self.audit.record(
                Event(
                    actor, role, Action.REFUSED, "", "", EventOutcome.REFUSED, f"grant redemption: {exc.detail}"[:200]
                )
            )
            raise
        digest = code_hash(canonical_code)
        grant = await self.store.by_code_hash(digest)
        if grant is None:
            await self.audit.record(
                Event(actor, role, Action.REFUSED, "", "", EventOutcome.REFUSED, "grant redemption: unknown code")
            )
            raise NotFound("没有与此授权码对应的授权 (no grant has this authorisation code)")

        async def refuse(reason: str, message: str) -> PermissionDenied:
            await self.audit.record(
                Event(actor, role, Action.REFUSED, grant.subject_id, grant.purpose, EventOutcome.REFUSED, reason)
            )
            return PermissionDenied(message)

        if not policy.may_redeem(principal, self._grantee(grant), home=self.reports.issuer):
            raise await refuse(
                f"grant {grant.grant_id}: not the named grantee",
                "此授权仅限指定的被授权方使用，请以其账号登录 (this grant is for a named grantee: log in as it)",
            )
        now = datetime.now(UTC)

        if not await self.store.use(digest, now):
            current = await self.store.by_code_hash(digest) or grant
            state = current.state(now)
            messages = {
                "revoked": "授权已被撤销 (the grant was revoked)",
                "expired": "授权已过期 (the grant has expired)",
                "used_up": "授权次数已用完 (the grant has been used up)",
            }
            raise await refuse(f"grant {grant.grant_id}: {state}", messages.get(state, "授权不可用 (grant unusable)"))
        if grant.mode == "fixed":
            report = await self.reports.registered(grant.report_no)
        else:
            # The redeemer asks, on the strength of the grant: the nodes see who it is.
            asker = principal or Principal(actor, Role.THIRD_PARTY, None, self.reports.issuer)
            report = await self.reports.issue_authorised(
                asker,
                subject=parse_subject(grant.subject_id, field="subject"),
                years=grant.years,
                profile_id=grant.profile,
                purpose=f"授权查询：{grant.purpose}",
            )
        used = dataclasses.replace(grant, uses=grant.uses + 1)
        redemption_id = ""
        if principal is not None or holder:
            redemption_id = "r_" + secrets.token_urlsafe(24)
            await self.redemptions.add(
                Redemption(
                    redemption_id=redemption_id,
                    grant_id=grant.grant_id,
                    report_no=report.document["report_no"],
                    redeemed_by=actor,
                    issuer=principal.issuer if principal else "",
                    org_code=grant.grantee_org,
                    holder_hash=None if principal else code_hash(holder),
                    redeemed_at=now,
                )
            )
        await self.audit.record(
            Event(
                actor,
                role,
                Action.GRANT_REDEEMED,
                grant.subject_id,
                grant.purpose,
                detail=f"{grant.grant_id} report={report.document['report_no']}",
            )
        )
        return Redeemed(used, report, redemption_id)

    def _grantee(self, grant: Grant) -> Grantee:
        if grant.grantee:
            # An account at one issuer: the same username at another instance is someone else.
            user, issuer = grantee_of(grant.grantee, self.reports.issuer)
            return Grantee(username=user, issuer=issuer)
        return Grantee(organisation=grant.grantee_org)

    async def redemption(self, redemption_id: str, principal: Principal | None, *, holder: str = "") -> Redeemed:
        """A kept redemption, opened again without using the grant: for the redeemer only
        (its account, an account of the organisation the grant was made out to, or the
        browser holding ``holder``), while the grant lasts.

        Raises:
            NotFound: no such redemption.
            PermissionDenied: someone else's; the grant was revoked or has expired.
        """
        actor = principal.username if principal else "anonymous"
        role = principal.role.value if principal else "anonymous"
        found = await self.redemptions.get(redemption_id) if len(redemption_id) <= 48 else None
        if found is None:
            raise NotFound("没有这条授权查看记录 (no such redemption)")
        redemption, grant = found
        held = (
            bool(holder)
            and redemption.holder_hash is not None
            and hmac.compare_digest(code_hash(holder), redemption.holder_hash)
        )
        refusal = ""
        if not policy.holds_redemption(principal, redemption.redeemer, home=self.reports.issuer, holder=held):
            refusal = "只有凭授权查看该报告的一方可以再次打开 (only the redeemer may open this again)"
        elif grant.state(datetime.now(UTC)) in ("revoked", "expired"):
            refusal = {
                "revoked": "授权已被撤销 (the grant was revoked)",
                "expired": "授权已过期 (the grant has expired)",
            }[grant.state(datetime.now(UTC))]
        if refusal:
            await self.audit.record(
                Event(
                    actor,
                    role,
                    Action.REFUSED,
                    grant.subject_id,
                    grant.purpose,
                    EventOutcome.REFUSED,
                    f"redemption {redemption_id[:12]}…: {refusal}"[:200],
                )
            )
            raise PermissionDenied(refusal)
        report = await self.reports.registered(redemption.report_no)
        await self.audit.record(
            Event(
                actor,
                role,
                Action.REPORT_VIEWED,
                grant.subject_id,
                grant.purpose,
                detail=f"{redemption.report_no} again, through {grant.grant_id} (no use)",
            )
        )
        return Redeemed(grant, report, redemption.redemption_id)

    async def redeemed_by(self, principal: Principal, *, limit: int = 20) -> list[tuple[Redemption, Grant]]:
        """What ``principal`` (or its organisation) was given through grants that still
        last, newest first: the reports it can open again."""
        found = await self.redemptions.of_redeemer(
            principal.username, principal.issuer, principal.organisation, datetime.now(UTC), limit=limit
        )
        home = self.reports.issuer
        return [(r, g) for r, g in found if policy.holds_redemption(principal, r.redeemer, home=home)]

    async def mine(self, principal: Principal) -> list[Grant]:
        """The grants of the principal's subject, newest first.

        Raises:
            PermissionDenied: the principal is not a subject.
        """
        subject = self._owner(principal)

        return await self.store.of_subject(subject)

    async def revoke(self, principal: Principal, grant_id: str) -> Grant:
        """Revoke one of the subject's grants (an admin may revoke any).

        Raises:
            NotFound: no such grant of this subject.
        """
        now = datetime.now(UTC)

        owner = None if policy.manages_every_grant(principal) else principal.subject_id or ""
        grant = await self.store.revoke(grant_id, now, subject_id=owner)
        if grant is None:
            raise NotFound(f"没有编号为 {grant_id} 的授权 (no grant {grant_id} of yours)")
        await self.audit.record(
            Event(
                principal.username,
                principal.role.value,
                Action.GRANT_REVOKED,
                grant.subject_id,
                grant.purpose,
                detail=grant.grant_id,
            )
        )
        return grant
