"""Reports whose data later changed say so: the gateway follows every region's change
feed and marks *superseded* each valid report that contains an earlier version of a
changed record (an objection upheld or corrected, a record revoked or repaired, a
correction ingested). The verify page then tells a bank that the report it holds is no
longer the current picture.

Each region's feed is followed from a cursor kept in the gateway's database; a batch of
changes and the cursor move are written in one transaction, so a restart neither loses
nor repeats work (and marking is idempotent anyway).

Of the processes on one database (an instance's workers and replicas) one follows each
region's feed: the holder of its lease (:mod:`infra.leases`, ``feed:<region>``), taken
over by another process when the holder stops or dies. The marks are in the shared
database, so every process sees a report superseded however it learnt of the change.
A cursor only ever moves forward: a holder that lost its lease while writing cannot
take it back.

The following itself is :class:`federation.follower.Follower`, the loop a node's replica
of a peer uses too: changes are read ahead while the previous group is marked, a break
before any progress is retried with full-jitter exponential backoff (``retry`` seconds
at first, growing to ``max_backoff``), a break after progress reconnects at once.

The idle timeout works without heartbeats. A node's feed sends an empty batch every few
seconds when idle, but :meth:`federation.client.NodeClient.changes` yields changes only,
and :class:`~federation.client.GrpcNodeClient` drops those empty batches: a quiet region
and a dead connection look the same from here. Rather than reach past the client for
the raw stream, the gateway keeps the protocol and takes a generous ``idle_timeout``
(five minutes by default) with ``heartbeats=False``: a feed that says nothing for that
long is reopened from the cursor at once and quietly — not counted as a failure, not
backed off — so a connection that died without a word is replaced within minutes, and
a region with nothing to report costs one new stream per period.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from credit.errors import CreditError
from credit.queries import ChangeNotice
from credit.regions import Region
from federation.client import NodeClient, status_text
from federation.follower import FeedBroken, Follower
from gateway.registry import Registry
from infra.leases import Leases

log = structlog.get_logger("jjj.gateway")

MARK_GROUP = 500  # changes marked in one transaction at most
IDLE_TIMEOUT = 300.0  # a feed that said nothing for this long is reopened (no heartbeats reach the gateway)
LEASE_SECONDS = 30.0  # a feed's lease: a follower that died is replaced within about this long


class SupersedeWatcher:
    """Follows every region's change feed and marks the reports the changes supersede.

    ``retry`` is the backoff after a break before any progress (seconds at first, full
    jitter, doubling up to ``max_backoff``); ``idle_timeout`` how long a feed may say
    nothing before it is reopened (see the module's description). Each feed is followed
    while this process holds its lease of ``lease_seconds`` from ``leases`` (by default
    the watcher's own, on the registry's database).
    """

    def __init__(
        self,
        registry: Registry,
        clients: Sequence[NodeClient],
        *,
        retry: float = 2.0,
        max_backoff: float = 30.0,
        idle_timeout: float = IDLE_TIMEOUT,
        leases: Leases | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.registry = registry
        self.clients = clients
        self.retry = retry
        self.max_backoff = max_backoff
        self.idle_timeout = idle_timeout
        self.leases = leases if leases is not None else Leases(registry.engine, run=registry.run)
        self.lease_seconds = lease_seconds
        self._tasks: list[asyncio.Task[None]] = []

    async def start_new_registry_at_heads(self, *, timeout: float = 5.0) -> None:
        """Let a gateway whose registry holds no report skip the feeds' history.

        No change stored before now can supersede a report issued after it, so a gateway
        starting with an empty registry follows each region from the node's current head
        instead of replaying every version the region ever stored (minutes of work for a
        region of millions of records). Call it before the gateway issues reports. A
        region that has a cursor already, or whose node does not answer, is left to
        follow from where it is.
        """
        if await self.registry.run(self.registry.has_reports):
            return

        async def one(client: NodeClient) -> None:
            if await self.registry.run(self.registry.feed_cursor, client.region.value):
                return
            try:
                head = await client.head_seq(timeout=timeout)
            except CreditError as error:
                log.info("feed_head_unknown", region=client.region.value, code=error.grpc_code)
                return
            try:
                await self.registry.run(self._apply, client.region, [], head)
            except IntegrityError:
                return  # another process starting at the same time stored the region's cursor first
            log.info("feed_followed_from_head", region=client.region.value, seq=head)

        await asyncio.gather(*(one(client) for client in self.clients))

    def start(self) -> None:
        """Follow each region's feed whenever this process holds its lease, until stopped."""
        self._tasks = [asyncio.create_task(self._follow_leased(client)) for client in self.clients]

    async def _follow_leased(self, client: NodeClient) -> None:
        async def follow() -> None:
            log.info("feed_lease_taken", region=client.region.value, holder=self.leases.holder)
            await self._follow(client)

        await self.leases.keep(f"feed:{client.region.value}", follow, seconds=self.lease_seconds)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _apply(self, region: Region, changes: list[tuple[str, int]], seq: int) -> int:
        return self.registry.mark_superseded(region.value, changes, seq)

    async def _follow(self, client: NodeClient) -> None:
        follower = Follower(
            _RegionFeed(self, client),
            log=log.bind(region=client.region.value),
            event="supersede",
            group_size=MARK_GROUP,
            queue_size=MARK_GROUP * 4,
            idle_timeout=self.idle_timeout,
            heartbeats=False,
            backoff=self.retry,
            max_backoff=self.max_backoff,
        )
        await follower.run()

    async def _flush(self, region: Region, changes: list[tuple[str, int]], seq: int) -> None:
        marked = await self.registry.run(self._apply, region, changes, seq)
        if marked:
            log.info("reports_superseded", region=region.value, reports=marked, through_seq=seq)


@dataclass
class _RegionFeed:
    """The watcher's side of one region's feed (a :class:`~federation.follower.FeedSink`
    of change notices, one change each)."""

    watcher: SupersedeWatcher
    client: NodeClient

    async def prepare(self) -> int:
        """The region's stored cursor.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the registry cannot be read.
        """
        return await self.watcher.registry.run(self.watcher.registry.feed_cursor, self.client.region.value)

    def open(self, cursor: int) -> AsyncIterator[ChangeNotice]:
        """The region's changes after ``cursor``.

        Raises:
            CreditError: (when iterated) the node refused or could not be reached.
        """
        return self.client.changes(cursor)

    def size(self, item: ChangeNotice) -> int:
        return 1

    def foreign(self, item: ChangeNotice) -> str | None:
        return None  # a notice names no region: the feed is the one this region's client opened

    async def apply(self, group: Sequence[ChangeNotice], cursor: int) -> int:
        """Mark what the group supersedes and move the cursor past it; the new cursor.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the registry cannot be written.
        """
        seq = group[-1].seq
        await self.watcher._flush(self.client.region, [(c.record_id, c.version) for c in group], seq)
        return seq

    def failure(self, error: Exception, *, progressed: bool) -> FeedBroken | None:
        if isinstance(error, CreditError):
            return FeedBroken(status_text(error), progressed=progressed)
        if isinstance(error, SQLAlchemyError):  # the database's trouble: back off whatever was marked
            return FeedBroken(f"cannot write the registry: {error}", progressed=False)
        return None

    def broken(self, broken: FeedBroken) -> None:
        pass  # the follower logs it; the gateway keeps no state of its feeds
