"""Who may do what: every role rule of the federation, in one place.

The gateway's rooms (reports, grants, batch checks, objections, the API and the portal)
ask this module and never compare roles themselves; a node applies the same batch rule
to the on-behalf-of assertions it is sent. Each rule either answers a question
(``may_…``, ``sees_…``) or raises :class:`~credit.errors.PermissionDenied` with the
words a user reads (``require_…``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from credit.errors import InvalidInput, PermissionDenied
from credit.identifiers import SubjectKind
from credit.regions import Region


class Role(enum.StrEnum):
    __hash__ = str.__hash__

    ENTERPRISE = "enterprise"  # 经营主体
    PERSON = "person"  # 自然人
    THIRD_PARTY = "third_party"  # bank, tender office, employer
    AGENCY = "agency"  # 出证机关 / 部门 officer
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, as a verified session says."""

    username: str
    role: Role
    subject_id: str | None
    issuer: str
    region: str | None = None  # an agency officer's region; None: every region
    organisation: str | None = None  # the unified social credit code of the account's organisation


# Roles that speak for one subject of their own; roles that decide cases and check many.
_SUBJECT_ROLES = frozenset({Role.ENTERPRISE, Role.PERSON})
_AUTHORITY_ROLES = frozenset({Role.AGENCY, Role.ADMIN})


# Accounts


def check_account(
    role: Role,
    subject_id: str | None,
    region: str | None,
    organisation: str | None = None,
    *,
    full_name: str | None = None,
) -> None:
    """An account's role, subject, region, organisation and full name fit together.

    Raises:
        InvalidInput: a subject role without a subject, a region on an account other than
            an agency officer's, a third party's account without its organisation
            (grants are made out to organisations: a bank's account must say whose it is),
            or a full name on an account other than a person's.
    """
    if role in _SUBJECT_ROLES and subject_id is None:
        raise InvalidInput.for_field("subject", f"a {role.value} account needs --subject")
    if region is not None and role is not Role.AGENCY:
        raise InvalidInput.for_field("region", "only an agency officer's account has a region")
    if full_name is not None and role is not Role.PERSON:
        raise InvalidInput.for_field("full_name", "only a person's account has a full name")
    if role is Role.THIRD_PARTY and organisation is None:
        raise InvalidInput.for_field("org", "a third party's account needs --org (its organisation's credit code)")


def account_organisation(role: Role, subject_id: str | None, given: str | None) -> str | None:
    """The organisation an account belongs to: the one given, else, for an enterprise's
    account, the enterprise itself."""
    if given is None and role is Role.ENTERPRISE:
        return subject_id
    return given


def speaks_for_subject(principal: Principal) -> bool:
    """An enterprise or a person signed in as itself (its own reports, grants and cases)."""
    return principal.role in _SUBJECT_ROLES and bool(principal.subject_id)


def own_subject(principal: Principal) -> str | None:
    """The subject an enterprise's or a person's account speaks for; None for any other."""
    return principal.subject_id if speaks_for_subject(principal) else None


def subject_kind_of(principal: Principal) -> SubjectKind:
    """The kind of subject a subject's account speaks for."""
    return SubjectKind.PERSON if principal.role is Role.PERSON else SubjectKind.ENTERPRISE


# Reports


def may_ask_for_any_subject(principal: Principal) -> bool:
    """An administrator gets any subject's report directly; everyone else only their own."""
    return principal.role is Role.ADMIN


def report_refusal(
    principal: Principal, subject_id: str, *, redeemers: Sequence[Redeemer] = (), home: str = ""
) -> PermissionDenied | None:
    """Why ``principal`` may not get ``subject_id``'s report, or None when it may: its own
    subject's, any for an administrator, and one that ``principal`` (or its organisation)
    was given through a live grant (``redeemers``: who redeemed grants for this report,
    ``home``: this instance), so that a bank keeps the report it was shown."""
    if any(holds_redemption(principal, redeemer, home=home) for redeemer in redeemers):
        return None
    if principal.role is Role.ADMIN:
        return None
    if principal.role in _SUBJECT_ROLES and principal.subject_id == subject_id:
        return None
    if principal.role in _SUBJECT_ROLES:
        return PermissionDenied("只能查询本主体的报告 (you may only get the report of your own subject)")
    if principal.role is Role.AGENCY:
        return PermissionDenied("机关核查请使用批量核查 (agency officers check subjects through batch checks)")
    return PermissionDenied(
        "第三方须经主体授权方可查询 (a third party needs the subject's authorisation to get its report)"
    )


def needs_grant(principal: Principal) -> bool:
    """A third party sees a report only through a grant the subject made."""
    return principal.role is Role.THIRD_PARTY


def checks_in_batches(principal: Principal) -> bool:
    """An agency officer's way to a subject is a batch check, not a single report."""
    return principal.role is Role.AGENCY


def sees_own_full_name(principal: Principal, subject_id: str) -> bool:
    """A person reading or downloading a report about themselves sees their own full name.

    The records publish a person's name masked (李*华), and the signed report keeps it so:
    masking is for everyone else — the grantees the person shows the report to (on the
    page and in the PDF they download), officers, administrators and the public verify
    page. The person's own PDF prints the full name; its issuing organisation's signature
    covers it, the signed report does not. Enterprises' names are not masked, so the rule
    concerns persons only.
    """
    return principal.role is Role.PERSON and principal.subject_id == subject_id


MASKS = frozenset("*＊")  # what stands for a hidden character in a published name


def full_name_fits(full_name: str, published: str) -> bool:
    """Whether ``full_name`` is the name the records publish masked as ``published``:
    as long, and the same wherever the mask shows a character (李建华 fits 李*华; 王建华,
    李华 and 李建华华 do not). With nothing published (a person no record names) any
    name but the empty one fits. A full name shown in place of the published one must fit it, so that the
    two never name different people.
    """
    if not published:
        return bool(full_name)
    return len(full_name) == len(published) and all(
        shown in MASKS or shown == own for own, shown in zip(full_name, published, strict=True)
    )


# Grants


def require_granting_subject(principal: Principal) -> str:
    """The subject whose grants ``principal`` makes; returns its identifier.

    Raises:
        PermissionDenied: not an enterprise or person signed in as itself.
    """
    subject = own_subject(principal)
    if subject is None:
        raise PermissionDenied("只有经营主体或个人可以授权 (only an enterprise or a person can grant access)")
    return subject


def manages_every_grant(principal: Principal) -> bool:
    """An administrator revokes any grant; a subject only its own."""
    return principal.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class Grantee:
    """Whom a grant is made out to: one account (``username`` at ``issuer``), every
    account of one organisation of this instance (``organisation``), or, with neither,
    whoever holds the code."""

    username: str | None = None
    issuer: str | None = None
    organisation: str | None = None


def may_redeem(principal: Principal | None, grantee: Grantee, *, home: str) -> bool:
    """Whether ``principal`` (None: not signed in) may use a grant made out to ``grantee``.

    A named account is that account at its issuer: the same username at another instance
    of the federation is someone else. An organisation is any account of it at this
    instance (``home``), whose accounts this instance keeps and vouches for; a peer's word
    on an account's organisation does not open a grant here.
    """
    if grantee.username is not None:
        return principal is not None and (principal.username, principal.issuer) == (grantee.username, grantee.issuer)
    if grantee.organisation is not None:
        return principal is not None and principal.issuer == home and principal.organisation == grantee.organisation
    return True


@dataclass(frozen=True, slots=True)
class Redeemer:
    """Who redeemed a grant: an account (``username`` at ``issuer``), for a grant to an
    organisation also that organisation, or an anonymous holder of the code (no issuer;
    its browser holds a secret instead)."""

    username: str
    issuer: str
    organisation: str | None = None


def holds_redemption(principal: Principal | None, redeemer: Redeemer, *, home: str, holder: bool = False) -> bool:
    """Whether ``principal`` may open again what ``redeemer`` was given through a grant
    (the report, its PDF, JWS and JSON): the redeeming account itself, any account of the
    organisation the grant was made out to (at this instance, ``home``), or, for an
    anonymous redemption, the browser that holds its secret (``holder``)."""
    if not redeemer.issuer:
        return holder
    if principal is None:
        return False
    if (principal.username, principal.issuer) == (redeemer.username, redeemer.issuer):
        return True
    return (
        redeemer.organisation is not None
        and principal.issuer == home
        and principal.organisation == redeemer.organisation
    )


# Batch checks


def is_authority(role: str) -> bool:
    """An agency officer or an administrator, by the role a session or an assertion names.

    Authorities check many subjects at once (an assertion for the batch ``*``) and list and
    decide every case; a node applies this to the role an on-behalf-of assertion carries.
    """
    return role in _AUTHORITY_ROLES


def may_batch(role: str) -> bool:
    """Agency officers and administrators check many subjects at once (a batch's ``*``)."""
    return is_authority(role)


def require_batch(principal: Principal) -> None:
    """Raises: PermissionDenied: not an agency officer or administrator."""
    if not may_batch(principal.role):
        raise PermissionDenied("仅机关工作人员可进行批量核查 (batch checks are for agency officers)")


def sees_job(principal: Principal, created_by: str) -> bool:
    """An officer sees the batch jobs they submitted; an administrator sees every job."""
    return principal.role is Role.ADMIN or created_by == principal.username


# Objections and credit repair


def decides_cases(principal: Principal) -> bool:
    """Agency officers and administrators list and decide cases; subjects file them."""
    return is_authority(principal.role)


def case_regions(principal: Principal) -> list[Region]:
    """The regions whose cases ``principal`` decides: an officer's own, or all."""
    if principal.role is Role.AGENCY and principal.region:
        return [Region(principal.region)]
    return list(Region)


def require_authority(principal: Principal, region: Region) -> None:
    """An agency officer of ``region`` (or of every region), or an administrator.

    Raises:
        PermissionDenied: anyone else, or an officer of another region.
    """
    if not decides_cases(principal):
        raise PermissionDenied("仅认定机关工作人员或管理员可办理 (only agency officers and admins decide cases)")
    if principal.role is Role.AGENCY and principal.region and principal.region != region.value:
        raise PermissionDenied(
            f"您只能办理本地区的办件，此件属于{region.name_zh} "
            f"(an officer of {principal.region} decides that region's cases only; this is {region.value})"
        )


def require_filing_subject(principal: Principal) -> str:
    """The subject filing a case; returns its identifier.

    Raises:
        PermissionDenied: not an enterprise or person signed in as itself.
    """
    subject = own_subject(principal)
    if subject is None:
        raise PermissionDenied("仅信用主体本人可提出异议或修复申请 (only the subject itself files a case)")
    return subject


# Audit


def require_own_history(principal: Principal) -> str:
    """The subject whose access history ``principal`` reads (who asked about it); returns
    its identifier.

    Raises:
        PermissionDenied: an account that speaks for no subject.
    """
    if not principal.subject_id:
        raise PermissionDenied("只有经营主体或个人有自己的查询记录 (only a subject has its own access history)")
    return principal.subject_id


def require_full_audit(principal: Principal) -> None:
    """Raises: PermissionDenied: the full audit log is for administrators only."""
    if principal.role is not Role.ADMIN:
        raise PermissionDenied("仅管理员可查看全部记录 (the full audit log is for administrators)")


# What the portal offers each role


@dataclass(frozen=True, slots=True)
class Menu:
    own: bool  # 我的报告, 授权查询, 异议与修复, 查询记录
    redeem: bool  # 凭授权码查看
    batch: bool  # 批量核查
    cases: bool  # 异议办理
    any_report: bool  # 查询报告 for any subject


def menu(principal: Principal) -> Menu:
    """The portal's menu entries ``principal`` sees."""
    return Menu(
        own=speaks_for_subject(principal),
        redeem=needs_grant(principal),
        batch=principal.role is Role.AGENCY,
        cases=decides_cases(principal),
        any_report=may_ask_for_any_subject(principal),
    )
