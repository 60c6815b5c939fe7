"""The report registry and accounts on SQLite and PostgreSQL, and report statuses."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection

from credit.audit import Action, Entry, Event
from credit.errors import FailedPrecondition
from credit.signing import Keyring, SigningKey
from gateway.registry import Account, RegisteredReport, Registry, already_registered, report_write
from infra.auditlog import AuditLog


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    return str(request.getfixturevalue("pg_url"))


def entry(number: str = "JJJ-20250616-ABCDEFGHJK", code: str = "7K3M-9QXR-2D8F-WH4T-P") -> RegisteredReport:
    issued = datetime(2025, 6, 16, 1, 2, 3, tzinfo=UTC)
    return RegisteredReport(
        report_no=number,
        verification_code=code,
        subject_id="91350100M000100Y43",
        subject_kind="enterprise",
        profile="tianjin-2023@1",
        verdict="clean",
        sha256=number.encode().hex().ljust(64, "0")[:64],
        jws="a.b.c",
        status="valid",
        issued_at=issued,
        retain_until=issued + timedelta(days=3653),
        requested_by="clean-co",
    )


async def test_reports_are_found_by_number_code_and_hash(registry_url: str) -> None:
    registry = Registry.open(registry_url)
    try:
        stored = entry()
        await registry.add_report(stored)
        assert await registry.report_by_number(stored.report_no) == stored
        assert await registry.report_by_code(stored.verification_code) == stored
        assert await registry.report_by_hash(stored.sha256) == stored
        assert await registry.report_by_code("0000-0000-0000-0000-0") is None
        assert await registry.status_by_code(stored.verification_code) == (stored.sha256, "valid")
        assert await registry.status_by_code("0000-0000-0000-0000-0") is None
        with pytest.raises(FailedPrecondition):
            await registry.add_report(stored)
        await registry.set_status(stored.report_no, "superseded")
        found = await registry.report_by_number(stored.report_no)
        assert found is not None and found.status == "superseded"
        assert await registry.status_by_code(stored.verification_code) == (stored.sha256, "superseded")
        assert found.retain_until - found.issued_at >= timedelta(days=3652)
    finally:
        registry.close()


async def test_concurrent_registrations_are_committed_together_and_a_duplicate_is_refused_alone(
    registry_url: str,
) -> None:
    registry = Registry.open(registry_url)
    try:
        first = entry()
        await registry.add_report(first)
        batch = [entry(f"JJJ-20250616-{i:010d}", f"CODE-{i:04d}") for i in range(40)]
        outcomes = await asyncio.gather(
            *(registry.add_report(e) for e in [*batch[:20], first, *batch[20:]]), return_exceptions=True
        )
        assert [type(o).__name__ for o in outcomes].count("FailedPrecondition") == 1
        assert isinstance(outcomes[20], FailedPrecondition)
        for e in batch:
            assert await registry.report_by_number(e.report_no) == e
    finally:
        registry.close()


async def test_accounts_and_login_failures_are_kept(registry_url: str) -> None:
    registry = Registry.open(registry_url)
    try:
        registry.add_account(Account("bank", "$argon2id$x", "third_party", None, "银行"))
        until = datetime.now(UTC) + timedelta(minutes=1)
        await registry.record_login("bank", failed_logins=5, locked_until=until)
        account = await registry.account("bank")
        assert account is not None and account.failed_logins == 5
        assert account.locked_until is not None and abs((account.locked_until - until).total_seconds()) < 1
        assert await registry.account("nobody") is None
    finally:
        registry.close()


async def test_a_new_password_clears_failures_and_ends_the_accounts_sessions(registry_url: str) -> None:
    registry = Registry.open(registry_url)
    try:
        registry.add_account(Account("li", "$argon2id$old", "person", "11010519491231002X", "个人", full_name="李建华"))
        await registry.record_login("li", failed_logins=3, locked_until=datetime.now(UTC) + timedelta(minutes=1))
        since = registry.set_password("li", "$argon2id$new")
        assert since is not None
        account = await registry.account("li")
        assert account is not None and account.password_hash == "$argon2id$new" and account.full_name == "李建华"
        assert account.failed_logins == 0 and account.locked_until is None
        assert registry.ended_since(-1)[1]["user:li"][0] == since
        assert registry.set_password("nobody", "$argon2id$x") is None
    finally:
        registry.close()


def test_ended_sessions_are_read_once_each(registry_url: str) -> None:
    registry = Registry.open(registry_url)
    try:
        now = datetime.now(UTC)
        assert registry.ended_since(-1) == (0, {})
        registry.end_session("a", expires_at=now + timedelta(minutes=30))
        registry.add_account(Account("li", "$argon2id$x", "person", None, "个人"))
        registry.add_account(Account("li", "$argon2id$x", "admin", None, "个人"))  # replaced: its sessions end
        last, ended = registry.ended_since(-1)
        assert last == 2 and set(ended) == {"jti:a", "user:li"}
        assert ended["jti:a"][1] == now + timedelta(minutes=30)
        assert registry.ended_since(last) == (last, {})  # nothing new: no rows read
        registry.end_session("b", expires_at=now + timedelta(minutes=30))
        registry.end_session("gone", expires_at=now - timedelta(seconds=1))  # no token it ends is alive
        newer, ended = registry.ended_since(last)
        assert newer == 4 and set(ended) == {"jti:b"}
        assert registry.remove_account("li")  # ended again, later: read again, with its new moment
        _, ended = registry.ended_since(newer)
        assert set(ended) == {"user:li"} and ended["user:li"][0] > now
    finally:
        registry.close()


async def test_revocations_committed_in_parallel_are_all_read(registry_url: str) -> None:
    """Readers that only ask for what is numbered after what they saw miss nothing, even
    while several writers commit at once (a number is visible only after every lower one)."""
    registry = Registry.open(registry_url)
    try:
        until = datetime.now(UTC) + timedelta(minutes=30)
        seen: set[str] = set()
        last = -1
        writing = [
            asyncio.create_task(registry.run(functools.partial(registry.end_session, f"t{i}", expires_at=until)))
            for i in range(60)
        ]
        while not all(task.done() for task in writing):
            last, new = registry.ended_since(last)
            seen.update(new)
            await asyncio.sleep(0)
        await asyncio.gather(*writing)
        last, new = registry.ended_since(last)
        seen.update(new)
        assert last == 60 and seen == {f"jti:t{i}" for i in range(60)}
    finally:
        registry.close()


async def test_a_report_and_its_audit_entry_are_committed_together(registry_url: str) -> None:
    """A report is registered and its issue audited in one transaction: when the report
    cannot be registered (its number is taken), its audit entry is not written either,
    while the others sharing the transaction are written with their entries, and the
    chain stays whole."""
    registry = Registry.open(registry_url)
    audit = AuditLog(registry.engine, writes=registry.writes)
    keyring = Keyring([SigningKey.generate().private.public_key()])

    def issued(report: RegisteredReport) -> Event:
        return Event(
            report.requested_by, "enterprise", Action.REPORT_ISSUED, report.subject_id, "投标", detail=report.report_no
        )

    async def register(report: RegisteredReport) -> Entry:
        with already_registered(report):
            _, written = await audit.record_with(issued(report), report_write(report, [("tianjin", "R1", 1)]))
        return written

    try:
        first = entry()
        written = await register(first)
        assert written.detail == first.report_no
        assert await registry.report_by_number(first.report_no) == first
        others = [entry(f"JJJ-20250616-{i:010d}", f"7K3M-9QXR-2D8F-WH{i:02d}-P") for i in range(6)]
        # In one group with the others: the taken number fails alone.
        outcomes = await asyncio.gather(
            *(register(r) for r in [*others[:3], first, *others[3:]]), return_exceptions=True
        )
        assert isinstance(outcomes[3], FailedPrecondition)
        assert all(isinstance(o, Entry) for i, o in enumerate(outcomes) if i != 3), outcomes
        details = [e.detail for e in audit.find(limit=100)]
        assert sorted(details) == sorted([first.report_no, *(r.report_no for r in others)])
        for report in others:
            assert await registry.report_by_number(report.report_no) == report

        # A write that fails otherwise leaves no entry behind either.
        def broken(conn: Connection) -> None:
            report_write(entry("JJJ-20250616-BROKEN0000", "BROKEN"))(conn)
            raise RuntimeError("disk full")

        with pytest.raises(RuntimeError, match="disk full"):
            await audit.record_with(Event("x", "admin", Action.REPORT_ISSUED, detail="broken"), broken)
        assert await registry.report_by_number("JJJ-20250616-BROKEN0000") is None
        assert "broken" not in [e.detail for e in audit.find(limit=100)]
        report = audit.verify(keyring)
        assert report.intact and report.entries == 7, report.reason
    finally:
        registry.close()
