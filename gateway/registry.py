"""The registry of issued reports and the accounts, in the gateway's own database.

Synchronous SQLAlchemy Core, each call one unit of work on a worker thread (see
:class:`nodes.store.SqlRecordStore` for why), SQLite by default and PostgreSQL by URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from credit.errors import FailedPrecondition
from gateway.models import AccountRow, FeedCursorRow, ReportRecordRow, ReportRow
from nodes.db import GroupCommit, as_utc, migrate, sync_engine

MIGRATIONS = Path(__file__).with_name("migrations")
reports: Table = ReportRow.__table__  # type: ignore[assignment]
accounts: Table = AccountRow.__table__  # type: ignore[assignment]
report_records: Table = ReportRecordRow.__table__  # type: ignore[assignment]
feed_cursors: Table = FeedCursorRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class RegisteredReport:
    report_no: str
    verification_code: str
    subject_id: str
    subject_kind: str
    profile: str
    verdict: str
    sha256: str
    jws: str
    status: str
    issued_at: datetime
    retain_until: datetime
    requested_by: str


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    password_hash: str
    role: str
    subject_id: str | None
    display_name: str
    failed_logins: int = 0
    locked_until: datetime | None = None
    region: str | None = None  # an agency officer's region; None: every region


# Statements built once: SQLAlchemy caches their compiled form, and building a
# statement costs more than running a point lookup on SQLite.
_INSERT_REPORT = insert(reports)
_INSERT_CONTAINED = insert(report_records)
_REPORT_BY = {
    column: select(reports).where(reports.c[column] == bindparam("value"))
    for column in ("report_no", "verification_code", "sha256")
}
_ACCOUNT = select(accounts).where(accounts.c.username == bindparam("username"))


class Registry:
    """Reports are registered with group commit (:class:`nodes.db.GroupCommit`): under
    load one commit serves many reports, and no report is acknowledged before its row
    is committed. The audit log shares the same writer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.writes = GroupCommit(engine)

    @classmethod
    def open(cls, url: str) -> Registry:
        """Migrate the database at ``url`` and open it.

        Raises:
            InvalidInput: an unsupported URL.
            sqlalchemy.exc.OperationalError: the database cannot be reached.
        """
        migrate(url, scripts=MIGRATIONS)
        return cls(sync_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    async def _run(self, work: Any, *args: Any) -> Any:
        return await asyncio.to_thread(work, *args)

    async def read(self, work: Any, *args: Any) -> Any:
        """Run a short read (a function of ``args`` using ``self.engine``): inline on
        SQLite, where a point lookup is cheaper than the hop to a worker thread (see
        nodes.store.SqlRecordStore), on a worker thread elsewhere."""
        if self.engine.dialect.name == "sqlite":
            return work(*args)
        return await asyncio.to_thread(work, *args)

    async def add_report(self, entry: RegisteredReport, records: Sequence[tuple[str, str, int]] = ()) -> None:
        """Register an issued report and the record versions it contains (region,
        record id, version); returns once committed.

        Raises:
            FailedPrecondition: its number, code or hash is already registered.
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        fields = _fields(entry)
        contained = [
            {"report_no": entry.report_no, "region": region, "record_id": record_id, "version": version}
            for region, record_id, version in dict.fromkeys(records)
        ]

        def write(conn: Connection) -> None:
            conn.execute(_INSERT_REPORT, fields)
            if contained:
                conn.execute(_INSERT_CONTAINED, contained)

        try:
            await self.writes.submit(write)
        except IntegrityError as exc:
            raise FailedPrecondition(f"report {entry.report_no} is already registered") from exc

    def _one_report(self, column: str, value: str) -> RegisteredReport | None:
        with self.engine.connect() as conn:
            row = conn.execute(_REPORT_BY[column], {"value": value}).mappings().first()
        if row is None:
            return None
        data = dict(row)
        data["issued_at"] = as_utc(data["issued_at"])
        data["retain_until"] = as_utc(data["retain_until"])
        return RegisteredReport(**data)

    async def report_by_number(self, report_no: str) -> RegisteredReport | None:
        result: RegisteredReport | None = await self.read(self._one_report, "report_no", report_no)
        return result

    async def report_by_code(self, code: str) -> RegisteredReport | None:
        result: RegisteredReport | None = await self.read(self._one_report, "verification_code", code)
        return result

    async def report_by_hash(self, sha256: str) -> RegisteredReport | None:
        result: RegisteredReport | None = await self.read(self._one_report, "sha256", sha256)
        return result

    def _set_status(self, report_no: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(reports).where(reports.c.report_no == report_no).values(status=status))

    async def set_status(self, report_no: str, status: str) -> None:
        await self._run(self._set_status, report_no, status)

    # Accounts

    def _account(self, username: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(_ACCOUNT, {"username": username}).mappings().first()
        if row is None:
            return None
        data = {k: v for k, v in dict(row).items() if k != "created_at"}
        data["locked_until"] = as_utc(data["locked_until"])
        return Account(**data)

    async def account(self, username: str) -> Account | None:
        result: Account | None = await self.read(self._account, username)
        return result

    def add_account(self, account: Account) -> None:
        """Create or replace an account (administration, seeding)."""
        with self.engine.begin() as conn:
            conn.execute(accounts.delete().where(accounts.c.username == account.username))
            conn.execute(insert(accounts).values(**_fields(account), created_at=datetime.now(UTC)))

    def _login_result(self, username: str, failed: int, locked_until: datetime | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(accounts)
                .where(accounts.c.username == username)
                .values(failed_logins=failed, locked_until=locked_until)
            )

    async def record_login(self, username: str, *, failed_logins: int, locked_until: datetime | None) -> None:
        await self._run(self._login_result, username, failed_logins, locked_until)


def _fields(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}
