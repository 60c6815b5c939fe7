"""Demo accounts, one per role, for `make run` and the tests. Never for production."""

from __future__ import annotations

from dataclasses import dataclass

from credit.demo import DEMO_SUBJECTS
from credit.policy import Role
from gateway.access.auth import hash_password
from gateway.registry import Account, Registry


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    password: str
    role: Role
    subject_id: str | None
    description: str
    full_name: str | None = None  # a person's full name (实名); the records publish it masked


def demo_logins() -> list[DemoLogin]:
    subjects = {demo.key: demo for demo in DEMO_SUBJECTS}
    return [
        DemoLogin(
            "clean-co",
            "demo-clean-2024",
            Role.ENTERPRISE,
            subjects["clean"].id,
            "企业，三地均无记录 (clean enterprise)",
        ),
        DemoLogin(
            "records-co",
            "demo-records-2024",
            Role.ENTERPRISE,
            subjects["records"].id,
            "企业，京津有记录 (enterprise with records)",
        ),
        DemoLogin(
            "li-hua", "demo-person-2024", Role.PERSON, subjects["person"].id, "自然人 (a person)", full_name="李建华"
        ),
        DemoLogin("bank", "demo-bank-2024", Role.THIRD_PARTY, None, "银行 (a bank: verifies reports)"),
        DemoLogin("agency", "demo-agency-2024", Role.AGENCY, None, "出证机关 (an agency officer)"),
        DemoLogin("admin", "demo-admin-2024", Role.ADMIN, None, "管理员 (administrator)"),
    ]


def seed_demo_accounts(registry: Registry) -> list[DemoLogin]:
    logins = demo_logins()
    for login in logins:
        registry.add_account(
            Account(
                login.username,
                hash_password(login.password),
                login.role.value,
                login.subject_id,
                login.description,
                full_name=login.full_name,
            )
        )
    return logins
