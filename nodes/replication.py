"""Following a peer node's change feed into this node's replica of its region.

One :class:`Subscriber` per peer. It connects (mutual TLS with the node's own
certificate when the node has one), stores the peer's catalogue, and follows
``WatchChangeBatches`` from the position its cursor stores. A reader task takes batches
off the stream while the applier writes the previous ones, each group in one
transaction together with the cursor (:meth:`nodes.replica.ReplicaStore.apply`). A
broken stream, a peer that is down or one that falls silent (no batch, not even a
heartbeat, within ``idle_timeout``) is retried with full-jitter exponential backoff
(tenacity), from the stored cursor: nothing is lost, nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy.exc import SQLAlchemyError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from credit.regions import Region
from nodes.replica import Applied, CursorMoved, Received, ReplicaStore
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


class FeedBroken(Exception):
    """The feed stopped; ``progressed`` when something was applied (or heard) first."""

    def __init__(self, reason: str, *, progressed: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.progressed = progressed


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
        self._breaks = 0
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
        """Follow the peer until cancelled."""
        while True:
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(lambda e: isinstance(e, FeedBroken) and not e.progressed),
                    wait=wait_random_exponential(multiplier=self.backoff, max=self.max_backoff),
                    before_sleep=self._before_sleep,
                    reraise=True,
                ):
                    with attempt:
                        await self._session()
            except FeedBroken as broken:
                # It had made progress: reconnect at once, with the backoff started afresh.
                self._broken(broken)

    def _broken(self, broken: FeedBroken) -> None:
        self.state.connected = False
        self.state.last_error = broken.reason
        FEED_BREAKS.labels(*self._labels).inc()
        self._breaks += 1
        # A peer that is not up yet (all three start together) is routine; say so loudly
        # only when it keeps failing.
        report = log.warning if self._breaks > 10 or broken.progressed else log.info
        report("replica_feed_broken", origin=self.origin.value, address=self.address, reason=broken.reason)

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, FeedBroken):
            self._broken(error)

    async def _session(self) -> None:
        progressed = False
        stub = node_pb2_grpc.RegionalNodeStub(self._open())
        call: grpc.aio.UnaryStreamCall[pb.WatchChangesRequest, pb.ChangeBatch] | None = None
        reader: asyncio.Task[None] | None = None
        queue: asyncio.Queue[Received | FeedBroken] | None = None
        try:
            cursor = await self.store.write(lambda: self.store.start(self.origin, self.address))
            catalogue = await stub.GetCatalogue(pb.GetCatalogueRequest(), timeout=CATALOGUE_TIMEOUT)
            if catalogue.region != self.origin.value:
                raise FeedBroken(
                    f"the node at {self.address} is {catalogue.region or '?'}, not {self.origin.value}",
                    progressed=False,
                )
            await self.store.write(lambda: self.store.save_catalogue(self.origin, catalogue))
            call = stub.WatchChangeBatches(
                pb.WatchChangesRequest(after_seq=cursor.last_seq, follow=True, max_batch=self.max_batch)
            )
            self.state.connected = True
            log.info("replica_following", origin=self.origin.value, address=self.address, after_seq=cursor.last_seq)
            # Room for a whole group: while one group is written the next one gathers,
            # and large groups are what make a catch-up fast (each commit rewrites the
            # index pages its changes touched).
            queue = asyncio.Queue(maxsize=self.apply_max // self.max_batch + 2)
            reader = asyncio.create_task(self._read(call, queue))
            last = cursor.last_seq
            pending: FeedBroken | None = None
            while pending is None:
                first = await queue.get()
                if isinstance(first, FeedBroken):
                    pending = first
                    break
                group = [first]
                size = len(first.batch.changes)
                while size < self.apply_max and not queue.empty():
                    item = queue.get_nowait()
                    if isinstance(item, FeedBroken):
                        pending = item
                        break
                    group.append(item)
                    size += len(item.batch.changes)
                applied = await self.store.write(
                    functools.partial(self.store.apply, self.origin, group, after_seq=last)
                )
                last = applied.last_seq
                progressed = True
                self._breaks = 0
                self._applied(applied)
            raise FeedBroken(pending.reason, progressed=progressed or pending.progressed)
        except FeedBroken:
            raise
        except grpc.aio.AioRpcError as error:
            raise FeedBroken(f"{error.code().name}: {error.details()}", progressed=progressed) from error
        except CursorMoved as moved:
            raise FeedBroken(str(moved), progressed=progressed) from moved
        except SQLAlchemyError as error:
            raise FeedBroken(f"cannot write the replica: {error}", progressed=False) from error
        except Exception as error:  # a follower never stops on its own: logged, retried
            log.exception("replica_follower_error", origin=self.origin.value)
            raise FeedBroken(f"unexpected error: {error!r}", progressed=False) from error
        finally:
            if reader is not None:
                await _stop(reader, queue)
            if call is not None:
                call.cancel()

    def _applied(self, applied: Applied) -> None:
        self.state.applied += applied.applied
        REPLICA_CHANGES.labels(*self._labels).inc(applied.applied)
        REPLICA_LAG.labels(*self._labels).set(max(0, applied.head_seq - applied.last_seq))
        if applied.synced_at is not None:
            REPLICA_SYNCED.labels(*self._labels).set(applied.synced_at.timestamp())

    async def _read(
        self,
        call: grpc.aio.UnaryStreamCall[pb.WatchChangesRequest, pb.ChangeBatch],
        queue: asyncio.Queue[Received | FeedBroken],
    ) -> None:
        heard = False
        stream = aiter(call)
        try:
            while True:
                try:
                    batch = await asyncio.wait_for(anext(stream), self.idle_timeout)
                except TimeoutError:
                    await queue.put(FeedBroken(f"nothing from the peer for {self.idle_timeout:g} s", progressed=heard))
                    return
                except StopAsyncIteration:
                    await queue.put(FeedBroken("the peer ended the feed", progressed=heard))
                    return
                if batch.region != self.origin.value:
                    await queue.put(
                        FeedBroken(
                            f"the feed at {self.address} is {batch.region}'s, not {self.origin.value}'s",
                            progressed=heard,
                        )
                    )
                    return
                heard = True
                await queue.put(Received(batch, datetime.now(UTC)))
        except grpc.aio.AioRpcError as error:
            await queue.put(FeedBroken(f"{error.code().name}: {error.details()}", progressed=heard))


async def _stop(reader: asyncio.Task[None], queue: asyncio.Queue[Received | FeedBroken] | None) -> None:
    """Stop a feed reader for good. A cancellation that arrives as ``wait_for`` finishes
    can be lost (Python before 3.12): the reader would go on and block on the full queue
    that no one drains any more. So it is cancelled until it is done, and whatever it
    waits to put is taken."""
    while not reader.done():
        reader.cancel()
        if queue is not None:
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    queue.get_nowait()
        await asyncio.wait({reader}, timeout=0.1)
    if not reader.cancelled():
        with contextlib.suppress(Exception):
            reader.result()
