"""The role rules, one table per question: who may do what."""

from __future__ import annotations

import pytest

from credit import policy
from credit.errors import InvalidInput, PermissionDenied
from credit.identifiers import SubjectKind
from credit.policy import Principal, Role
from credit.regions import Region

COMPANY = "91120116MA05JBXQ06"
BANK_ORG = "91120000MA06QX8B3J"
OTHER_ORG = "91110108MA01RXNE2H"
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
    ("role", "subject", "region", "org", "ok"),
    [
        (Role.ENTERPRISE, COMPANY, None, None, True),
        (Role.ENTERPRISE, None, None, None, False),
        (Role.PERSON, None, None, None, False),
        (Role.AGENCY, None, "tianjin", None, True),
        (Role.THIRD_PARTY, None, "tianjin", BANK_ORG, False),
        (Role.THIRD_PARTY, None, None, None, False),  # a bank's account says which bank
        (Role.THIRD_PARTY, None, None, BANK_ORG, True),
        (Role.ADMIN, None, None, None, True),
    ],
)
def test_account_shapes(role: Role, subject: str | None, region: str | None, org: str | None, ok: bool) -> None:
    if ok:
        policy.check_account(role, subject, region, org)
    else:
        with pytest.raises(InvalidInput):
            policy.check_account(role, subject, region, org)


def test_an_enterprise_account_belongs_to_the_enterprise() -> None:
    assert policy.account_organisation(Role.ENTERPRISE, COMPANY, None) == COMPANY
    assert policy.account_organisation(Role.THIRD_PARTY, None, BANK_ORG) == BANK_ORG
    assert policy.account_organisation(Role.PERSON, PERSON_ID, None) is None


HOME = "jjj-gateway"
TELLER = Principal("teller", Role.THIRD_PARTY, None, HOME, None, BANK_ORG)
TELLER_AT_PEER = Principal("teller", Role.THIRD_PARTY, None, "jjj-gateway-tianjin", None, BANK_ORG)
OTHER_BANK = Principal("clerk", Role.THIRD_PARTY, None, HOME, None, OTHER_ORG)


def test_who_may_redeem_a_grant() -> None:
    to_org = policy.Grantee(organisation=BANK_ORG)
    assert policy.may_redeem(TELLER, to_org, home=HOME)
    assert not policy.may_redeem(OTHER_BANK, to_org, home=HOME)
    assert not policy.may_redeem(None, to_org, home=HOME)
    # A peer's word on an account's organisation does not open a grant here.
    assert not policy.may_redeem(TELLER_AT_PEER, to_org, home=HOME)
    to_account = policy.Grantee(username="teller", issuer=HOME)
    assert policy.may_redeem(TELLER, to_account, home=HOME)
    assert not policy.may_redeem(TELLER_AT_PEER, to_account, home=HOME)
    assert policy.may_redeem(None, policy.Grantee(), home=HOME)  # whoever holds the code


def test_who_holds_a_redemption_and_so_its_report() -> None:
    by_teller = policy.Redeemer("teller", HOME)
    by_teller_for_org = policy.Redeemer("teller", HOME, BANK_ORG)
    colleague = Principal("manager", Role.THIRD_PARTY, None, HOME, None, BANK_ORG)
    assert policy.holds_redemption(TELLER, by_teller, home=HOME)
    assert not policy.holds_redemption(colleague, by_teller, home=HOME)  # a grant to one account
    assert policy.holds_redemption(colleague, by_teller_for_org, home=HOME)
    assert not policy.holds_redemption(OTHER_BANK, by_teller_for_org, home=HOME)
    assert not policy.holds_redemption(None, by_teller, home=HOME)
    anonymous = policy.Redeemer("anonymous@127.0.0.1", "")
    assert policy.holds_redemption(None, anonymous, home=HOME, holder=True)
    assert not policy.holds_redemption(TELLER, anonymous, home=HOME)
    # The report itself: the bank that holds it gets it, another bank does not.
    assert policy.report_refusal(colleague, COMPANY, redeemers=[by_teller_for_org], home=HOME) is None
    assert policy.report_refusal(OTHER_BANK, COMPANY, redeemers=[by_teller_for_org], home=HOME) is not None
    assert policy.report_refusal(TELLER, COMPANY) is not None


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


def test_a_full_name_stands_for_the_published_one_only_where_it_fits() -> None:
    assert policy.full_name_fits("李建华", "李*华") and policy.full_name_fits("欧阳建华", "欧阳＊＊")
    for name in ("王建华", "李华", "李建华华", "李建中"):
        assert not policy.full_name_fits(name, "李*华"), name
    assert policy.full_name_fits("王小明", "")  # no record names the person: nothing to contradict
    assert not policy.full_name_fits("", "李*华") and not policy.full_name_fits("", "")


def test_only_a_persons_account_has_a_full_name() -> None:
    policy.check_account(Role.PERSON, PERSON_ID, None, full_name="李建华")
    with pytest.raises(InvalidInput):
        policy.check_account(Role.ENTERPRISE, COMPANY, None, full_name="李建华")
