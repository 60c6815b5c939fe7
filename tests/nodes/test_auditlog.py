"""The audit log in a real database: concurrent appends make one chain, checkpoints are
sealed, and rows changed, deleted or moved behind its back are found."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, update

from credit.audit import Action, Event, EventOutcome
from credit.signing import Keyring, SigningKey
from infra.auditlog import AuditLog, entries
from infra.db import sync_engine
from nodes.db import migrate

KEY = SigningKey.generate()
RING = Keyring([KEY.private.public_key()])


@pytest.fixture
async def audit(db_url: str):  # type: ignore[no-untyped-def]
    migrate(db_url)
    log = AuditLog(sync_engine(db_url), sealer=lambda: KEY, seal_every=10)
    await asyncio.gather(
        *(log.record(Event(f"user{i % 3}", "enterprise", Action.REPORT_ISSUED, f"S{i % 4}", "投标")) for i in range(25))
    )
    yield log
    log.engine.dispose()


async def test_concurrent_appends_make_one_sealed_chain(audit: AuditLog) -> None:
    report = audit.verify(RING)
    assert report.intact, report.reason
    # Concurrent appends share operations; a checkpoint seals each that crosses a tenth entry.
    assert report.entries == 25 and report.checkpoints >= 1
    for i in range(10):  # one at a time: entries 26…35, a checkpoint at 30
        await audit.record(Event("later", "admin", Action.REPORT_VIEWED, f"S{i}"))
    sealed = audit.verify(RING).checkpoints
    assert sealed == report.checkpoints + 1
    checkpoint = await audit.seal()
    assert checkpoint is not None and checkpoint.seq == 35
    assert (await audit.seal()) is None  # nothing new to seal
    assert audit.verify(RING).checkpoints == sealed + 1
    mine = audit.find(subject="S1")
    assert [e.seq for e in mine] == sorted((e.seq for e in mine), reverse=True)
    assert {e.subject for e in mine} == {"S1"} and len(mine) == 7
    refused = await audit.record(Event("x", "third_party", Action.REFUSED, "S1", outcome=EventOutcome.REFUSED))
    assert refused.seq == 36 and audit.verify(RING).intact


def _database_edit(audit: AuditLog, statement: object) -> None:
    with audit.engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]


async def test_an_entry_changed_in_the_database_is_named(audit: AuditLog) -> None:
    _database_edit(audit, update(entries).where(entries.c.seq == 7).values(purpose="别的用途"))
    report = audit.verify(RING)
    assert report.broken_at == 7 and "changed" in report.reason


async def test_a_deleted_entry_is_named(audit: AuditLog) -> None:
    _database_edit(audit, delete(entries).where(entries.c.seq == 12))
    assert audit.verify(RING).broken_at == 12


async def test_a_deleted_tail_is_found(audit: AuditLog) -> None:
    _database_edit(audit, delete(entries).where(entries.c.seq > 22))
    report = audit.verify(RING)
    assert report.broken_at == 23 and "missing" in report.reason


async def test_reordered_entries_are_named(audit: AuditLog) -> None:
    # Swap the numbers of entries 15 and 16 (through a free number, for the key).
    _database_edit(audit, update(entries).where(entries.c.seq == 15).values(seq=-1))
    _database_edit(audit, update(entries).where(entries.c.seq == 16).values(seq=15))
    _database_edit(audit, update(entries).where(entries.c.seq == -1).values(seq=16))
    assert audit.verify(RING).broken_at == 15


async def test_a_node_writes_its_audit_chain_in_transactions(start_node_at, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    """The node's store reads in autocommit on PostgreSQL; its audit log must not: a group
    of appends (the chain head moved, the entries inserted) commits or rolls back whole."""
    from credit.regions import Region

    node = await start_node_at(Region.TIANJIN, pg_url)
    audit = node.node.servicer.audit
    assert audit is not None
    assert node.node.store.engine.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    assert audit.engine.get_execution_options().get("isolation_level") != "AUTOCOMMIT"
    assert audit.writes.engine.get_execution_options().get("isolation_level") != "AUTOCOMMIT"


async def test_processes_appending_at_once_build_one_chain(db_url: str) -> None:
    """Writers with their own engines and group commits — several gateway processes on
    one database — append at the same time: the head row orders them into one chain,
    each sealing as it goes."""
    migrate(db_url)
    writers = [AuditLog(sync_engine(db_url), sealer=lambda: KEY, seal_every=7) for _ in range(3)]
    try:
        await asyncio.gather(
            *(
                writer.record(Event(f"p{n}", "enterprise", Action.REPORT_VIEWED, f"S{i}"))
                for i in range(20)
                for n, writer in enumerate(writers)
            ),
            *(writer.seal() for writer in writers),
        )
        report = writers[0].verify(RING)
        assert report.intact, report.reason
        assert report.entries == 60 and report.checkpoints >= 60 // 7
        assert sorted(e.seq for e in writers[1].find(limit=100)) == list(range(1, 61))
    finally:
        for writer in writers:
            writer.engine.dispose()


async def test_entries_recorded_behind_are_written_together_in_order(db_url: str) -> None:
    migrate(db_url)
    log = AuditLog(sync_engine(db_url), linger=0.05)
    transactions = []
    submit = log.writes.submit

    async def counted(operation):  # type: ignore[no-untyped-def]
        transactions.append(operation)
        return await submit(operation)

    log.writes.submit = counted  # type: ignore[method-assign]
    try:
        for i in range(20):
            await log.record_behind(Event("gw", "enterprise", Action.NODE_QUERY, f"S{i}"))
        assert log.find() == []  # nothing is written at once
        await asyncio.sleep(0.3)
        assert [e.subject for e in reversed(log.find())] == [f"S{i}" for i in range(20)]
        assert len(transactions) == 1
        # A caller that waits has what lingers written with its own entry, at once.
        await log.record_behind(Event("gw", "enterprise", Action.NODE_QUERY, "S20"))
        entry = await log.record(Event("gw", "enterprise", Action.REFUSED, "S21"))
        assert entry.seq == 22 and len(transactions) == 2
        await log.record_behind(Event("gw", "enterprise", Action.NODE_QUERY, "S22"))
        await log.flush()
        assert log.find(limit=1)[0].subject == "S22"
        assert log.verify(Keyring()).intact
    finally:
        log.engine.dispose()


async def test_entries_recorded_behind_survive_a_failed_write(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'n.db'}"
    migrate(url)
    log = AuditLog(sync_engine(url), linger=0.01)
    submit = log.writes.submit
    failures = [RuntimeError("disk full")]

    async def flaky(operation):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return await submit(operation)

    log.writes.submit = flaky  # type: ignore[method-assign]
    try:
        await log.record_behind(Event("gw", "enterprise", Action.NODE_QUERY, "S1"))
        await asyncio.sleep(0.05)  # the first write fails: the entry is kept
        assert log.find() == [] and not failures
        await log.record_behind(Event("gw", "enterprise", Action.NODE_QUERY, "S2"))
        await log.flush()
        assert [e.subject for e in reversed(log.find())] == ["S1", "S2"]
    finally:
        log.engine.dispose()


async def test_a_full_backlog_holds_callers_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'n.db'}"
    migrate(url)
    log = AuditLog(sync_engine(url), linger=60, backlog=3)
    try:
        for i in range(3):
            await log.record_behind(Event("gw", "enterprise", Action.NODE_QUERY, f"S{i}"))
        assert log.find() == []
        await log.record_behind(Event("gw", "enterprise", Action.NODE_QUERY, "S3"))  # waits: written with the rest
        assert len(log.find()) == 4
    finally:
        log.engine.dispose()


async def test_a_node_answers_while_a_load_holds_the_database(tmp_path, start_node_at) -> None:  # type: ignore[no-untyped-def]
    """On SQLite a load holds the write lock for its whole transaction; the audit entry of
    a query is written behind the answer, so queries are answered meanwhile (they used
    to wait for the lock, up to its 30 s timeout), and the entries follow once the load
    commits."""
    import json
    import sqlite3

    from credit.regions import Region
    from federation.assertions import METADATA_KEY, on_behalf_of
    from protos.credit.v1 import node_pb2 as pb
    from tests.nodes.builders import ACME

    db = tmp_path / "n.db"
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(RING.jwks()), encoding="utf-8")
    node = await start_node_at(Region.TIANJIN, f"sqlite:///{db}", gateway_jwks=str(jwks))
    assertion = on_behalf_of(KEY, issuer="gw", user="u", role="enterprise", subject=ACME, purpose="投标")
    load = sqlite3.connect(db, isolation_level=None)
    load.execute("BEGIN IMMEDIATE")  # what SqlRecordWriter.load holds while it stores
    try:
        answer = await node.stub.QuerySubject(
            pb.QuerySubjectRequest(subject_id=ACME), metadata=((METADATA_KEY, assertion),), timeout=5
        )
        assert answer.subject_id == ACME
    finally:
        load.execute("COMMIT")
        load.close()
    await node.node.servicer.settle()
    assert [e.action for e in node.node.servicer.audit.find()] == ["node_query"]


async def test_a_stopping_node_writes_the_entries_it_kept_behind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Entries still waiting behind the answers when the node stops are written before
    its database closes, in one chain that verifies, and the stop does not wait on them
    beyond the write itself."""
    import json
    import time

    import grpc

    from credit.regions import Region
    from federation.assertions import METADATA_KEY, on_behalf_of
    from nodes.server import start_node
    from nodes.settings import NodeSettings
    from protos.credit.v1 import node_pb2 as pb
    from protos.credit.v1 import node_pb2_grpc
    from tests.nodes.builders import ACME

    db = f"sqlite:///{tmp_path / 'n.db'}"
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(RING.jwks()), encoding="utf-8")
    node = await start_node(
        NodeSettings.from_env(
            {}, region=Region.TIANJIN, db_url=db, listen="127.0.0.1:0", grace_seconds=0.5, gateway_jwks=str(jwks)
        )
    )
    audit = node.servicer.audit
    assert audit is not None
    audit.linger = 600.0  # nothing is written before the stop
    async with grpc.aio.insecure_channel(node.address) as channel:
        stub = node_pb2_grpc.RegionalNodeStub(channel)
        for i in range(5):
            token = on_behalf_of(KEY, issuer="gw", user=f"u{i}", role="enterprise", subject=ACME, purpose="投标")
            await stub.QuerySubject(pb.QuerySubjectRequest(subject_id=ACME), metadata=((METADATA_KEY, token),))
        with pytest.raises(grpc.aio.AioRpcError):  # refused: recorded behind as well
            await stub.QuerySubject(pb.QuerySubjectRequest(subject_id=ACME), metadata=((METADATA_KEY, "forged"),))
    assert audit.find() == []
    started = time.monotonic()
    await node.stop(0.5)
    assert time.monotonic() - started < 5.0
    written = AuditLog(sync_engine(db))
    try:
        found = written.find()
        assert sorted(e.actor for e in found if e.action == "node_query") == [f"u{i}" for i in range(5)]
        assert [e.action for e in found if e.actor == "unknown"] == ["refused"]
        report = written.verify(Keyring())
        assert report.intact and report.entries == 6, report.reason
    finally:
        written.engine.dispose()


async def test_a_flush_is_bounded_in_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A database that does not answer does not hold a stopping node: the flush gives up
    after its timeout, saying so."""
    import time

    from structlog.testing import capture_logs

    url = f"sqlite:///{tmp_path / 'n.db'}"
    migrate(url)
    log = AuditLog(sync_engine(url), linger=60)
    stuck = asyncio.Event()
    submit = log.writes.submit

    async def hung(operation):  # type: ignore[no-untyped-def]
        await stuck.wait()
        return await submit(operation)

    log.writes.submit = hung  # type: ignore[method-assign]
    try:
        await log.record_behind(Event("gw", "enterprise", Action.NODE_QUERY, "S1"))
        started = time.monotonic()
        with capture_logs() as logged:
            await log.flush(timeout=0.2)
        assert time.monotonic() - started < 2.0
        assert [e["event"] for e in logged] == ["audit_flush_timed_out"] and logged[0]["waiting"] == 1
    finally:
        stuck.set()
        await log.flush()  # the write that was held goes through
        assert [e.subject for e in log.find()] == ["S1"]
        log.engine.dispose()
