"""Leases: work that one process at a time does for all the processes on a database.

Several processes of one service share a database (the workers of one gateway instance,
and its replicas behind a load balancer). Some background work must be done by only one
of them: a batch job runs in one process, each change feed is followed by one. A
process that wants such work takes the lease named after it, a row of ``leases``
(created by the service's migrations): the name, who holds it, and until when. Taking is
one conditional ``UPDATE`` — the row is free, expired or already ours — or an ``INSERT``
of a name never leased; the database's row lock (PostgreSQL) or write lock (SQLite)
decides between two takers, so at most one holds a name at a time.

The holder renews its lease well before it ends (:meth:`Leases.hold`, every third of
its length) and gives it back when the work is done or the process stops. A holder that
dies — killed, its machine lost — stops renewing, and another process takes the lease
once it has expired: after at most its length, plus however long the taker waits
between tries. A holder that cannot renew in time (its database unreachable, its event
loop stalled) presumes the lease lost and cancels the work.

Expiry times are written and compared with each process's own clock, so the processes'
clocks must agree to well within a lease's length (NTP keeps them within milliseconds).
Correctness does not hang on it: every piece of work done under a lease is written so
that doing it twice changes nothing (a batch answer is inserted once per key, marking a
report superseded is idempotent), and a lease only keeps processes from doing the work
twice, or from doing it at the same time.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from infra.db import as_utc

log = structlog.get_logger("jjj.leases")

_T = TypeVar("_T")

metadata = MetaData()
# The gateway's migration g0014 creates it (with its own copy of these columns).
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


class LeaseLost(Exception):
    """The lease ended while its work was running (another process took it over, or it
    could not be renewed in time); the work was cancelled."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"lease {name!r} lost: {reason}")
        self.name = name
        self.reason = reason


def process_holder() -> str:
    """A name for this process as a lease holder: its host (a pod's name in Kubernetes),
    its process id, and a random part, so that a restarted process with the same id
    never takes itself for the one before."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


async def _on_thread(work: Callable[..., _T], *args: Any) -> _T:
    return await asyncio.to_thread(work, *args)


class Leases:
    """This process's leases on ``engine``'s database, held as ``holder``.

    ``run`` runs synchronous database work off the event loop (a service passes its own
    worker threads; by default :func:`asyncio.to_thread`); ``clock`` gives the time
    expiries are written and compared in (tests set it).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        holder: str | None = None,
        run: Callable[..., Awaitable[Any]] = _on_thread,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.holder = holder or process_holder()
        self._run = run
        self.clock = clock

    # Synchronous: one transaction each

    def take_now(self, name: str, seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``seconds`` from now: True when this
        process holds it now, False when another process holds it and it has not expired.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        now = self.clock()
        until = now + timedelta(seconds=seconds)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(leases)
                .where(leases.c.name == name, or_(leases.c.holder == self.holder, leases.c.expires_at <= now))
                .values(holder=self.holder, expires_at=until)
            ).rowcount
        if taken:
            return True
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(leases).values(name=name, holder=self.holder, expires_at=until))
        except IntegrityError:
            return False  # the row exists: held by another process (or taken a moment ago)
        return True

    def release_now(self, name: str) -> None:
        """Give the lease back at once, if this process holds it: another process may
        take it without waiting for it to expire.

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be written.
        """
        with self.engine.begin() as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == self.holder))

    def holders(self, prefix: str = "") -> dict[str, tuple[str, datetime]]:
        """Who holds each lease whose name starts with ``prefix``, and until when
        (expired leases included: nobody has taken them since).

        Raises:
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        query = select(leases).where(leases.c.name.startswith(prefix, autoescape=True))
        with self.engine.connect() as conn:
            return {row.name: (row.holder, as_utc(row.expires_at)) for row in conn.execute(query)}

    # From the event loop

    async def take(self, name: str, seconds: float) -> bool:
        """:meth:`take_now` off the event loop."""
        taken: bool = await self._run(self.take_now, name, seconds)
        return taken

    async def release(self, name: str) -> None:
        """:meth:`release_now` off the event loop; a failure is logged, not raised (the
        lease then simply expires)."""
        try:
            await self._run(self.release_now, name)
        except Exception:  # it expires anyway
            log.warning("lease_not_released", lease=name, holder=self.holder, exc_info=True)

    async def hold(self, name: str, work: Callable[[], Awaitable[None]], *, seconds: float) -> bool:
        """Run ``work`` while this process holds the lease ``name``: False at once when
        another process holds it (``work`` does not start); True once ``work`` ended and
        the lease was given back.

        The lease is renewed every third of ``seconds``. When it cannot be renewed —
        another process took it over, or renewing failed until it expired — ``work`` is
        cancelled and :class:`LeaseLost` raised. When ``hold`` is cancelled, ``work`` is
        cancelled and waited for, and the lease given back.

        Raises:
            LeaseLost: the lease ended before ``work`` did.
            sqlalchemy.exc.OperationalError: the lease could not be taken (the database
                cannot be written).
            Whatever ``work`` raises (the lease is given back).
        """
        started = time.monotonic()
        if not await self.take(name, seconds):
            return False
        valid_until = started + seconds  # measured from before the take: never later than the row says
        task = asyncio.ensure_future(work())
        lost = False
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=seconds / 3)
                if done:
                    task.result()
                    return True
                renewing = time.monotonic()
                try:
                    renewed = await self.take(name, seconds)
                except Exception:  # retried until the lease would have ended
                    log.warning("lease_not_renewed", lease=name, holder=self.holder, exc_info=True)
                    renewed = None
                if renewed:
                    valid_until = renewing + seconds
                elif renewed is False or time.monotonic() >= valid_until:
                    lost = True
                    reason = "another process took it over" if renewed is False else "it could not be renewed in time"
                    raise LeaseLost(name, reason)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
            if not lost:
                await self.release(name)

    async def keep(
        self, name: str, work: Callable[[], Awaitable[None]], *, seconds: float, retry: float | None = None
    ) -> None:
        """Run ``work`` (which runs until cancelled) whenever this process can hold the
        lease ``name``, until cancelled: it tries to take the lease every ``retry``
        seconds (a third of ``seconds`` by default), so work whose holder died is taken
        over within ``seconds`` plus ``retry``.

        Raises:
            asyncio.CancelledError: when cancelled (``work`` cancelled, the lease given back).
        """
        pause = retry if retry is not None else seconds / 3
        held = False
        while True:
            try:
                held = await self.hold(name, work, seconds=seconds)
                if held:
                    log.warning("leased_work_ended", lease=name, note="it should run until cancelled: taken up again")
            except LeaseLost as lost:
                log.warning("lease_lost", lease=name, holder=self.holder, reason=lost.reason)
                held = False
            except Exception:  # never stop trying: the work must be done by someone
                log.exception("leased_work_failed", lease=name)
                held = False
            if not held:
                await asyncio.sleep(pause)
