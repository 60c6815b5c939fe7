"""The role rules, one table per question: who may do what."""

from __future__ import annotations

import pytest

from credit import policy
from credit.errors import InvalidInput, PermissionDenied
from credit.identifiers import SubjectKind
from credit.policy import Principal, Role
from credit.regions import Region

COMPANY = "91120116MA05JBXQ06"
PERSON_ID = "11010519491231002X"


def who(role: Role, subject: str | None = None, region: str | None = None, name: str = "u") -> Principal:
    return Principal(name, role, subject, "jjj-gateway", region)


ENTERPRISE = who(Role.ENTERPRISE, COMPANY)
PERSON = who(Role.PERSON, PERSON_ID)
BANK = who(Role.THIRD_PARTY)
OFFICER = who(Role.AGENCY)
TIANJIN_OFFICER = who(Role.AGENCY, region="tianjin")
ADMIN = who(Role.ADMIN)


@pytest.mark.parametrize(
    ("principal", "subject", "allowed"),
    [
        (ENTERPRISE, COMPANY, True),
        (ENTERPRISE, PERSON_ID, False),
        (PERSON, PERSON_ID, True),
        (BANK, COMPANY, False),
        (OFFICER, COMPANY, False),
        (ADMIN, COMPANY, True),
    ],
)
def test_who_gets_a_report_directly(principal: Principal, subject: str, allowed: bool) -> None:
    refusal = policy.report_refusal(principal, subject)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert isinstance(refusal, PermissionDenied)


def test_each_refusal_says_the_way_that_is_open() -> None:
    assert "本主体" in str(policy.report_refusal(ENTERPRISE, PERSON_ID))
    assert "批量核查" in str(policy.report_refusal(OFFICER, COMPANY))
    assert "授权" in str(policy.report_refusal(BANK, COMPANY))


def test_subject_without_id_speaks_for_no_one() -> None:
    assert not policy.speaks_for_subject(who(Role.ENTERPRISE, None))
    with pytest.raises(PermissionDenied):
        policy.require_granting_subject(who(Role.ENTERPRISE, None))


@pytest.mark.parametrize("principal", [BANK, OFFICER, ADMIN])
def test_only_subjects_grant_and_file(principal: Principal) -> None:
    with pytest.raises(PermissionDenied):
        policy.require_granting_subject(principal)
    with pytest.raises(PermissionDenied):
        policy.require_filing_subject(principal)


def test_subjects_grant_and_file_for_themselves() -> None:
    assert policy.require_granting_subject(ENTERPRISE) == COMPANY
    assert policy.require_filing_subject(PERSON) == PERSON_ID
    assert policy.subject_kind_of(PERSON) is SubjectKind.PERSON
    assert policy.subject_kind_of(ENTERPRISE) is SubjectKind.ENTERPRISE


@pytest.mark.parametrize(("role", "batches"), [(r, r in (Role.AGENCY, Role.ADMIN)) for r in Role])
def test_batch_is_for_authorities(role: Role, batches: bool) -> None:
    assert policy.may_batch(role.value) is batches
    assert policy.is_authority(role.value) is batches
    if batches:
        policy.require_batch(who(role))
    else:
        with pytest.raises(PermissionDenied):
            policy.require_batch(who(role))


def test_an_unknown_role_in_an_assertion_is_no_authority() -> None:
    assert not policy.is_authority("")
    assert not policy.is_authority("Admin")


def test_an_officer_decides_their_own_region_only() -> None:
    policy.require_authority(TIANJIN_OFFICER, Region.TIANJIN)
    with pytest.raises(PermissionDenied, match="本地区"):
        policy.require_authority(TIANJIN_OFFICER, Region.BEIJING)
    assert policy.case_regions(TIANJIN_OFFICER) == [Region.TIANJIN]
    assert policy.case_regions(OFFICER) == list(Region)
    assert policy.case_regions(ADMIN) == list(Region)
    for region in Region:
        policy.require_authority(OFFICER, region)
        policy.require_authority(ADMIN, region)
    with pytest.raises(PermissionDenied):
        policy.require_authority(ENTERPRISE, Region.TIANJIN)


def test_jobs_grants_and_audit_belong_to_their_maker_unless_admin() -> None:
    assert policy.sees_job(who(Role.AGENCY, name="a"), "a")
    assert not policy.sees_job(who(Role.AGENCY, name="a"), "b")
    assert policy.sees_job(ADMIN, "b")
    assert policy.manages_every_grant(ADMIN) and not policy.manages_every_grant(ENTERPRISE)
    policy.require_full_audit(ADMIN)
    for principal in (ENTERPRISE, BANK, OFFICER):
        with pytest.raises(PermissionDenied):
            policy.require_full_audit(principal)


@pytest.mark.parametrize(
    ("role", "subject", "region", "ok"),
    [
        (Role.ENTERPRISE, COMPANY, None, True),
        (Role.ENTERPRISE, None, None, False),
        (Role.PERSON, None, None, False),
        (Role.AGENCY, None, "tianjin", True),
        (Role.THIRD_PARTY, None, "tianjin", False),
        (Role.ADMIN, None, None, True),
    ],
)
def test_account_shapes(role: Role, subject: str | None, region: str | None, ok: bool) -> None:
    if ok:
        policy.check_account(role, subject, region)
    else:
        with pytest.raises(InvalidInput):
            policy.check_account(role, subject, region)


def test_the_menu_follows_the_rules() -> None:
    no = {"own": False, "redeem": False, "batch": False, "cases": False, "any_report": False}
    assert policy.menu(ENTERPRISE) == policy.Menu(**{**no, "own": True})
    assert policy.menu(BANK) == policy.Menu(**{**no, "redeem": True})
    assert policy.menu(OFFICER) == policy.Menu(**{**no, "batch": True, "cases": True})
    assert policy.menu(ADMIN) == policy.Menu(**{**no, "cases": True, "any_report": True})


def test_only_a_subject_has_its_own_history() -> None:
    assert policy.require_own_history(ENTERPRISE) == COMPANY
    assert policy.require_own_history(PERSON) == PERSON_ID
    for principal in (BANK, OFFICER, ADMIN):
        with pytest.raises(PermissionDenied, match="查询记录"):
            policy.require_own_history(principal)


def test_a_person_alone_sees_their_own_full_name() -> None:
    assert policy.sees_own_full_name(PERSON, PERSON_ID)
    assert not policy.sees_own_full_name(who(Role.PERSON, "110105194912310037"), PERSON_ID)  # another person
    for principal in (ENTERPRISE, BANK, OFFICER, ADMIN):
        assert not policy.sees_own_full_name(principal, PERSON_ID)
    assert not policy.sees_own_full_name(ENTERPRISE, COMPANY)  # enterprises' names are not masked at all


def test_only_a_persons_account_has_a_full_name() -> None:
    policy.check_account(Role.PERSON, PERSON_ID, None, full_name="李建华")
    with pytest.raises(InvalidInput):
        policy.check_account(Role.ENTERPRISE, COMPANY, None, full_name="李建华")
