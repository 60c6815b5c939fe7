"""The grants a subject has made and the redemptions of them, in the gateway's database:
the one place that writes and reads the ``grants`` and ``grant_redemptions`` tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, or_, select, update

from credit.clock import iso_z
from credit.policy import Redeemer
from gateway.models import GrantRow, RedemptionRow
from gateway.registry import Registry
from infra.db import as_utc

grants: Table = GrantRow.__table__  # type: ignore[assignment]
redemptions: Table = RedemptionRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Grant:
    grant_id: str
    subject_id: str
    created_by: str
    grantee: str | None
    grantee_org: str | None
    purpose: str
    mode: str
    report_no: str
    profile: str
    years: int
    max_uses: int
    uses: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.uses >= self.max_uses:
            return "used_up"
        return "active"

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        moment = now or datetime.now(UTC)
        return {
            "grant_id": self.grant_id,
            "purpose": self.purpose,
            "grantee": self.grantee,
            "grantee_org": self.grantee_org,
            "mode": self.mode,
            "report_no": self.report_no or None,
            "max_uses": self.max_uses,
            "uses": self.uses,
            "created_at": iso_z(self.created_at),
            "expires_at": iso_z(self.expires_at),
            "revoked_at": iso_z(self.revoked_at) if self.revoked_at else None,
            "state": self.state(moment),
        }


def _grant(row: Mapping[Any, Any]) -> Grant:
    values = {name: row[name] for name in Grant.__slots__}
    for name in ("created_at", "expires_at", "revoked_at"):
        values[name] = as_utc(values[name])
    return Grant(**values)


class GrantStore:
    """Grants in the registry's database; writes go through its group commit.

    Every method may raise ``sqlalchemy.exc.OperationalError`` when the database cannot
    be reached.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def add(self, row: Mapping[str, Any]) -> Grant | None:
        """Store a new grant; None when its preview (``preview_id``) was confirmed already
        (a preview is confirmed once)."""

        def store(conn: Connection) -> bool:
            taken = conn.execute(select(grants.c.grant_id).where(grants.c.preview_id == row["preview_id"])).first()
            if taken is not None:
                return False
            conn.execute(insert(grants).values(**row))
            return True

        return _grant(row) if await self.registry.writes.submit(store) else None

    async def set_report(self, grant_id: str, report_no: str) -> None:
        """The report a fixed grant serves, once it is issued."""

        def store(conn: Connection) -> None:
            conn.execute(update(grants).where(grants.c.grant_id == grant_id).values(report_no=report_no))

        await self.registry.writes.submit(store)

    async def remove(self, grant_id: str) -> None:
        """Take back a grant whose report could not be issued (its code was never shown)."""

        def remove(conn: Connection) -> None:
            conn.execute(delete(grants).where(grants.c.grant_id == grant_id))

        await self.registry.writes.submit(remove)

    def _by_hash(self, digest: str) -> Grant | None:
        with self.registry.engine.connect() as conn:
            row = conn.execute(select(grants).where(grants.c.code_hash == digest)).mappings().first()
        return _grant(row) if row is not None else None

    async def by_code_hash(self, digest: str) -> Grant | None:
        """The grant whose code hashes to ``digest``, or None."""
        grant: Grant | None = await self.registry.read(self._by_hash, digest)
        return grant

    async def use(self, digest: str, now: datetime) -> bool:
        """Count one use of the grant if it is still usable at ``now`` (not revoked, not
        expired, not used up), in one statement; whether it was."""

        def use(conn: Connection) -> int:
            result = conn.execute(
                update(grants)
                .where(
                    grants.c.code_hash == digest,
                    grants.c.revoked_at.is_(None),
                    grants.c.uses < grants.c.max_uses,
                    grants.c.expires_at > now,
                )
                .values(uses=grants.c.uses + 1, last_used_at=now)
            )
            return int(result.rowcount)

        return bool(await self.registry.writes.submit(use) == 1)

    async def of_subject(self, subject_id: str) -> list[Grant]:
        """A subject's grants, newest first."""

        def read() -> list[Grant]:
            with self.registry.engine.connect() as conn:
                rows = (
                    conn.execute(
                        select(grants).where(grants.c.subject_id == subject_id).order_by(grants.c.created_at.desc())
                    )
                    .mappings()
                    .all()
                )
            return [_grant(row) for row in rows]

        result: list[Grant] = await self.registry.read(read)
        return result

    async def revoke(self, grant_id: str, now: datetime, *, subject_id: str | None) -> Grant | None:
        """Revoke a grant (of ``subject_id`` only, unless None) if it is not revoked yet;
        the grant as it now stands, or None when there is no such grant (of that subject)."""

        def revoke(conn: Connection) -> Any:
            query = update(grants).where(grants.c.grant_id == grant_id, grants.c.revoked_at.is_(None))
            if subject_id is not None:
                query = query.where(grants.c.subject_id == subject_id)
            conn.execute(query.values(revoked_at=now))
            return conn.execute(select(grants).where(grants.c.grant_id == grant_id)).mappings().first()

        row = await self.registry.writes.submit(revoke)
        if row is None or (subject_id is not None and row["subject_id"] != subject_id):
            return None
        return _grant(row)


@dataclass(frozen=True, slots=True)
class Redemption:
    """One use of a grant: the report it served, to whom and when."""

    redemption_id: str
    grant_id: str
    report_no: str
    redeemed_by: str
    issuer: str  # empty: an anonymous holder of the code
    org_code: str | None  # the organisation the grant was made out to
    holder_hash: str | None
    redeemed_at: datetime

    @property
    def redeemer(self) -> Redeemer:
        return Redeemer(self.redeemed_by, self.issuer, self.org_code)


def _redemption(row: Mapping[Any, Any]) -> Redemption:
    values = {name: row[name] for name in Redemption.__slots__}
    values["redeemed_at"] = as_utc(values["redeemed_at"])
    return Redemption(**values)


def _live(now: datetime) -> Any:
    # A redeemer keeps the report while the grant lasts: not after it was revoked or expired.
    return (grants.c.revoked_at.is_(None)) & (grants.c.expires_at > now)


class RedemptionStore:
    """Redemptions in the registry's database; writes go through its group commit.

    Every method may raise ``sqlalchemy.exc.OperationalError`` when the database cannot
    be reached.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def add(self, redemption: Redemption) -> None:
        """Keep a redemption; returns once committed."""
        values = {name: getattr(redemption, name) for name in Redemption.__slots__}

        def store(conn: Connection) -> None:
            conn.execute(insert(redemptions).values(**values))

        await self.registry.writes.submit(store)

    async def get(self, redemption_id: str) -> tuple[Redemption, Grant] | None:
        """A redemption and its grant as it now stands, or None."""

        def read() -> tuple[Redemption, Grant] | None:
            with self.registry.engine.connect() as conn:
                found = (
                    conn.execute(select(redemptions).where(redemptions.c.redemption_id == redemption_id))
                    .mappings()
                    .first()
                )
                if found is None:
                    return None
                grant = conn.execute(select(grants).where(grants.c.grant_id == found["grant_id"])).mappings().first()
            return (_redemption(found), _grant(grant)) if grant is not None else None

        result: tuple[Redemption, Grant] | None = await self.registry.read(read)
        return result

    async def redeemers_of(self, report_no: str, now: datetime) -> list[Redeemer]:
        """Who was given ``report_no`` through a grant that still lasts at ``now``."""

        def read() -> list[Redeemer]:
            query = (
                select(redemptions)
                .join(grants, grants.c.grant_id == redemptions.c.grant_id)
                .where(redemptions.c.report_no == report_no, _live(now))
            )
            with self.registry.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            return [_redemption(row).redeemer for row in rows]

        result: list[Redeemer] = await self.registry.read(read)
        return result

    async def of_redeemer(
        self, username: str, issuer: str, organisation: str | None, now: datetime, *, limit: int = 20
    ) -> list[tuple[Redemption, Grant]]:
        """The latest redemptions by an account, or of grants made out to its organisation,
        whose grants still last at ``now``, newest first."""

        def read() -> list[tuple[Redemption, Grant]]:
            mine: Any = (redemptions.c.redeemed_by == username) & (redemptions.c.issuer == issuer)
            if organisation is not None:
                mine = or_(mine, redemptions.c.org_code == organisation)
            query = (
                select(redemptions, *(c.label(f"g_{c.name}") for c in grants.c))
                .join(grants, grants.c.grant_id == redemptions.c.grant_id)
                .where(mine, _live(now))
                .order_by(redemptions.c.redeemed_at.desc())
                .limit(limit)
            )
            with self.registry.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            return [(_redemption(row), _grant({c.name: row[f"g_{c.name}"] for c in grants.c})) for row in rows]

        result: list[tuple[Redemption, Grant]] = await self.registry.read(read)
        return result
