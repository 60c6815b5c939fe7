"""The registry of issued reports and the accounts, in the gateway's own database.

Synchronous SQLAlchemy Core, each call one unit of work on a worker thread (see
:class:`infra.db.SqlRunner` for why), SQLite by default and PostgreSQL by URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, and_, bindparam, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from credit.errors import FailedPrecondition
from gateway.models import (
    AccountRow,
    FeedCursorRow,
    LoginAttemptRow,
    OrganisationRow,
    ReportRecordRow,
    ReportRow,
    SessionRevocationHeadRow,
    SessionRevocationRow,
)
from infra.db import DriverStatement, GroupCommit, SqlRunner, as_utc, dispose_when_idle, migrate, sync_engine

MIGRATIONS = Path(__file__).with_name("migrations")
_T = TypeVar("_T")
reports: Table = ReportRow.__table__  # type: ignore[assignment]
accounts: Table = AccountRow.__table__  # type: ignore[assignment]
login_attempts: Table = LoginAttemptRow.__table__  # type: ignore[assignment]
revocations: Table = SessionRevocationRow.__table__  # type: ignore[assignment]
revocation_head: Table = SessionRevocationHeadRow.__table__  # type: ignore[assignment]
# Longest a session token can live: an account's revocation is kept this long.
SESSION_HORIZON = timedelta(days=2)
# Every this many revocations, those no live token can need any more are deleted.
PRUNE_EVERY = 1000
report_records: Table = ReportRecordRow.__table__  # type: ignore[assignment]
feed_cursors: Table = FeedCursorRow.__table__  # type: ignore[assignment]
organisations: Table = OrganisationRow.__table__  # type: ignore[assignment]
# Worker threads: as many as asyncio's default pool, which the registry used before it
# had its own.
_THREADS = min(32, (os.cpu_count() or 1) + 4)


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
    org_code: str | None = None  # the organisation's unified social credit code
    full_name: str | None = None  # a person's full name (实名), for that person's own eyes


@dataclass(frozen=True, slots=True)
class Organisation:
    """An organisation whose accounts use the gateway (a bank, a tender office)."""

    code: str  # unified social credit code
    name: str


# Statements built once: SQLAlchemy caches their compiled form, and building a
# statement costs more than running a point lookup on SQLite.
_INSERT_REPORT = insert(reports)
_INSERT_CONTAINED = insert(report_records)
_REPORT_BY = {
    column: select(reports).where(reports.c[column] == bindparam("value"))
    for column in ("report_no", "verification_code", "sha256")
}
_STATUS_BY_CODE = select(reports.c.sha256, reports.c.status).where(reports.c.verification_code == bindparam("code"))
_ACCOUNT = select(accounts).where(accounts.c.username == bindparam("username"))
_NEXT_REVOCATION = (
    update(revocation_head)
    .where(revocation_head.c.id == 1)
    .values(seq=revocation_head.c.seq + 1)
    .returning(revocation_head.c.seq)
)
_LAST_REVOCATION = select(revocation_head.c.seq).where(revocation_head.c.id == 1)
_REVOCATIONS_BETWEEN = select(revocations.c.key, revocations.c.after, revocations.c.expires_at).where(
    revocations.c.seq > bindparam("after"),
    revocations.c.seq <= bindparam("upto"),
    revocations.c.expires_at > bindparam("now"),
)


def report_write(entry: RegisteredReport, records: Sequence[tuple[str, str, int]] = ()) -> Callable[[Connection], None]:
    """The write that registers ``entry`` and the record versions it contains (region,
    record id, version), to run in a transaction of the registry's database: what
    :meth:`Registry.add_report` commits, or what is committed together with the report's
    audit entry (:meth:`infra.auditlog.AuditLog.record_with`). An integrity error from
    it means the number, code or hash is already registered (:func:`already_registered`).
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

    return write


@contextmanager
def already_registered(entry: RegisteredReport) -> Iterator[None]:
    """Turns the integrity error of a :func:`report_write` into what callers are told.

    Raises:
        FailedPrecondition: the report's number, code or hash is already registered.
    """
    try:
        yield
    except IntegrityError as exc:
        raise FailedPrecondition(f"report {entry.report_no} is already registered") from exc


class Registry:
    """Reports are registered with group commit (:class:`infra.db.GroupCommit`): under
    load one commit serves many reports, and no report is acknowledged before its row
    is committed. The audit log shares the same writer."""

    def __init__(self, engine: Engine, *, threads: int = _THREADS) -> None:
        self.engine = engine
        # On SQLite, group commits run on the event loop, and on the thread when another
        # writer holds the lock or the log is due for a checkpoint (see GroupCommit).
        self.writes = GroupCommit(engine, inline=engine.dialect.name == "sqlite")
        # Small reads on SQLite run on the writer's own connection (see SqlRunner).
        kept = self.writes.driver_connection if self.writes.inline else None
        self._sql = SqlRunner(engine, name="registry", threads=threads, kept=kept)
        self._code_status = DriverStatement(_STATUS_BY_CODE, engine.dialect)

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
        """Stop the registry's worker threads once their work has ended, and close the
        database's connections once the work still running on other threads has given
        its connection back. Calls that need a worker thread raise RuntimeError afterwards."""
        self._sql.close()
        self.writes.close()
        dispose_when_idle(self.engine)

    async def read(self, work: Any, *args: Any) -> Any:
        """Run a short read (a function of ``args`` using ``self.engine``): a small unit
        of work for :class:`infra.db.SqlRunner`, so inline on SQLite, where a point
        lookup is cheaper than the hop to a worker thread, and on a worker thread elsewhere.

        Raises:
            RuntimeError: the registry is closed (on PostgreSQL).
            Whatever ``work`` raises.
        """
        return await self._sql.call(work, *args, small=True)

    async def run(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run ``work(*args)`` (synchronous work with ``self.engine``) on one of the
        registry's worker threads.

        Raises:
            RuntimeError: the registry is closed.
            Whatever ``work`` raises.
        """
        return await self._sql.call(work, *args)

    async def add_report(self, entry: RegisteredReport, records: Sequence[tuple[str, str, int]] = ()) -> None:
        """Register an issued report and the record versions it contains (region,
        record id, version); returns once committed.

        Raises:
            FailedPrecondition: its number, code or hash is already registered.
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        with already_registered(entry):
            await self.writes.submit(report_write(entry, records))

    def _one_report(self, column: str, value: str) -> RegisteredReport | None:
        with self.engine.connect() as conn:
            row = conn.execute(_REPORT_BY[column], {"value": value}).mappings().first()
        if row is None:
            return None
        data = dict(row)
        data["issued_at"] = as_utc(data["issued_at"])
        data["retain_until"] = as_utc(data["retain_until"])
        return RegisteredReport(**data)

    def _reports_of(self, subject_id: str, requested_by: str, offset: int, limit: int) -> list[RegisteredReport]:
        query = (
            select(reports)
            .where(reports.c.subject_id == subject_id, reports.c.requested_by == requested_by)
            .order_by(reports.c.issued_at.desc(), reports.c.report_no.desc())
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        out = []
        for row in rows:
            data = dict(row)
            data["issued_at"] = as_utc(data["issued_at"])
            data["retain_until"] = as_utc(data["retain_until"])
            out.append(RegisteredReport(**data))
        return out

    async def reports_of(
        self, subject_id: str, *, requested_by: str, offset: int = 0, limit: int = 20
    ) -> list[RegisteredReport]:
        """The reports about ``subject_id`` that ``requested_by`` had issued, newest first.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        result: list[RegisteredReport] = await self._sql.call(self._reports_of, subject_id, requested_by, offset, limit)
        return result

    async def report_by_number(self, report_no: str) -> RegisteredReport | None:
        result: RegisteredReport | None = await self.read(self._one_report, "report_no", report_no)
        return result

    async def report_by_code(self, code: str) -> RegisteredReport | None:
        result: RegisteredReport | None = await self.read(self._one_report, "verification_code", code)
        return result

    async def status_by_code(self, code: str) -> tuple[str, str] | None:
        """The SHA-256 and status of the report with verification code ``code``, or None:
        what a verification needs afresh each time, read through the driver (a lookup of
        the code's unique index, without the report's text).

        Raises:
            RuntimeError: the registry is closed (on PostgreSQL).
        """
        rows = await self._sql.with_driver(lambda driver: self._code_status.rows(driver, code=code), small=True)
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    async def report_by_hash(self, sha256: str) -> RegisteredReport | None:
        result: RegisteredReport | None = await self.read(self._one_report, "sha256", sha256)
        return result

    def _set_status(self, report_no: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(reports).where(reports.c.report_no == report_no).values(status=status))

    async def set_status(self, report_no: str, status: str) -> None:
        await self._sql.call(self._set_status, report_no, status)

    # Accounts

    # Supersession: the change feeds the gateway follows, and the reports they touch

    def has_reports(self) -> bool:
        """Whether any report was ever registered.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        with self.engine.connect() as conn:
            return conn.execute(select(reports.c.report_no).limit(1)).first() is not None

    def feed_cursor(self, region: str) -> int:
        """How far the region's change feed has been followed (0: not yet).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        with self.engine.connect() as conn:
            value = conn.execute(select(feed_cursors.c.seq).where(feed_cursors.c.region == region)).scalar()
        return int(value or 0)

    def mark_superseded(self, region: str, changes: Sequence[tuple[str, int]], seq: int) -> int:
        """Mark superseded the valid reports that contain an earlier version of any of
        the region's changed records (record id, new version), and move the region's
        cursor to ``seq`` unless it is there or further already, in one transaction; the
        number of reports marked.

        Raises:
            sqlalchemy.exc.IntegrityError: the region had no cursor, and another process
                stored one at the same moment (nothing was written).
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        marked = 0
        with self.engine.begin() as conn:
            for start in range(0, len(changes), 200):
                part = changes[start : start + 200]
                older = or_(*(and_(report_records.c.record_id == rid, report_records.c.version < v) for rid, v in part))
                affected = select(report_records.c.report_no).where(report_records.c.region == region, older)
                result = conn.execute(
                    update(reports)
                    .where(reports.c.status == "valid", reports.c.report_no.in_(affected))
                    .values(status="superseded")
                )
                marked += int(result.rowcount or 0)
            forward = case((feed_cursors.c.seq < seq, seq), else_=feed_cursors.c.seq)
            moved = conn.execute(update(feed_cursors).where(feed_cursors.c.region == region).values(seq=forward))
            if moved.rowcount == 0:
                conn.execute(feed_cursors.insert().values(region=region, seq=seq))
        return marked

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
        """Create or replace an account (administration, seeding). Replacing one ends its
        sessions: a changed role or subject must not live on in a token."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            existed = conn.execute(accounts.delete().where(accounts.c.username == account.username)).rowcount
            conn.execute(insert(accounts).values(**_fields(account), created_at=now))
            if existed:
                self._end_sessions(conn, f"user:{account.username}", now, now + SESSION_HORIZON)

    def add_organisation(self, organisation: Organisation) -> None:
        """Create an organisation or rename it (administration, seeding)."""
        with self.engine.begin() as conn:
            renamed = conn.execute(
                update(organisations).where(organisations.c.code == organisation.code).values(name=organisation.name)
            ).rowcount
            if not renamed:
                conn.execute(
                    insert(organisations).values(
                        code=organisation.code, name=organisation.name, created_at=datetime.now(UTC)
                    )
                )

    def find_organisation(self, code: str) -> Organisation | None:
        """The organisation with this unified social credit code, or None (synchronous).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        with self.engine.connect() as conn:
            name = conn.execute(select(organisations.c.name).where(organisations.c.code == code)).scalar()
        return Organisation(code, str(name)) if name is not None else None

    async def organisation(self, code: str) -> Organisation | None:
        """The organisation with this unified social credit code, or None.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        result: Organisation | None = await self.read(self.find_organisation, code)
        return result

    def remove_account(self, username: str) -> bool:
        """Remove an account and end its sessions; False when there was none."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            removed = conn.execute(accounts.delete().where(accounts.c.username == username)).rowcount
            if removed:
                self._end_sessions(conn, f"user:{username}", now, now + SESSION_HORIZON)
        return bool(removed)

    def set_password(self, username: str, password_hash: str) -> datetime | None:
        """Store an account's new password hash, clear its failed logins and end every
        session it had; returns the moment they ended, or None when there is no account."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(accounts)
                .where(accounts.c.username == username)
                .values(password_hash=password_hash, failed_logins=0, locked_until=None)
            ).rowcount
            if not changed:
                return None
            self._end_sessions(conn, f"user:{username}", now, now + SESSION_HORIZON)
        return now

    @staticmethod
    def _end_sessions(conn: Connection, key: str, after: datetime, expires_at: datetime) -> None:
        # The next number first: it holds the head row until this transaction commits.
        seq = int(conn.execute(_NEXT_REVOCATION).scalar_one())
        conn.execute(revocations.delete().where(revocations.c.key == key))
        conn.execute(insert(revocations).values(key=key, after=after, expires_at=expires_at, seq=seq))
        if seq % PRUNE_EVERY == 0:
            conn.execute(delete(revocations).where(revocations.c.expires_at <= after))

    def end_session(self, token_id: str, *, expires_at: datetime) -> None:
        """A logged-out session token no longer counts, in any process on this database."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            self._end_sessions(conn, f"jti:{token_id}", now, expires_at)

    def ended_since(self, seq: int) -> tuple[int, dict[str, tuple[datetime, datetime]]]:
        """The number of the last revocation committed, and the revocations numbered after
        ``seq`` up to it that are still in force: (after, expires_at) by key (see
        :class:`SessionRevocationRow`). ``seq`` -1 reads them all. Two index lookups, and
        rows only for revocations not read before.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        now = datetime.now(UTC)
        with self.engine.connect() as conn:
            last = int(conn.execute(_LAST_REVOCATION).scalar_one())
            if last <= seq:
                return last, {}
            rows = conn.execute(_REVOCATIONS_BETWEEN, {"after": seq, "upto": last, "now": now})
            return last, {key: (as_utc(after), as_utc(expires_at)) for key, after, expires_at in rows}

    def _login_result(self, username: str, failed: int, locked_until: datetime | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(accounts)
                .where(accounts.c.username == username)
                .values(failed_logins=failed, locked_until=locked_until)
            )

    async def record_login(self, username: str, *, failed_logins: int, locked_until: datetime | None) -> None:
        await self._sql.call(self._login_result, username, failed_logins, locked_until)

    def _count_account_attempt(self, username: str) -> int:
        with self.engine.begin() as conn:
            conn.execute(
                update(accounts)
                .where(accounts.c.username == username)
                .values(failed_logins=accounts.c.failed_logins + 1)
            )
            found = conn.execute(select(accounts.c.failed_logins).where(accounts.c.username == username)).scalar()
            return int(found or 0)

    async def count_account_attempt(self, username: str) -> int:
        """Count a login attempt on an account before its password is checked, atomically
        (parallel attempts each see their own number); a right password resets it."""
        result: int = await self._sql.call(self._count_account_attempt, username)
        return result

    def _take_attempt(self, key: str, now: datetime, window: timedelta, limit: int) -> tuple[int | None, int]:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # One attempt at a time per key across processes; SQLite's write lock
                # (taken by the DELETE below) does the same there.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            conn.execute(delete(login_attempts).where(login_attempts.c.key == key, login_attempts.c.at < now - window))
            recent = [
                as_utc(at)
                for at in conn.execute(
                    select(login_attempts.c.at).where(login_attempts.c.key == key).order_by(login_attempts.c.at)
                ).scalars()
            ]
            if len(recent) >= limit:
                oldest = recent[0] or now
                return None, max(1, int((oldest + window - now).total_seconds()) + 1)
            attempt = conn.execute(insert(login_attempts).values(key=key, at=now).returning(login_attempts.c.id))
            return int(attempt.scalar_one()), 0

    async def take_attempt(self, key: str, *, now: datetime, window: timedelta, limit: int) -> tuple[int | None, int]:
        """Count an attempt under ``key`` (a client address) unless ``limit`` were counted in
        the last ``window``: (its id, 0), or (None, seconds to wait)."""
        result: tuple[int | None, int] = await self._sql.call(self._take_attempt, key, now, window, limit)
        return result

    def _forget_attempt(self, attempt_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(login_attempts).where(login_attempts.c.id == attempt_id))

    async def forget_attempt(self, attempt_id: int) -> None:
        """An attempt whose password was right no longer counts against its address."""
        await self._sql.call(self._forget_attempt, attempt_id)


def _fields(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}
