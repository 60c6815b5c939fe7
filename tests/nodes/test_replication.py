"""Replicas of peer regions: a node follows its peers' change feeds into its own database.

Real nodes on loopback; the follower's database (and, where it matters, the origin's)
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import grpc
import pytest
from sqlalchemy import text

from credit.cases import CaseKind, Resolution
from credit.catalogue import Scope
from credit.regions import Region
from credit.rules import Procedure, RecordStatus
from infra.db import sync_engine
from nodes.db import migrate
from nodes.replica import CursorMoved, Received, ReplicaStore
from nodes.replication import Subscriber
from nodes.seed import generate
from nodes.server import RunningNode, start_node
from nodes.settings import NodeSettings
from nodes.store import SqlRecordStore
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc
from tests.conftest import StartNode, load, pg_schema
from tests.nodes.builders import ACME, APPLIED, OTHER, penalty

TODAY = date(2025, 6, 16)

RECORDS = [
    penalty(decision_no="R-1"),
    penalty(decision_no="R-2", procedure=Procedure.SIMPLIFIED),
    penalty(OTHER, decision_no="R-3"),
    penalty(decision_no="R-1", status=RecordStatus.REPAIRED),  # a second version of R-1
    penalty(decision_no="R-4", decided_on=date(2024, 5, 1)),
    penalty(
        decision_no="L-1",
        scope=Scope.SERIOUS_DISHONESTY_LIST,
        decided_on=date(2024, 1, 10),
        procedure=Procedure.NOT_APPLICABLE,
    ),
]


@pytest.fixture
def other_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.db'}"
        return
    with pg_schema() as url:
        yield url


def origin_versions(db: str) -> list[tuple[int, str, int, bool]]:
    engine = sync_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT seq, record_id, version, current FROM records ORDER BY seq")).all()
    finally:
        engine.dispose()
    return [(seq, record_id, version, bool(current)) for seq, record_id, version, current in rows]


def replica_versions(db: str, origin: Region) -> list[tuple[int, str, int, bool]]:
    engine = sync_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT origin_seq, record_id, version, current FROM replica_records "
                    "WHERE origin = :origin ORDER BY origin_seq"
                ),
                {"origin": origin.value},
            ).all()
    finally:
        engine.dispose()
    return [(seq, record_id, version, bool(current)) for seq, record_id, version, current in rows]


async def in_step(replica: ReplicaStore, origin: Region, head: int, *, timeout: float = 30.0) -> None:
    """Wait until the replica of ``origin`` has applied up to ``head`` and knows it is in step."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        cursor = (await asyncio.to_thread(replica.read_cursors)).get(origin)
        if cursor is not None and cursor.last_seq >= head and cursor.synced_at is not None:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"replica of {origin.value} not in step with seq {head}: {cursor}")
        await asyncio.sleep(0.05)


def synthetic(subjects: int) -> list[object]:
    return [d for batch in generate(Region.TIANJIN, subjects=subjects, today=TODAY) for d in batch]


def assert_exact_copy(origin_db: str, follower_db: str, origin: Region = Region.TIANJIN) -> None:
    """Every origin version once, in order, with the same current flags; nothing else."""
    assert replica_versions(follower_db, origin) == origin_versions(origin_db)


async def test_a_follower_catches_up_from_zero(db_url: str, other_db_url: str, start_node_at: StartNode) -> None:
    origin = await start_node_at(Region.TIANJIN, other_db_url, RECORDS)
    follower = await start_node_at(Region.BEIJING, db_url, peers={Region.TIANJIN: origin.address})
    versions = origin_versions(other_db_url)
    await in_step(follower.node.replica, Region.TIANJIN, versions[-1][0])
    assert_exact_copy(other_db_url, db_url)
    cursor = (await asyncio.to_thread(follower.node.replica.read_cursors))[Region.TIANJIN]
    assert cursor.last_seq == versions[-1][0] == cursor.origin_head_seq
    assert cursor.changes_applied == len(versions) == len(RECORDS)
    assert cursor.address == origin.address
    assert cursor.catalogue is not None and cursor.catalogue.region is Region.TIANJIN
    catalogue = await origin.stub.GetCatalogue(pb.GetCatalogueRequest())
    assert cursor.origin_data_as_of == catalogue.data_as_of.ToDatetime(tzinfo=UTC)
    assert cursor.applied_at is not None and cursor.synced_at is not None
    # Only the latest version of R-1 is current.
    r1 = [v for v in replica_versions(db_url, Region.TIANJIN) if v[1] == RECORDS[0].record_id]
    assert [(version, current) for _, _, version, current in r1] == [(1, False), (2, True)]


async def test_new_changes_at_the_origin_arrive_while_following(tmp_path: Path, start_node_at: StartNode) -> None:
    origin_db = f"sqlite:///{tmp_path / 'tianjin.db'}"
    follower_db = f"sqlite:///{tmp_path / 'beijing.db'}"
    origin = await start_node_at(Region.TIANJIN, origin_db, RECORDS[:2])
    follower = await start_node_at(Region.BEIJING, follower_db, peers={Region.TIANJIN: origin.address})
    await in_step(follower.node.replica, Region.TIANJIN, origin_versions(origin_db)[-1][0])
    first_sync = (await asyncio.to_thread(follower.node.replica.read_cursors))[Region.TIANJIN].synced_at

    load(origin_db, [*RECORDS[2:], penalty(decision_no="R-2", status=RecordStatus.REVOKED)])
    head = origin_versions(origin_db)[-1][0]
    await in_step(follower.node.replica, Region.TIANJIN, head)
    assert_exact_copy(origin_db, follower_db)
    cursor = (await asyncio.to_thread(follower.node.replica.read_cursors))[Region.TIANJIN]
    assert cursor.synced_at is not None and first_sync is not None and cursor.synced_at > first_sync
    assert cursor.changes_applied == len(origin_versions(origin_db))


async def test_an_idle_feed_keeps_the_replica_in_step(tmp_path: Path, start_node_at: StartNode) -> None:
    # Heartbeats move the as-of time although nothing changes at the origin.
    origin = await start_node_at(
        Region.TIANJIN, f"sqlite:///{tmp_path / 'tianjin.db'}", RECORDS, feed_heartbeat_seconds=0.2
    )
    follower = await start_node_at(
        Region.BEIJING, f"sqlite:///{tmp_path / 'beijing.db'}", peers={Region.TIANJIN: origin.address}
    )
    replica = follower.node.replica
    await in_step(replica, Region.TIANJIN, 1)
    before = (await asyncio.to_thread(replica.read_cursors))[Region.TIANJIN]
    await asyncio.sleep(1.0)
    after = (await asyncio.to_thread(replica.read_cursors))[Region.TIANJIN]
    assert after.last_seq == before.last_seq and after.changes_applied == before.changes_applied
    assert before.synced_at is not None and after.synced_at is not None and after.synced_at > before.synced_at


async def test_a_killed_stream_resumes_from_the_cursor_without_loss_or_repeat(
    db_url: str, tmp_path: Path, start_node_at: StartNode
) -> None:
    origin_db = f"sqlite:///{tmp_path / 'tianjin.db'}"
    origin = await start_node_at(Region.TIANJIN, origin_db, synthetic(6000))
    versions = origin_versions(origin_db)
    assert len(versions) > 2000
    migrate(db_url)
    engine = sync_engine(db_url)
    replica = ReplicaStore(engine, region=Region.BEIJING)
    try:
        # Small batches and groups: many transactions, so that the stream is cut mid-way.
        first = Subscriber(replica, Region.TIANJIN, origin.address, max_batch=50, apply_max=50)
        task = asyncio.create_task(first.run())

        async def some_applied() -> None:
            while first.state.applied < 500:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(some_applied(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await first.close()
        cursor = replica.read_cursors()[Region.TIANJIN]
        assert 500 <= cursor.last_seq < versions[-1][0]
        # What is stored is exactly what the cursor covers: no group half applied.
        stored = replica_versions(db_url, Region.TIANJIN)
        assert stored == [(s, r, v, c) for s, r, v, c in stored if s <= cursor.last_seq]
        assert [(s, r, v) for s, r, v, _ in stored] == [(s, r, v) for s, r, v, _ in versions if s <= cursor.last_seq]
        assert cursor.changes_applied == len(stored)

        # A replayed stream applies nothing twice; a stale applier is refused.
        call = origin.stub.WatchChangeBatches(pb.WatchChangesRequest(after_seq=0, max_batch=100))
        replay = await call.read()
        call.cancel()
        assert isinstance(replay, pb.ChangeBatch)
        again = replica.apply(Region.TIANJIN, [Received(replay, datetime.now(UTC))], after_seq=cursor.last_seq)
        assert (again.applied, again.skipped) == (0, 100)
        with pytest.raises(CursorMoved):
            replica.apply(Region.TIANJIN, [Received(replay, datetime.now(UTC))], after_seq=0)

        second = Subscriber(replica, Region.TIANJIN, origin.address, max_batch=500)
        task = asyncio.create_task(second.run())
        try:
            await in_step(replica, Region.TIANJIN, versions[-1][0])
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await second.close()
        assert_exact_copy(origin_db, db_url)
        final = replica.read_cursors()[Region.TIANJIN]
        assert final.changes_applied == len(versions)
        assert second.state.applied == len(versions) - cursor.changes_applied
    finally:
        replica.close()
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_restarted_origin_and_a_restarted_follower_resume(
    db_url: str, other_db_url: str, tmp_path: Path
) -> None:
    load(other_db_url, synthetic(3000))
    port = free_port()
    started: list[RunningNode] = []

    async def run(region: Region, db: str, **settings: object) -> RunningNode:
        node = await start_node(
            NodeSettings.from_env({}, region=region, db_url=db, allow_unasserted=True, grace_seconds=0.2, **settings)
        )
        started.append(node)
        return node

    try:
        origin = await run(Region.TIANJIN, other_db_url, listen=f"127.0.0.1:{port}")
        follower = await run(Region.BEIJING, db_url, listen="127.0.0.1:0", peers={Region.TIANJIN: origin.address})
        head = origin_versions(other_db_url)[-1][0]
        await in_step(follower.replica, Region.TIANJIN, head)

        # The origin goes down; changes stored meanwhile arrive once it is back.
        await origin.stop(0)
        load(other_db_url, [penalty(decision_no="WHILE-DOWN-1"), penalty(OTHER, decision_no="WHILE-DOWN-2")])
        await asyncio.sleep(0.3)
        origin = await run(Region.TIANJIN, other_db_url, listen=f"127.0.0.1:{port}")
        head = origin_versions(other_db_url)[-1][0]
        await in_step(follower.replica, Region.TIANJIN, head, timeout=60)

        # The follower goes down; it resumes from its stored cursor when it is back.
        await follower.stop(0)
        load(
            other_db_url, [penalty(decision_no="WHILE-AWAY-1"), penalty(decision_no="R-1", status=RecordStatus.REVOKED)]
        )
        follower = await run(Region.BEIJING, db_url, listen="127.0.0.1:0", peers={Region.TIANJIN: origin.address})
        head = origin_versions(other_db_url)[-1][0]
        await in_step(follower.replica, Region.TIANJIN, head)
        assert_exact_copy(other_db_url, db_url)
        cursor = follower.replica.read_cursors()[Region.TIANJIN]
        assert cursor.changes_applied == len(origin_versions(other_db_url))
        assert follower.subscribers[0].state.applied == 2  # only what came after the cursor
    finally:
        for node in reversed(started):
            await node.stop(0)


async def test_nodes_following_each_other_stop_without_waiting_out_their_grace(tmp_path: Path) -> None:
    # Followed feeds never finish by themselves: a stopping node ends the ones it serves,
    # and stops its own following first, so that nodes stopping together (as `make run`
    # does) do not hold each other's feeds for the whole grace period.
    grace = 60.0
    tianjin = await start_node(
        NodeSettings.from_env(
            {}, region=Region.TIANJIN, db_url=f"sqlite:///{tmp_path / 'tianjin.db'}", listen="127.0.0.1:0",
            allow_unasserted=True, grace_seconds=grace,
        )
    )  # fmt: skip
    beijing = await start_node(
        NodeSettings.from_env(
            {}, region=Region.BEIJING, db_url=f"sqlite:///{tmp_path / 'beijing.db'}", listen="127.0.0.1:0",
            allow_unasserted=True, grace_seconds=grace, peers={Region.TIANJIN: tianjin.address},
        )
    )  # fmt: skip
    stopped = False
    try:
        await in_step(beijing.replica, Region.TIANJIN, 0)
        async with grpc.aio.insecure_channel(beijing.address) as channel:
            feed = node_pb2_grpc.RegionalNodeStub(channel).WatchChangeBatches(
                pb.WatchChangesRequest(after_seq=0, follow=True)
            )
            first = await feed.read()
            assert first.caught_up
            # Both stop at once, each with a follower on its feed; well within the grace.
            await asyncio.wait_for(asyncio.gather(tianjin.stop(), beijing.stop()), timeout=grace / 2)
            stopped = True
            while (batch := await feed.read()) is not grpc.aio.EOF:
                assert batch.caught_up and not batch.changes
            assert await feed.code() == grpc.StatusCode.OK  # the feed ended, not cut off
    finally:
        if not stopped:
            for node in (tianjin, beijing):
                await node.stop(0)


async def test_replication_over_mutual_tls(tmp_path: Path, start_node_at: StartNode) -> None:
    from federation.tls import init_federation

    certs = tmp_path / "certs"
    init_federation(certs)

    def tls(region: Region) -> dict[str, object]:
        return {
            "tls_cert": str(certs / f"node-{region.value}.pem"),
            "tls_key": str(certs / f"node-{region.value}.key"),
            "tls_ca": str(certs / "ca.pem"),
        }

    origin_db = f"sqlite:///{tmp_path / 'tianjin.db'}"
    origin = await start_node_at(Region.TIANJIN, origin_db, RECORDS, **tls(Region.TIANJIN))
    follower = await start_node_at(
        Region.HEBEI, f"sqlite:///{tmp_path / 'hebei.db'}", peers={Region.TIANJIN: origin.address}, **tls(Region.HEBEI)
    )
    await in_step(follower.node.replica, Region.TIANJIN, origin_versions(origin_db)[-1][0])
    assert_exact_copy(origin_db, f"sqlite:///{tmp_path / 'hebei.db'}")

    # Without the federation's certificate a would-be follower gets nowhere.
    stranger_db = f"sqlite:///{tmp_path / 'stranger.db'}"
    stranger = await start_node_at(Region.BEIJING, stranger_db, peers={Region.TIANJIN: origin.address})
    await asyncio.sleep(1.0)
    subscriber = stranger.node.subscribers[0]
    assert subscriber.state.applied == 0 and "UNAVAILABLE" in subscriber.state.last_error
    assert replica_versions(stranger_db, Region.TIANJIN) == []


async def test_the_replica_is_never_served_as_the_nodes_own(tmp_path: Path, start_node_at: StartNode) -> None:
    origin_db = f"sqlite:///{tmp_path / 'tianjin.db'}"
    origin = await start_node_at(Region.TIANJIN, origin_db, RECORDS)
    follower = await start_node_at(
        Region.BEIJING, f"sqlite:///{tmp_path / 'beijing.db'}", peers={Region.TIANJIN: origin.address}
    )
    await in_step(follower.node.replica, Region.TIANJIN, origin_versions(origin_db)[-1][0])
    options = pb.QueryOptions(
        profile="tianjin-2023",
        years=3,
        application_date=pb.Date(year=APPLIED.year, month=APPLIED.month, day=APPLIED.day),
    )
    own = await follower.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=ACME, options=options))
    assert own.region == "beijing" and not own.HasField("replica")
    assert all(r.outcome != pb.OUTCOME_RECORDS for r in own.results)
    assert not own.HasField("data_as_of")  # the follower holds no records of its own
    feed = [c async for c in follower.stub.WatchChanges(pb.WatchChangesRequest(after_seq=0))]
    assert feed == []
    checks = await follower.stub.CheckSubjects(pb.CheckSubjectsRequest(subject_ids=[ACME], options=options))
    assert not checks.checks[0].hits


async def test_query_replica_answers_by_the_origins_rules(
    db_url: str, other_db_url: str, start_node_at: StartNode
) -> None:
    origin = await start_node_at(Region.TIANJIN, other_db_url, RECORDS)
    follower = await start_node_at(Region.BEIJING, db_url, peers={Region.TIANJIN: origin.address})
    await in_step(follower.node.replica, Region.TIANJIN, origin_versions(other_db_url)[-1][0])
    options = pb.QueryOptions(
        profile="tianjin-2023",
        years=3,
        application_date=pb.Date(year=APPLIED.year, month=APPLIED.month, day=APPLIED.day),
    )
    query = pb.QuerySubjectRequest(subject_id=ACME, options=options, purpose="招标投标")
    direct = await origin.stub.QuerySubject(query)
    served = await follower.stub.QueryReplica(pb.QueryReplicaRequest(origin="tianjin", query=query))
    assert served.replica.served_by == "beijing"
    cursor = follower.node.replica.read_cursors()[Region.TIANJIN]
    assert served.replica.last_seq == cursor.last_seq
    assert served.replica.replica_as_of.ToDatetime(tzinfo=UTC) == cursor.synced_at
    served.ClearField("replica")
    assert served == direct  # same records, same exclusions, same catalogue and as-of
    assert any(r.outcome == pb.OUTCOME_RECORDS for r in served.results)

    catalogue = await follower.stub.GetCatalogue(pb.GetCatalogueRequest(origin="tianjin"))
    assert catalogue == await origin.stub.GetCatalogue(pb.GetCatalogueRequest())

    for request, code in (
        (pb.QueryReplicaRequest(origin="beijing", query=query), grpc.StatusCode.INVALID_ARGUMENT),  # its own
        (pb.QueryReplicaRequest(origin="shanghai", query=query), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.QueryReplicaRequest(origin="hebei", query=query), grpc.StatusCode.NOT_FOUND),  # not replicated
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await follower.stub.QueryReplica(request)
        assert refused.value.code() == code, request.origin
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await follower.stub.GetCatalogue(pb.GetCatalogueRequest(origin="hebei"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def marks(replica: ReplicaStore, want: set[str], *, timeout: float = 30.0) -> None:
    """Wait until the replica's current Tianjin records under objection are ``want``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        held = await replica.current_for(Region.TIANJIN, ACME)
        marked = {r.decision_no for r in held if r.under_objection}
        if marked == want:
            return
        assert asyncio.get_running_loop().time() < deadline, f"marked {marked}, not {want}"
        await asyncio.sleep(0.05)


async def test_replica_answers_keep_the_objection_mark(
    db_url: str, other_db_url: str, tmp_path: Path, start_node_at: StartNode
) -> None:
    origin = await start_node_at(Region.TIANJIN, other_db_url, RECORDS)
    follower = await start_node_at(Region.BEIJING, db_url, peers={Region.TIANJIN: origin.address})
    await in_step(follower.node.replica, Region.TIANJIN, origin_versions(other_db_url)[-1][0])
    query = pb.QuerySubjectRequest(
        subject_id=ACME,
        options=pb.QueryOptions(
            profile="tianjin-2023",
            years=3,
            application_date=pb.Date(year=APPLIED.year, month=APPLIED.month, day=APPLIED.day),
        ),
    )
    held = {r.decision_no: r for r in await origin.node.store.current_for(ACME)}
    desk = origin.node.desk
    case = await desk.file(
        subject_id=ACME, record_id=held["R-4"].record_id, kind=CaseKind.OBJECTION, reason="并非本单位", filed_by="acme"
    )
    # A credit repair application is not an objection: it marks nothing.
    await desk.file(
        subject_id=ACME, record_id=held["R-2"].record_id, kind=CaseKind.CREDIT_REPAIR, reason="已履行", filed_by="acme"
    )
    await marks(follower.node.replica, {"R-4"})

    def disputed(result: pb.SubjectResult) -> set[str]:
        return {r.decision_no for d in result.results for r in d.records if r.under_objection}

    direct = await origin.stub.QuerySubject(query)
    served = await follower.stub.QueryReplica(pb.QueryReplicaRequest(origin="tianjin", query=query))
    assert disputed(direct) == disputed(served) == {"R-4"}
    served.ClearField("replica")
    assert served == direct

    # A follower that starts afresh is told the marks with its first batch.
    other = await start_node_at(
        Region.HEBEI, f"sqlite:///{tmp_path / 'late.db'}", peers={Region.TIANJIN: origin.address}
    )
    await marks(other.node.replica, {"R-4"})

    # Upheld: the record's next version goes out with the case closed, and the mark goes.
    await desk.resolve(case.number, Resolution.UPHELD, note="维持原决定", resolved_by="officer")
    await marks(follower.node.replica, set())
    await marks(other.node.replica, set())
    served = await follower.stub.QueryReplica(pb.QueryReplicaRequest(origin="tianjin", query=query))
    assert not disputed(served)
    assert disputed(await origin.stub.QuerySubject(query)) == set()


DISCIPLINE = [
    penalty(  # in force: counts
        decision_no="SD-1",
        scope=Scope.SERIOUS_DISHONESTY_LIST,
        decided_on=date(2024, 1, 10),
        procedure=Procedure.NOT_APPLICABLE,
    ),
    penalty(  # removed from the list before the day asked about
        decision_no="SD-2",
        scope=Scope.SERIOUS_DISHONESTY_LIST,
        decided_on=date(2022, 1, 10),
        removed_on=date(2023, 1, 10),
        procedure=Procedure.NOT_APPLICABLE,
    ),
    penalty(  # repaired
        decision_no="SID-1",
        scope=Scope.SERIOUS_ILLEGAL_DISHONESTY_LIST,
        decided_on=date(2024, 2, 1),
        status=RecordStatus.REPAIRED,
        procedure=Procedure.NOT_APPLICABLE,
    ),
    penalty(  # in force, on a list joint discipline does not look at by default
        decision_no="AO-1",
        scope=Scope.ABNORMAL_OPERATIONS_LIST,
        decided_on=date(2024, 3, 1),
        procedure=Procedure.NOT_APPLICABLE,
    ),
    penalty(decision_no="P-1"),  # a penalty, not a list entry
    penalty(  # another subject
        OTHER,
        decision_no="SD-3",
        scope=Scope.SERIOUS_DISHONESTY_LIST,
        decided_on=date(2024, 1, 10),
        procedure=Procedure.NOT_APPLICABLE,
    ),
]


async def test_joint_discipline_looks_at_the_other_regions_lists(
    db_url: str, tmp_path: Path, start_node_at: StartNode
) -> None:
    origin_db = f"sqlite:///{tmp_path / 'tianjin.db'}"
    origin = await start_node_at(Region.TIANJIN, origin_db, DISCIPLINE)
    follower = await start_node_at(Region.BEIJING, db_url, peers={Region.TIANJIN: origin.address})
    await in_step(follower.node.replica, Region.TIANJIN, origin_versions(origin_db)[-1][0])
    on_date = pb.Date(year=2025, month=6, day=16)

    answer = await follower.stub.CheckJointDiscipline(pb.JointDisciplineRequest(subject_id=ACME, on_date=on_date))
    assert answer.region == "beijing" and answer.subject_id == ACME
    assert list(answer.scopes) == [
        pb.SCOPE_SERIOUS_DISHONESTY_LIST,
        pb.SCOPE_SERIOUS_ILLEGAL_DISHONESTY_LIST,
        pb.SCOPE_FATAL_ACCIDENT_LIST,
    ]
    regions = {r.region: r for r in answer.regions}
    assert set(regions) == {"tianjin", "hebei"}  # every other region, never its own
    tianjin = regions["tianjin"]
    assert tianjin.replicated and [e.decision_no for e in tianjin.entries] == ["SD-1"]
    assert (
        tianjin.replica_as_of.ToDatetime(tzinfo=UTC) == follower.node.replica.read_cursors()[Region.TIANJIN].synced_at
    )
    assert tianjin.HasField("data_as_of") and tianjin.last_seq == origin_versions(origin_db)[-1][0]
    assert not regions["hebei"].replicated and not regions["hebei"].entries

    # On a day before the entry was listed, and with the abnormal operations list asked for.
    earlier = await follower.stub.CheckJointDiscipline(
        pb.JointDisciplineRequest(
            subject_id=ACME,
            on_date=pb.Date(year=2022, month=6, day=1),
            scopes=[pb.SCOPE_SERIOUS_DISHONESTY_LIST, pb.SCOPE_ABNORMAL_OPERATIONS_LIST],
        )
    )
    assert [e.decision_no for r in earlier.regions for e in r.entries] == ["SD-2"]
    listed = await follower.stub.CheckJointDiscipline(
        pb.JointDisciplineRequest(subject_id=ACME, on_date=on_date, scopes=[pb.SCOPE_ABNORMAL_OPERATIONS_LIST])
    )
    assert [e.decision_no for r in listed.regions for e in r.entries] == ["AO-1"]

    with pytest.raises(grpc.aio.AioRpcError) as not_a_list:
        await follower.stub.CheckJointDiscipline(
            pb.JointDisciplineRequest(subject_id=ACME, scopes=[pb.SCOPE_ADMINISTRATIVE_PENALTY])
        )
    assert not_a_list.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as bad_subject:
        await follower.stub.CheckJointDiscipline(pb.JointDisciplineRequest(subject_id="91350100M000100Y44"))
    assert bad_subject.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_joint_discipline_and_replica_queries_need_an_assertion(tmp_path: Path, start_node_at: StartNode) -> None:
    import json

    from credit.signing import Keyring, SigningKey
    from federation.assertions import METADATA_KEY, on_behalf_of

    key = SigningKey.generate()
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(Keyring([key.private.public_key()]).jwks()), encoding="utf-8")
    origin_db = f"sqlite:///{tmp_path / 'tianjin.db'}"
    origin = await start_node_at(Region.TIANJIN, origin_db, DISCIPLINE)
    follower = await start_node_at(
        Region.HEBEI,
        f"sqlite:///{tmp_path / 'hebei.db'}",
        peers={Region.TIANJIN: origin.address},
        gateway_jwks=str(jwks),
    )
    await in_step(follower.node.replica, Region.TIANJIN, origin_versions(origin_db)[-1][0])

    def token(subject: str) -> tuple[tuple[str, str]]:
        signed = on_behalf_of(key, issuer="gw", user="officer", role="agency", subject=subject, purpose="联合惩戒")
        return ((METADATA_KEY, signed),)

    request = pb.JointDisciplineRequest(subject_id=ACME)
    with pytest.raises(grpc.aio.AioRpcError) as unasserted:
        await follower.stub.CheckJointDiscipline(request)
    assert unasserted.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as other_subject:
        await follower.stub.CheckJointDiscipline(request, metadata=token(OTHER))
    assert other_subject.value.code() == grpc.StatusCode.PERMISSION_DENIED
    answer = await follower.stub.CheckJointDiscipline(request, metadata=token(ACME))
    assert [e.decision_no for r in answer.regions for e in r.entries] == ["SD-1"]

    query = pb.QueryReplicaRequest(origin="tianjin", query=pb.QuerySubjectRequest(subject_id=ACME))
    with pytest.raises(grpc.aio.AioRpcError) as unasserted:
        await follower.stub.QueryReplica(query)
    assert unasserted.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await follower.stub.QueryReplica(query, metadata=token(ACME))).region == "tianjin"


async def test_peers_settings() -> None:
    from credit.errors import InvalidInput

    settings = NodeSettings.from_env(
        {"JJJ_NODE_PEERS": "tianjin=10.0.2.5:50051, 河北=node.hebei:50051"}, region="beijing", allow_unasserted=True
    )
    assert settings.peers == {Region.TIANJIN: "10.0.2.5:50051", Region.HEBEI: "node.hebei:50051"}
    assert NodeSettings.from_env({"JJJ_NODE_PEERS": "x"}, region="beijing", peers="hebei=h:1").peers == {
        Region.HEBEI: "h:1"
    }
    for bad in ("beijing=h:1", "tianjin=h", "tianjin=h:1,tianjin=h:2", "shanghai=h:1", "tianjin"):
        with pytest.raises(InvalidInput):
            NodeSettings.from_env({}, region="beijing", peers=bad)


def test_jjj_node_takes_its_peers() -> None:
    from jjj.cli import build_parser

    args = build_parser().parse_args(["node", "--region", "beijing", "--peers", "tianjin=10.0.2.5:50051"])
    assert args.peers == "tianjin=10.0.2.5:50051"


async def test_the_feed_encodes_stored_rows_as_the_records_they_are(db_url: str) -> None:
    """The batched feed reads rows raw from the driver; what it sends must be exactly
    what the record-by-record feed sends."""
    from federation import wire
    from nodes.feed import feed_batch_to_pb

    load(db_url, [*RECORDS, penalty(decision_no="PU-1", removed_on=date(2025, 1, 1))])
    store = SqlRecordStore(sync_engine(db_url), region=Region.TIANJIN)
    try:
        rows = await store.feed(0, 100)
        changes = await store.changes(0, 100)
        batch = feed_batch_to_pb("tianjin", rows, caught_up=True, head_seq=0, data_as_of=None)
        assert list(batch.changes) == [wire.change_to_pb("", seq, record) for seq, record in changes]
        assert await store.head_seq() == changes[-1][0]
    finally:
        store.close()
