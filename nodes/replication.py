"""Following a peer node's change feed into this node's replica of its region.

One :class:`Subscriber` per peer. It connects (mutual TLS with the node's own
certificate when the node has one), stores the peer's catalogue, and follows
``WatchChangeBatches`` from the position its cursor stores. A reader task takes batches
off the stream while the applier writes the previous ones, each group in one
transaction together with the cursor (:meth:`nodes.replica.ReplicaStore.apply`). A
broken stream, a peer that is down or one that falls silent (no batch, not even a
heartbeat, within ``idle_timeout``) is retried with full-jitter exponential backoff
(tenacity), from the stored cursor: nothing is lost, nothing is applied twice.

The loop itself — the reader, the groups, the idle timeout, the backoff, stopping and
logging — is :class:`federation.follower.Follower`, shared with the gateway; this module
is the replica's side of it (:class:`_PeerFeed`): the batches are read and stored raw,
as the peer sent them.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.exc import SQLAlchemyError

from credit.regions import Region
from federation.follower import FeedBroken, Follower
from nodes.replica import CursorMoved, Received, ReplicaStore
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc

log = structlog.get_logger("jjj.node")

REPLICA_CHANGES = Counter(
    "jjj_node_replica_changes_total", "Peer record versions applied to the replica", ["region", "origin"]
)
REPLICA_LAG = Gauge(
    "jjj_node_replica_lag_changes", "Changes the peer had stored that the replica had not applied", ["region", "origin"]
)
REPLICA_SYNCED = Gauge(
    "jjj_node_replica_synced_timestamp_seconds",
    "When the replica was last known to hold everything the peer had (Unix time)",
    ["region", "origin"],
)
FEED_BREAKS = Counter("jjj_node_replica_reconnects_total", "Broken or refused peer feeds", ["region", "origin"])

CATALOGUE_TIMEOUT = 10.0


@dataclass
class SubscriberState:
    connected: bool = False
    last_error: str = ""
    applied: int = 0  # changes applied by this subscriber since it started


class Subscriber:
    """Keeps the replica of ``origin`` in step with the node at ``address``."""

    def __init__(
        self,
        store: ReplicaStore,
        origin: Region,
        address: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        max_batch: int = 2000,
        apply_max: int = 80_000,
        idle_timeout: float = 30.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.store = store
        self.origin = origin
        self.address = address
        self.credentials = credentials
        self.max_batch = max_batch
        self.apply_max = apply_max
        self.idle_timeout = idle_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.state = SubscriberState()
        self._labels = (store.region.value, origin.value)
        self._channel: grpc.aio.Channel | None = None

    def _open(self) -> grpc.aio.Channel:
        if self._channel is None:
            options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
            if self.credentials is not None:
                self._channel = grpc.aio.secure_channel(self.address, self.credentials, options=options)
            else:
                self._channel = grpc.aio.insecure_channel(self.address, options=options)
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None

    async def run(self) -> None:
        """Follow the peer until cancelled.

        Raises:
            asyncio.CancelledError: when cancelled (the feed's reader stopped, its call
                cancelled, and no write of it still under way).
        """
        feed = _PeerFeed(
            store=self.store,
            origin=self.origin,
            address=self.address,
            max_batch=self.max_batch,
            state=self.state,
            channel=self._open,
            labels=self._labels,
        )
        follower = Follower(
            feed,
            log=log.bind(origin=self.origin.value, address=self.address),
            event="replica",
            group_size=self.apply_max,
            # Room for a whole group: while one group is written the next one gathers,
            # and large groups are what make a catch-up fast (each commit rewrites the
            # index pages its changes touched).
            queue_size=self.apply_max // self.max_batch + 2,
            idle_timeout=self.idle_timeout,
            heartbeats=True,  # the peer sends an empty batch every few seconds when idle
            backoff=self.backoff,
            max_backoff=self.max_backoff,
        )
        await follower.run()


@dataclass
class _PeerFeed:
    """The replica's side of a peer's feed (a :class:`~federation.follower.FeedSink` of
    the peer's raw batches, as received: records are stored as sent, never decoded)."""

    store: ReplicaStore
    origin: Region
    address: str
    max_batch: int
    state: SubscriberState
    channel: Callable[[], grpc.aio.Channel]
    labels: tuple[str, str]

    async def prepare(self) -> int:
        """The stored cursor, once the peer's catalogue is checked and stored.

        Raises:
            FeedBroken: the peer is of another region.
            grpc.aio.AioRpcError: the catalogue cannot be read.
            sqlalchemy.exc.SQLAlchemyError: the replica cannot be written.
        """
        stub = node_pb2_grpc.RegionalNodeStub(self.channel())
        cursor = await self.store.write(lambda: self.store.start(self.origin, self.address))
        catalogue = await stub.GetCatalogue(pb.GetCatalogueRequest(), timeout=CATALOGUE_TIMEOUT)
        if catalogue.region != self.origin.value:
            raise FeedBroken(
                f"the node at {self.address} is {catalogue.region or '?'}, not {self.origin.value}",
                progressed=False,
            )
        await self.store.write(lambda: self.store.save_catalogue(self.origin, catalogue))
        return cursor.last_seq

    async def open(self, cursor: int) -> AsyncIterator[Received]:
        """The peer's batches after ``cursor``, each with the time it arrived.

        Raises:
            grpc.aio.AioRpcError: the stream broke or was refused.
        """
        stub = node_pb2_grpc.RegionalNodeStub(self.channel())
        call = stub.WatchChangeBatches(pb.WatchChangesRequest(after_seq=cursor, follow=True, max_batch=self.max_batch))
        self.state.connected = True
        try:
            async for batch in call:
                yield Received(batch, datetime.now(UTC))
        finally:
            call.cancel()

    def size(self, item: Received) -> int:
        return len(item.batch.changes)

    def foreign(self, item: Received) -> str | None:
        if item.batch.region != self.origin.value:
            return f"the feed at {self.address} is {item.batch.region}'s, not {self.origin.value}'s"
        return None

    async def apply(self, group: Sequence[Received], cursor: int) -> int:
        """Write a group with the cursor, in one transaction; the new cursor.

        Raises:
            CursorMoved: someone else applied changes of this origin meanwhile.
            sqlalchemy.exc.SQLAlchemyError: the replica cannot be written.
        """
        applied = await self.store.write(functools.partial(self.store.apply, self.origin, group, after_seq=cursor))
        self.state.applied += applied.applied
        REPLICA_CHANGES.labels(*self.labels).inc(applied.applied)
        REPLICA_LAG.labels(*self.labels).set(max(0, applied.head_seq - applied.last_seq))
        if applied.synced_at is not None:
            REPLICA_SYNCED.labels(*self.labels).set(applied.synced_at.timestamp())
        return applied.last_seq

    def failure(self, error: Exception, *, progressed: bool) -> FeedBroken | None:
        if isinstance(error, grpc.aio.AioRpcError):
            return FeedBroken(f"{error.code().name}: {error.details()}", progressed=progressed)
        if isinstance(error, CursorMoved):
            return FeedBroken(str(error), progressed=progressed)
        if isinstance(error, SQLAlchemyError):  # the database's trouble: back off whatever was applied
            return FeedBroken(f"cannot write the replica: {error}", progressed=False)
        return None

    def broken(self, broken: FeedBroken) -> None:
        self.state.connected = False
        self.state.last_error = broken.reason
        FEED_BREAKS.labels(*self.labels).inc()
