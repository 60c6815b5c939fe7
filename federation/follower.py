"""Following a node's change feed: one loop for every follower.

A follower reads a feed from a stored cursor and writes what it reads, group by group,
each group together with the cursor it moves to, so a restart neither loses nor repeats
work. Two follow the nodes' feeds today: a node's replica of a peer region
(:mod:`nodes.replication`, reading raw ``ChangeBatch`` messages) and the gateway's marking
of superseded reports (:mod:`gateway.reports.supersede`, reading ``ChangeNotice`` values). What
they share is here, in :class:`Follower`; what differs is the caller's :class:`FeedSink`.

The follower owns:

- **the session loop** — prepare (the sink reads its cursor, checks the peer), open the
  feed from the cursor, read, write, until the feed breaks;
- **reading ahead** — a reader task takes items off the feed into a bounded queue while
  the previous group is written; the next group is whatever has gathered, up to
  ``group_size`` (in the sink's own measure, :meth:`FeedSink.size`);
- **the idle timeout** — a feed that sends nothing within ``idle_timeout`` is broken. A
  feed that promises heartbeats (the node's ``WatchChangeBatches`` sends an empty batch
  every few seconds when idle) is then presumed dead and retried like any break; one
  that does not (``heartbeats=False``) may just be quiet, so it is reopened from the
  cursor at once and without complaint;
- **:class:`FeedBroken`** — every way a session ends, with ``progressed`` when something
  was written (or heard) first;
- **backoff** — a break before any progress is retried with full-jitter exponential
  backoff (tenacity), growing from ``backoff`` to ``max_backoff``; a break after progress
  reconnects at once with the backoff started afresh;
- **stopping** — the reader is stopped for good, even when blocked on a full queue, and
  the feed is closed, before a session ends (also when the follower is cancelled);
- **logging** — ``<event>_feed_broken`` at info while a peer is merely not up yet (they
  all start together), at warning once it has failed more than ``loud_after`` times in a
  row or when a session that made progress broke; ``<event>_following`` at info when a
  session opens (at debug when it only reopens a quiet feed), with the logger's context.

The sink says how to do each part that is the caller's: :meth:`FeedSink.prepare`,
:meth:`FeedSink.open`, :meth:`FeedSink.apply`, :meth:`FeedSink.size`,
:meth:`FeedSink.foreign` (an item of another region breaks the session),
:meth:`FeedSink.failure` (which errors are an expected break, and what they are called)
and :meth:`FeedSink.broken` (metrics, state).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from structlog.typing import FilteringBoundLogger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

Item = TypeVar("Item")


class FeedBroken(Exception):
    """The feed stopped; ``progressed`` when something was applied (or heard) first."""

    def __init__(self, reason: str, *, progressed: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.progressed = progressed


class FeedSink(Protocol[Item]):
    """The caller's side of a followed feed: where it starts, what it reads, where it writes.

    Any method may raise :class:`FeedBroken` to end the session with that reason and
    ``progressed`` as given; any other exception is put to :meth:`failure`.
    """

    async def prepare(self) -> int:
        """Make ready for a session (e.g. check and store the peer's catalogue) and return
        the stored cursor: the feed is opened after it.

        Raises:
            FeedBroken: the session cannot start (e.g. the peer is of another region).
        """
        ...

    def open(self, cursor: int) -> AsyncIterator[Item]:
        """The feed after ``cursor``, followed until it breaks. An async generator is
        closed (``aclose``) when the session ends, so its ``finally`` may cancel a call.

        Raises:
            Exception: (when iterated) whatever the transport raises; see :meth:`failure`.
        """
        ...

    def size(self, item: Item) -> int:
        """How much of a group ``item`` takes (e.g. the changes in a batch; 0 for a heartbeat)."""
        ...

    def foreign(self, item: Item) -> str | None:
        """Why ``item`` is not of the expected region (the session breaks), or None."""
        ...

    async def apply(self, group: Sequence[Item], cursor: int) -> int:
        """Write ``group`` (read in this order after ``cursor``) and return the new cursor.

        Raises:
            FeedBroken: the group cannot be written, and what that means for the backoff.
        """
        ...

    def failure(self, error: Exception, *, progressed: bool) -> FeedBroken | None:
        """What an error raised while preparing, reading or writing means: the break to
        report (usually with ``progressed`` as given), or None for an error nobody
        expected (logged with its traceback and retried with backoff)."""
        ...

    def broken(self, broken: FeedBroken) -> None:
        """Note a break (state, metrics); called once per break, before any wait."""
        ...


class _Quiet:
    """The reader's word that a feed without heartbeats said nothing for a while."""


_QUIET = _Quiet()


class Follower(Generic[Item]):
    """Follows one feed into ``sink`` until cancelled (see the module's description).

    ``group_size`` bounds a group written at once (in :meth:`FeedSink.size` units; the
    last item read may take a group past it), ``queue_size`` the items read ahead;
    ``idle_timeout`` (seconds, None: never) how long the feed may say nothing;
    ``heartbeats`` whether the feed promises to say something within it while healthy.
    ``sleep`` waits out the backoff (replaceable in tests).

    Raises:
        ValueError: ``group_size`` or ``queue_size`` below 1.
    """

    def __init__(
        self,
        sink: FeedSink[Item],
        *,
        log: FilteringBoundLogger,
        event: str,
        group_size: int,
        queue_size: int,
        idle_timeout: float | None,
        heartbeats: bool = True,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        loud_after: int = 10,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if group_size < 1 or queue_size < 1:
            raise ValueError("a follower needs room for at least one item")
        self.sink = sink
        self.log = log
        self.event = event
        self.group_size = group_size
        self.queue_size = queue_size
        self.idle_timeout = idle_timeout
        self.heartbeats = heartbeats
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.loud_after = loud_after
        self._sleep = sleep
        self.breaks = 0  # breaks since the last progress
        self._reopened = False  # the last session ended quiet: this one is routine

    async def run(self) -> None:
        """Follow the feed until cancelled: every break is logged and retried.

        Raises:
            asyncio.CancelledError: when cancelled (after the session has stopped its reader
                and closed its feed); nothing else escapes.
        """
        while True:
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(lambda e: isinstance(e, FeedBroken) and not e.progressed),
                    wait=wait_random_exponential(multiplier=self.backoff, max=self.max_backoff),
                    before_sleep=self._before_sleep,
                    sleep=self._sleep,
                    reraise=True,
                ):
                    with attempt:
                        await self.session()
            except FeedBroken as broken:
                # It had made progress: reconnect at once, with the backoff started afresh.
                self._broken(broken)

    def _broken(self, broken: FeedBroken) -> None:
        self.breaks += 1
        self.sink.broken(broken)
        # A peer that is not up yet (all of them start together) is routine; say so
        # loudly only when it keeps failing, or when a feed that worked broke.
        loud = self.breaks > self.loud_after or broken.progressed
        report = self.log.warning if loud else self.log.info
        report(f"{self.event}_feed_broken", reason=broken.reason)

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, FeedBroken):
            self._broken(error)

    def _failed(self, error: Exception, *, progressed: bool) -> FeedBroken:
        """The break ``error`` means (called while it is handled, so its traceback is logged)."""
        known = self.sink.failure(error, progressed=progressed)
        if known is None:  # a follower never stops on its own: logged, retried
            self.log.exception(f"{self.event}_follower_error")
            known = FeedBroken(f"unexpected error: {error!r}", progressed=False)
        return known

    async def session(self) -> None:
        """One session: prepare, open the feed from the cursor, and write what it sends.

        Returns only when a feed without heartbeats was quiet for ``idle_timeout`` (the
        caller reopens it at once).

        Raises:
            FeedBroken: whenever else the session ends; ``progressed`` when a group was
                written or the feed was heard first.
            asyncio.CancelledError: when cancelled.
        """
        progressed = False
        routine, self._reopened = self._reopened, False
        stream: AsyncIterator[Item] | None = None
        reader: asyncio.Task[None] | None = None
        queue: asyncio.Queue[Item | FeedBroken | _Quiet] | None = None
        try:
            cursor = await self.sink.prepare()
            stream = self.sink.open(cursor)
            following = self.log.debug if routine else self.log.info
            following(f"{self.event}_following", after_seq=cursor)
            queue = asyncio.Queue(maxsize=self.queue_size)
            reader = asyncio.create_task(self._read(stream, queue))
            end: FeedBroken | _Quiet | None = None
            while end is None:
                first = await queue.get()
                if isinstance(first, FeedBroken | _Quiet):
                    end = first
                    break
                # Whatever has gathered meanwhile, up to a group, in one write.
                group = [first]
                size = self.sink.size(first)
                while size < self.group_size and not queue.empty():
                    item = queue.get_nowait()
                    if isinstance(item, FeedBroken | _Quiet):
                        end = item
                        break
                    group.append(item)
                    size += self.sink.size(item)
                cursor = await self.sink.apply(group, cursor)
                progressed = True
                self.breaks = 0
            if isinstance(end, FeedBroken):
                raise FeedBroken(end.reason, progressed=progressed or end.progressed)
            self.log.debug(f"{self.event}_feed_quiet", seconds=self.idle_timeout, after_seq=cursor)
            self._reopened = True
        except FeedBroken:
            raise
        except Exception as error:
            raise self._failed(error, progressed=progressed) from error
        finally:
            if reader is not None:
                await _stop(reader)
            if isinstance(stream, AsyncGenerator):
                # Its ``finally`` (e.g. cancelling the call) runs now, not when collected.
                with contextlib.suppress(Exception):
                    await stream.aclose()

    async def _read(self, stream: AsyncIterator[Item], queue: asyncio.Queue[Item | FeedBroken | _Quiet]) -> None:
        heard = False
        try:
            while True:
                try:
                    item = await asyncio.wait_for(anext(stream), self.idle_timeout)
                except TimeoutError:
                    if self.heartbeats:
                        await queue.put(
                            FeedBroken(f"nothing from the peer for {self.idle_timeout:g} s", progressed=heard)
                        )
                    else:
                        await queue.put(_QUIET)
                    return
                except StopAsyncIteration:
                    await queue.put(FeedBroken("the peer ended the feed", progressed=heard))
                    return
                foreign = self.sink.foreign(item)
                if foreign is not None:
                    await queue.put(FeedBroken(foreign, progressed=heard))
                    return
                heard = True
                await queue.put(item)
        except Exception as error:  # noqa: BLE001 - handed to the applier, which would wait for ever
            await queue.put(self._failed(error, progressed=heard))


async def _stop(reader: asyncio.Task[None]) -> None:
    """Stop a feed reader for good. A cancellation that arrives as ``wait_for`` finishes
    can be lost (Python before 3.12): the reader goes on. So it is cancelled until it is
    done. The queue is left full: a reader whose cancellation was lost then blocks on
    it within ``queue_size`` items, where the next cancellation cannot be lost. (Taking
    what it waits to put would let a feed that never makes the reader wait — a backlog
    read from a buffer — refill the queue for longer than the pause between
    cancellations, each of them lost in turn, for ever.)"""
    while not reader.done():
        reader.cancel()
        await asyncio.wait({reader}, timeout=0.1)
    if not reader.cancelled():
        with contextlib.suppress(Exception):
            reader.result()
