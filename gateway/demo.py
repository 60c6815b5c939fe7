"""Demo accounts, one per role, for `make run` and the tests. Never for production."""

from __future__ import annotations

from dataclasses import dataclass

from credit.demo import DEMO_SUBJECTS
from credit.identifiers import make_uscc
from credit.policy import Role
from gateway.access.auth import hash_password
from gateway.registry import Account, Organisation, Registry

# The demo bank, a fictional branch with a well-formed unified social credit code: the
# code a subject types to make a grant out to it.
DEMO_BANK = Organisation(make_uscc("91120000MA06QX8B3"), "津冀示范商业银行股份有限公司天津分行")


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    role: Role
    subject_id: str | None
    description: str
    organisation: Organisation | None = None
    full_name: str | None = None  # a person's full name (实名); the records publish it masked


def demo_logins() -> list[DemoLogin]:
    subjects = {demo.key: demo for demo in DEMO_SUBJECTS}

    def itself(key: str) -> Organisation:
        # An enterprise's accounts belong to the enterprise.
        return Organisation(subjects[key].id, subjects[key].name)

    return [
        DemoLogin(
            "clean-co",
            "demo-clean-2024",
            Role.ENTERPRISE,
            subjects["clean"].id,
            "企业，三地均无记录 (clean enterprise)",
            itself("clean"),
        ),
        DemoLogin(
            "records-co",
            "demo-records-2024",
            Role.ENTERPRISE,
            subjects["records"].id,
            "企业，京津有记录 (enterprise with records)",
            itself("records"),
        ),
        DemoLogin(
            "li-hua", "demo-person-2024", Role.PERSON, subjects["person"].id, "自然人 (a person)", full_name="李建华"
        ),
        DemoLogin(
            "bank",
            "demo-bank-2024",
            Role.THIRD_PARTY,
            None,
            f"银行 (a bank: verifies reports, redeems grants made out to {DEMO_BANK.code})",
            DEMO_BANK,
        ),
        DemoLogin("agency", "demo-agency-2024", Role.AGENCY, None, "出证机关 (an agency officer)"),
        DemoLogin("admin", "demo-admin-2024", Role.ADMIN, None, "管理员 (administrator)"),
    ]


def seed_demo_accounts(registry: Registry) -> list[DemoLogin]:
    logins = demo_logins()
    for login in logins:
        if login.organisation is not None:
            registry.add_organisation(login.organisation)
        registry.add_account(
            Account(
                login.username,
                hash_password(login.password),
                login.role.value,
                login.subject_id,
                login.description,
                org_code=login.organisation.code if login.organisation else None,
                full_name=login.full_name,
            )
        )
    return logins
