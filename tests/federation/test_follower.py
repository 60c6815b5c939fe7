"""The change-feed follower on its own: a scripted feed and a sink that records.

No network and no database. The backoff's sleep is recorded, not slept, and its random
draw is pinned to the top of its range, so what is asserted is which waits were asked
for, never how long anything took.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from federation.follower import FeedBroken, Follower

GUARD = 10.0  # seconds: only a hang guard, never a timing assertion


@dataclass(frozen=True)
class Item:
    seq: int
    region: str = "tianjin"
    size: int = 1


class Refused(Exception):
    """What the scripted transport raises: an expected break."""


@dataclass
class Session:
    """One opening of the feed: what it yields, then how it ends."""

    items: list[Item] = field(default_factory=list)
    then: str = "hang"  # "hang", "raise" (Refused), "end", or "boom" (an unexpected error)


class Sink:
    """A :class:`~federation.follower.FeedSink` of scripted sessions that records what it is asked."""

    def __init__(self, *sessions: Session, cursor: int = 0) -> None:
        self.sessions = list(sessions)
        self.cursor = cursor
        self.opened: list[int] = []
        self.groups: list[list[int]] = []
        self.breaks: list[FeedBroken] = []
        self.closed = 0
        self.yielded = 0
        self.exhausted = asyncio.Event()  # set when the script has run out and the feed hangs
        self.gate: asyncio.Event | None = None  # when set, apply waits for it
        self.prepare_error: BaseException | None = None
        self.apply_error: Exception | None = None

    async def prepare(self) -> int:
        if self.prepare_error is not None:
            raise self.prepare_error
        return self.cursor

    async def open(self, cursor: int) -> AsyncIterator[Item]:
        self.opened.append(cursor)
        session = self.sessions.pop(0) if self.sessions else Session()
        try:
            for item in session.items:
                self.yielded += 1
                yield item
            if session.then == "raise":
                raise Refused("UNAVAILABLE: connection refused")
            if session.then == "boom":
                raise RuntimeError("a bug in the transport")
            if session.then == "hang":
                if not self.sessions:
                    self.exhausted.set()
                await asyncio.Event().wait()
        finally:
            self.closed += 1

    def size(self, item: Item) -> int:
        return item.size

    def foreign(self, item: Item) -> str | None:
        return None if item.region == "tianjin" else f"the feed is {item.region}'s, not tianjin's"

    async def apply(self, group: Sequence[Item], cursor: int) -> int:
        if self.gate is not None:
            await self.gate.wait()
        if self.apply_error is not None:
            raise self.apply_error
        assert all(item.seq > cursor for item in group)
        self.groups.append([item.seq for item in group])
        self.cursor = group[-1].seq
        return self.cursor

    def failure(self, error: Exception, *, progressed: bool) -> FeedBroken | None:
        if isinstance(error, Refused):
            return FeedBroken(str(error), progressed=progressed)
        return None

    def broken(self, broken: FeedBroken) -> None:
        self.breaks.append(broken)


class Sleeps:
    """Records the backoff's waits instead of sleeping them."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def top_of_the_jitter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Full jitter draws uniformly below the exponential bound: take the bound itself."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    yield


def follower(sink: Sink, sleeps: Sleeps, **options: Any) -> Follower[Item]:
    settings: dict[str, Any] = {
        "log": structlog.get_logger("test").bind(origin="tianjin"),
        "event": "test",
        "group_size": 100,
        "queue_size": 100,
        "idle_timeout": None,
        "backoff": 1.0,
        "max_backoff": 8.0,
        "sleep": sleeps,
    }
    settings.update(options)
    return Follower(sink, **settings)


async def follow_until(running: Follower[Item], until: Callable[[], bool]) -> None:
    """Run the follower until ``until()`` holds, then cancel it: it must stop cleanly,
    leaving no reader behind."""
    before = asyncio.all_tasks()
    task = asyncio.create_task(running.run())
    try:
        async with asyncio.timeout(GUARD):
            while not until():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, GUARD)
    assert asyncio.all_tasks() <= before, "a reader was left behind"


async def test_a_feed_that_breaks_before_progress_is_retried_with_backoff() -> None:
    sink = Sink(Session(then="raise"), Session(then="raise"), Session(then="raise"), Session([Item(1)]))
    sleeps = Sleeps()
    await follow_until(follower(sink, sleeps), lambda: sink.groups == [[1]])
    assert sleeps.asked == [1.0, 2.0, 4.0]  # full jitter under 1, 2, 4 × the base
    assert [b.reason for b in sink.breaks] == ["UNAVAILABLE: connection refused"] * 3
    assert not any(b.progressed for b in sink.breaks)
    assert sink.opened == [0, 0, 0, 0]


async def test_the_backoff_stops_growing_at_its_limit() -> None:
    sink = Sink(*[Session(then="end") for _ in range(6)])
    sleeps = Sleeps()
    await follow_until(follower(sink, sleeps), sink.exhausted.is_set)
    assert sleeps.asked == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert {b.reason for b in sink.breaks} == {"the peer ended the feed"}


async def test_a_feed_that_made_progress_reconnects_at_once_with_the_backoff_afresh() -> None:
    sink = Sink(
        Session(then="raise"),
        Session(then="raise"),
        Session([Item(1), Item(2)], then="raise"),  # progress, then a break
        Session(then="raise"),
        Session([Item(3)]),
    )
    sleeps = Sleeps()
    await follow_until(follower(sink, sleeps), lambda: sink.cursor == 3)
    # 1 and 2 before the progress; none after it; then the backoff starts again at 1.
    assert sleeps.asked == [1.0, 2.0, 1.0]
    assert [b.progressed for b in sink.breaks] == [False, False, True, False]
    assert sink.opened == [0, 0, 0, 2, 2]  # each session from the cursor written so far
    assert [seq for group in sink.groups for seq in group] == [1, 2, 3]


async def test_an_idle_feed_is_broken_after_the_idle_timeout() -> None:
    sink = Sink(Session(), Session([Item(1)]), Session())
    sleeps = Sleeps()
    running = follower(sink, sleeps, idle_timeout=0.05)
    await follow_until(running, lambda: len(sink.breaks) >= 2 and len(sink.opened) >= 3)
    silent, heard = sink.breaks[:2]
    assert silent.reason == "nothing from the peer for 0.05 s" and not silent.progressed
    assert heard.reason == "nothing from the peer for 0.05 s" and heard.progressed
    assert sleeps.asked[:1] == [1.0]  # only the break before any progress waited
    assert sink.opened[:3] == [0, 0, 1]


async def test_a_quiet_feed_without_heartbeats_is_reopened_at_once_and_quietly() -> None:
    sink = Sink(Session(), Session(), Session([Item(1)]), Session())
    sleeps = Sleeps()
    with capture_logs() as logs:
        running = follower(sink, sleeps, idle_timeout=0.05, heartbeats=False)
        await follow_until(running, lambda: len(sink.opened) >= 4)
    assert sink.breaks == [] and sleeps.asked == []
    assert sink.opened[:4] == [0, 0, 0, 1] and sink.groups == [[1]]
    assert not [entry for entry in logs if entry["log_level"] in ("warning", "error")]
    following = [entry["log_level"] for entry in logs if entry["event"] == "test_following"]
    assert following[:4] == ["info", "debug", "debug", "debug"]  # only the first opening is news


async def test_the_reader_is_stopped_cleanly_while_blocked_on_a_full_queue() -> None:
    sink = Sink(Session([Item(seq) for seq in range(1, 1001)]))
    sink.gate = asyncio.Event()  # the first group is never written: the queue fills
    sleeps = Sleeps()
    running = follower(sink, sleeps, queue_size=3)
    seen: list[int] = []

    def blocked() -> bool:
        # The reader has stopped reading: the applier holds a group, the queue is full,
        # and the reader waits to put the item it holds.
        seen.append(sink.yielded)
        return len(seen) > 5 and seen[-1] > 3 and len(set(seen[-5:])) == 1

    await follow_until(running, blocked)
    assert sink.yielded == seen[-1] < 1000  # it read no further once stopped
    assert sink.closed == 1  # the feed was closed, not left to the collector
    assert sink.groups == [] and sink.breaks == [] and sleeps.asked == []


async def test_an_item_of_another_region_breaks_the_session() -> None:
    sink = Sink(
        Session([Item(1, region="hebei")]),
        Session([Item(1), Item(2), Item(3, region="hebei"), Item(4)]),
        Session([Item(3)]),
    )
    sleeps = Sleeps()
    await follow_until(follower(sink, sleeps), lambda: sink.cursor == 3)
    assert [(b.reason, b.progressed) for b in sink.breaks] == [
        ("the feed is hebei's, not tianjin's", False),
        ("the feed is hebei's, not tianjin's", True),
    ]
    assert sleeps.asked == [1.0]  # the second had applied what came before the stranger
    assert [seq for group in sink.groups for seq in group] == [1, 2, 3]  # never the stranger, nor after it
    assert sink.opened == [0, 0, 2]


async def test_groups_hold_what_gathered_up_to_the_group_size() -> None:
    sizes = {5: 2}
    sink = Sink(Session([Item(seq, size=sizes.get(seq, 1)) for seq in range(1, 12)]))
    gate = sink.gate = asyncio.Event()
    sleeps = Sleeps()

    def all_read_then_written() -> bool:
        if sink.exhausted.is_set():  # all eleven are in the queue or the applier's hands
            gate.set()
        return sink.cursor == 11

    await follow_until(follower(sink, sleeps, group_size=4, queue_size=20), all_read_then_written)
    first, *rest = sink.groups
    assert [seq for group in sink.groups for seq in group] == list(range(1, 12))
    # Everything after the first group had gathered while it waited: groups filled up to
    # the size (the last item may take one past it), then what was left.
    expected: list[list[int]] = []
    group: list[int] = []
    size = 0
    for seq in range(first[-1] + 1, 12):
        group.append(seq)
        size += sizes.get(seq, 1)
        if size >= 4:
            expected.append(group)
            group, size = [], 0
    if group:
        expected.append(group)
    assert rest == expected


async def test_an_unexpected_error_is_logged_and_retried_with_backoff() -> None:
    sink = Sink(Session(then="boom"), Session([Item(1)], then="raise"), Session())
    sink.apply_error = ValueError("cannot write")
    sleeps = Sleeps()
    with capture_logs() as logs:
        await follow_until(follower(sink, sleeps), lambda: len(sink.breaks) >= 2)
    # In the reader: the transport's bug; in the applier: the sink's. Neither counts as progress.
    assert [b.reason for b in sink.breaks[:2]] == [
        "unexpected error: RuntimeError('a bug in the transport')",
        "unexpected error: ValueError('cannot write')",
    ]
    assert not any(b.progressed for b in sink.breaks[:2])
    assert sleeps.asked[:2] == [1.0, 2.0]
    errors = [entry for entry in logs if entry["event"] == "test_follower_error"]
    assert len(errors) >= 2 and all(entry["log_level"] == "error" for entry in errors)


async def test_a_break_the_sink_raises_is_kept_as_it_is() -> None:
    sink = Sink(Session([Item(1)]))
    sink.prepare_error = FeedBroken("the node at n:1 is hebei, not tianjin", progressed=False)
    sleeps = Sleeps()
    await follow_until(follower(sink, sleeps), lambda: len(sink.breaks) >= 3)
    assert {b.reason for b in sink.breaks} == {"the node at n:1 is hebei, not tianjin"}
    assert sleeps.asked[:3] == [1.0, 2.0, 4.0] and sink.opened == []


async def test_breaks_are_quiet_until_they_keep_failing() -> None:
    sink = Sink(*[Session(then="raise") for _ in range(4)], Session([Item(1)], then="raise"), Session())
    sleeps = Sleeps()
    with capture_logs() as logs:
        await follow_until(follower(sink, sleeps, loud_after=2), lambda: len(sink.opened) == 6)
    levels = [entry["log_level"] for entry in logs if entry["event"] == "test_feed_broken"]
    # Two routine breaks, two loud ones (it kept failing), one loud (a working feed broke).
    assert levels == ["info", "info", "warning", "warning", "warning"]
    assert all(entry["origin"] == "tianjin" for entry in logs if entry["event"] == "test_feed_broken")
    assert [e["after_seq"] for e in logs if e["event"] == "test_following"] == [0, 0, 0, 0, 0, 1]
