"""Many subject queries to one node in one call, when they would otherwise queue.

Every gRPC call costs a node (and the caller) a fixed share of CPU, whatever it carries;
under load that share is most of a report's budget. :class:`QueryCoalescer` sends a query
at once while fewer than ``max_in_flight`` calls to the node are out, so a lightly loaded
gateway adds no wait; while they are out, new queries queue and leave together in the
next call (``QuerySubjects``) as soon as one returns: natural batching, as a group commit
does it. A node far away (every one of its recent calls took ``patience`` or more, so
even its quickest answers are slow) would make the queue wait its whole round trip: to
such a node the queued queries leave at once in another call, up to ``max_slow_calls``
calls out. A near node that is merely busy still has quick calls among its recent
ones, and keeps one call at a time: more calls would only cost it more.

What each caller sees is what its own ``QuerySubject`` call would have given:

- a batch's gRPC deadline is its members' earliest; a query whose own deadline passed
  while it queued fails with DEADLINE_EXCEEDED without being sent;
- a caller that stops waiting (cancelled) leaves the queue, or, once sent, has its
  answer dropped; the others' answers are not affected;
- an item the node refused fails with that item's status; a call that failed as a
  whole (UNAVAILABLE, DEADLINE_EXCEEDED, …) fails every member with the error a single
  call would have raised, each member its own;
- a batch of one is sent as a plain ``QuerySubject`` call;
- a node that does not know ``QuerySubjects`` (UNIMPLEMENTED: an earlier version) gets
  single calls from then on, tried again with batches after ``probe_after`` seconds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import structlog
from prometheus_client import Counter, Histogram

from credit.errors import CreditError
from protos.credit.v1 import node_pb2 as pb

log = structlog.get_logger("jjj.federation")

QUERY_CALLS = Counter(
    "jjj_gateway_node_query_calls_total",
    "gRPC calls carrying subject queries to regional nodes, by method",
    ["region", "method"],
)
QUERY_ITEMS = Histogram(
    "jjj_gateway_node_query_items",
    "Subject queries carried per call to a regional node",
    ["region"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
)

Single = Callable[[pb.QuerySubjectRequest, str, float], Awaitable[pb.SubjectResult]]
Batch = Callable[[pb.QuerySubjectsRequest, float], Awaitable[pb.QuerySubjectsResponse]]


@dataclass(eq=False)
class _Waiter:
    item: pb.SubjectQuery
    expires: float  # loop time
    future: asyncio.Future[pb.SubjectResult]
    sent: bool = False  # off the queue: taken into a call, or expired there


class QueryCoalescer:
    """Subject queries to one node, coalesced into ``QuerySubjects`` calls under load.

    ``single`` and ``batch`` make the two calls and raise :class:`grpc.aio.AioRpcError`;
    ``failed`` turns such an error into what the caller raises (a new error each time it
    is called), ``item_failed`` likewise an item's serialized ``google.rpc.Status``, and
    ``expired`` makes the error of a query whose deadline passed before it was sent, and
    ``wrong`` that of an answer that does not fit the request. With ``coalesce`` off,
    each query is its own call, sent at once however many are in flight. A node whose
    last 64 calls all took ``patience`` seconds or more is far: to it, up to
    ``max_slow_calls`` calls go out rather than ``max_in_flight``.
    """

    def __init__(
        self,
        region: str,
        *,
        single: Single,
        batch: Batch,
        failed: Callable[[grpc.aio.AioRpcError], CreditError],
        item_failed: Callable[[bytes], CreditError],
        expired: Callable[[], CreditError],
        wrong: Callable[[str], CreditError],
        max_in_flight: int = 1,
        max_batch: int = 32,
        probe_after: float = 300.0,
        coalesce: bool = True,
        patience: float = 0.02,
        max_slow_calls: int = 4,
    ) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self.region = region
        self.max_in_flight = max_in_flight
        self.patience = patience
        self.max_slow_calls = max(max_slow_calls, max_in_flight)
        # How long the recent calls took: the shortest is the node's round trip with
        # little or no queueing, which tells a far node from a busy near one.
        self._took: deque[float] = deque(maxlen=64)
        self._far = False
        self.max_batch = max_batch
        self.probe_after = probe_after
        self._single = single
        self._batch = batch
        self._failed = failed
        self._item_failed = item_failed
        self._expired = expired
        self._wrong = wrong
        self._queue: deque[_Waiter] = deque()
        self._in_flight = 0
        self._coalesce = coalesce  # False: every query its own call, at once, as many as asked
        self._unbatched_at: float | None = None  # when the node said UNIMPLEMENTED
        self._sending: set[asyncio.Future[None]] = set()

    def _batching(self, now: float) -> bool:
        if not self._coalesce:
            return False
        if self._unbatched_at is None:
            return True
        if now - self._unbatched_at >= self.probe_after:
            self._unbatched_at = None  # the node may have been upgraded: try again
            return True
        return False

    async def ask(self, request: pb.QuerySubjectRequest, assertion: str, timeout: float) -> pb.SubjectResult:
        """The node's answer for one query, within ``timeout`` seconds.

        Raises:
            CreditError: what ``failed``, ``item_failed`` or ``expired`` made of the
                failure, as the query's own call would have failed.
        """
        loop = asyncio.get_running_loop()
        if not self._batching(loop.time()):
            return await self._call_single(request, assertion, timeout)
        expires = loop.time() + timeout
        waiter = _Waiter(pb.SubjectQuery(query=request, assertion=assertion), expires, loop.create_future())
        self._queue.append(waiter)
        self._pump()
        if waiter.sent:
            return await waiter.future
        # Still queued: fail at the query's own deadline if no call has taken it by then.
        timer = loop.call_at(expires, self._expire, waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if not waiter.sent:
                self._queue.remove(waiter)
            raise
        finally:
            timer.cancel()

    def _expire(self, waiter: _Waiter) -> None:
        if not waiter.sent and not waiter.future.done():
            self._queue.remove(waiter)
            waiter.sent = True
            waiter.future.set_exception(self._expired())

    async def _call_single(self, request: pb.QuerySubjectRequest, assertion: str, timeout: float) -> pb.SubjectResult:
        QUERY_CALLS.labels(self.region, "QuerySubject").inc()
        QUERY_ITEMS.labels(self.region).observe(1)
        try:
            return await self._single(request, assertion, timeout)
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error

    def _may_send(self) -> bool:
        # Below the limit, or a node whose every recent call took ``patience`` or more
        # (far away, or slow even when not busy): waiting for its call out would add a
        # whole round trip to the queue's, and more calls out cost it little.
        if self._in_flight < self.max_in_flight:
            return True
        return self._far and self._in_flight < self.max_slow_calls

    def _took_call(self, seconds: float) -> None:
        self._took.append(seconds)
        self._far = min(self._took) >= self.patience

    def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and self._may_send():
            now = loop.time()
            members: list[_Waiter] = []
            while self._queue and len(members) < self.max_batch:
                waiter = self._queue.popleft()
                waiter.sent = True
                if waiter.future.done():  # its caller stopped waiting
                    continue
                if waiter.expires <= now:
                    waiter.future.set_exception(self._expired())
                    continue
                members.append(waiter)
            if not members:
                continue
            self._in_flight += 1
            sending = asyncio.ensure_future(self._send(members))
            self._sending.add(sending)
            sending.add_done_callback(self._sending.discard)

    async def _send(self, members: list[_Waiter]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            if len(members) == 1 or not self._batching(loop.time()):
                await asyncio.gather(*(self._send_single(member) for member in members))
            else:
                await self._send_batch(members)
        except asyncio.CancelledError:  # the gateway is stopping: so are its callers
            for member in members:
                member.future.cancel()
            raise
        except Exception as exc:  # a bug: never leave a caller waiting on it
            log.exception("query_batch_failed", region=self.region)
            for member in members:
                if not member.future.done():
                    member.future.set_exception(exc)
        finally:
            self._took_call(loop.time() - started)
            self._in_flight -= 1
            self._pump()

    async def _send_single(self, member: _Waiter) -> None:
        timeout = max(0.001, member.expires - asyncio.get_running_loop().time())
        try:
            result = await self._call_single(member.item.query, member.item.assertion, timeout)
        except CreditError as error:
            if not member.future.done():
                member.future.set_exception(error)
            return
        if not member.future.done():
            member.future.set_result(result)

    async def _send_batch(self, members: list[_Waiter]) -> None:
        loop = asyncio.get_running_loop()
        timeout = max(0.001, min(member.expires for member in members) - loop.time())
        request = pb.QuerySubjectsRequest(queries=[member.item for member in members])
        QUERY_CALLS.labels(self.region, "QuerySubjects").inc()
        QUERY_ITEMS.labels(self.region).observe(len(members))
        try:
            reply = await self._batch(request, timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                log.warning("node_without_query_batches", region=self.region, retry_after=self.probe_after)
                self._unbatched_at = loop.time()
                await asyncio.gather(*(self._send_single(member) for member in members))
                return
            for member in members:
                if not member.future.done():
                    member.future.set_exception(self._failed(error))
            return
        if len(reply.outcomes) != len(members):
            for member in members:
                if not member.future.done():
                    member.future.set_exception(
                        self._wrong(f"the node answered {len(reply.outcomes)} outcomes for {len(members)} queries")
                    )
            return
        for member, outcome in zip(members, reply.outcomes, strict=True):
            if member.future.done():
                continue
            if outcome.HasField("result"):
                member.future.set_result(outcome.result)
            else:
                member.future.set_exception(self._item_failed(outcome.error))
