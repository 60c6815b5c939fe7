"""infra.leases on SQLite and PostgreSQL: one holder at a time, taken over once expired,
given back when the work ends, and work cancelled when its lease is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update

from gateway.registry import Registry
from infra.db import sync_engine
from infra.leases import LeaseLost, Leases, leases


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    Registry.open(db_url).close()  # the gateway's migrations create the table
    engine = sync_engine(db_url)
    yield engine
    engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_one_holder_at_a_time_until_the_lease_expires(engine: Engine) -> None:
    clock = Clock()
    first = Leases(engine, holder="host-a/1/aa", clock=clock)
    second = Leases(engine, holder="host-b/2/bb", clock=clock)
    assert first.take_now("batch:b_1", 30)
    assert not second.take_now("batch:b_1", 30)
    assert first.take_now("batch:b_1", 30)  # renewed
    assert second.take_now("batch:b_2", 30)  # another name is another lease
    clock.now += timedelta(seconds=29)
    assert not second.take_now("batch:b_1", 30)
    clock.now += timedelta(seconds=1)  # expired: the first holder stopped renewing
    assert second.take_now("batch:b_1", 30)
    assert not first.take_now("batch:b_1", 30)
    held = first.holders("batch:")
    assert {name: holder for name, (holder, _) in held.items()} == {
        "batch:b_1": "host-b/2/bb",
        "batch:b_2": "host-b/2/bb",
    }
    assert held["batch:b_1"][1] == clock.now + timedelta(seconds=30)

    first.release_now("batch:b_1")  # not the holder: nothing changes
    assert not first.take_now("batch:b_1", 30)
    second.release_now("batch:b_1")  # given back: free at once
    assert first.take_now("batch:b_1", 30)


def test_a_lease_prefix_is_matched_literally(engine: Engine) -> None:
    Leases(engine, holder="a").take_now("feed:beijing", 30)
    Leases(engine, holder="a").take_now("feed_x", 30)
    assert set(Leases(engine, holder="b").holders("feed:")) == {"feed:beijing"}
    assert set(Leases(engine, holder="b").holders("feed_")) == {"feed_x"}


async def test_parallel_takers_get_one_holder(engine: Engine) -> None:
    takers = [Leases(engine, holder=f"p{i}") for i in range(6)]
    taken = await asyncio.gather(*(taker.take("feed:tianjin", 30) for taker in takers))
    assert sum(taken) == 1


async def test_hold_runs_the_work_and_gives_the_lease_back(engine: Engine) -> None:
    mine, other = Leases(engine, holder="mine"), Leases(engine, holder="other")
    ran = asyncio.Event()

    async def work() -> None:
        assert not await other.take("batch:b_9", 30)  # held while the work runs
        ran.set()

    assert await mine.hold("batch:b_9", work, seconds=30)
    assert ran.is_set()
    assert await other.take("batch:b_9", 30)  # given back, not left to expire
    assert not await mine.hold("batch:b_9", work, seconds=30)  # held elsewhere: not started


async def test_hold_renews_a_lease_longer_than_its_length(engine: Engine) -> None:
    takes = 0
    renewed = asyncio.Event()

    async def counting(work, *args):  # type: ignore[no-untyped-def]
        nonlocal takes
        result = await asyncio.to_thread(work, *args)
        takes += 1
        if takes > 3:
            renewed.set()
        return result

    mine, other = Leases(engine, holder="mine", run=counting), Leases(engine, holder="other")

    async def work() -> None:
        await renewed.wait()  # taken, then renewed three times: longer than the lease
        assert not await other.take("feed:hebei", 1)

    assert await mine.hold("feed:hebei", work, seconds=1)


async def test_work_is_cancelled_when_another_process_takes_the_lease_over(engine: Engine) -> None:
    mine = Leases(engine, holder="mine")
    cancelled = asyncio.Event()

    async def work() -> None:
        with engine.begin() as conn:  # as if this process had stalled past the lease's end
            conn.execute(update(leases).values(holder="other"))
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(LeaseLost, match="another process took it over"):
        await mine.hold("batch:b_7", work, seconds=0.3)
    assert cancelled.is_set()
    assert Leases(engine, holder="x").holders()["batch:b_7"][0] == "other"  # not released: it is not ours


async def test_work_stops_when_the_lease_cannot_be_renewed(engine: Engine) -> None:
    calls = 0

    async def failing_after_first(work, *args):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OSError("database unreachable")
        return await asyncio.to_thread(work, *args)

    mine = Leases(engine, holder="mine", run=failing_after_first)
    with pytest.raises(LeaseLost, match="could not be renewed"):
        await mine.hold("feed:beijing", lambda: asyncio.sleep(30), seconds=0.3)


async def test_keep_takes_over_when_the_holder_stops(engine: Engine) -> None:
    first, second = Leases(engine, holder="first"), Leases(engine, holder="second")
    following: list[str] = []

    def follower(name: str) -> Callable[[], Awaitable[None]]:
        async def follow() -> None:
            following.append(name)
            await asyncio.sleep(60)

        return follow

    one = asyncio.create_task(first.keep("feed:tianjin", follower("first"), seconds=3))
    while not following:
        await asyncio.sleep(0.05)
    two = asyncio.create_task(second.keep("feed:tianjin", follower("second"), seconds=3))
    await asyncio.sleep(1.5)  # the second tries meanwhile
    assert following == ["first"]  # one follower while both processes run
    one.cancel()  # the first process stops: its lease is given back
    await asyncio.gather(one, return_exceptions=True)
    for _ in range(100):
        if following == ["first", "second"]:
            break
        await asyncio.sleep(0.05)
    assert following == ["first", "second"]  # within a retry (a second), not a lease
    two.cancel()
    await asyncio.gather(two, return_exceptions=True)
    assert Leases(engine, holder="x").holders() == {}
