"""A report whose records later change is superseded: the gateway follows the nodes'
change feeds, and the verify page says so."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from credit.regions import Region
from credit.rules import RecordStatus
from nodes.records import make_draft
from nodes.seed import DEMO_SUBJECTS, generate
from tests.conftest import load
from tests.gateway.conftest import TODAY

SUBJECTS = {demo.key: demo.id for demo in DEMO_SUBJECTS}


async def _status(api, code: str, expected: str) -> dict:  # type: ignore[no-untyped-def]
    for _ in range(100):
        status, body, _ = await api.call("GET", f"/api/v1/verify/{code}")
        assert status == 200
        if body["status"] == expected:
            return dict(body)
        await asyncio.sleep(0.1)
    raise AssertionError(f"status stayed {body['status']}, expected {expected}")


async def test_a_revoked_record_supersedes_the_reports_that_contained_it(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, nodes = gateway
    owner = await api.login("records-co", "demo-records-2024")
    _, first, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    _, clean, _ = await api.call(
        "POST", "/api/v1/reports", await api.login("clean-co", "demo-clean-2024"), json={"years": 3}
    )
    assert first["verdict"] == "has_records"
    beijing_records = [
        record
        for line in first["report"]["lines"]
        for cell in line["cells"]
        if cell["region"] == "beijing"
        for record in cell.get("records", ())
    ]
    assert beijing_records
    target = beijing_records[0]
    await _status(api, first["verification_code"], "valid")

    # The Beijing authority revokes the record (after an objection): a new version.
    drafts = [d for batch in generate(Region.BEIJING, subjects=0, today=TODAY) for d in batch]
    original = next(d for d in drafts if d.record_id == target["record_id"])
    revoked = make_draft(
        **{
            f.name: getattr(original, f.name)
            for f in dataclasses.fields(original)
            if f.name not in ("content_hash", "status")
        },
        status=RecordStatus.REVOKED,
    )
    db = nodes[Region.BEIJING].node.settings.db_url
    load(db, [revoked], source="objection-upheld")

    verified = await _status(api, first["verification_code"], "superseded")
    assert verified["genuine"] is True  # still genuine: it was issued; but no longer current
    # A report that did not contain the record is untouched; a new report is valid.
    assert (await api.call("GET", f"/api/v1/verify/{clean['verification_code']}"))[1]["status"] == "valid"
    _, second, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    assert (await api.call("GET", f"/api/v1/verify/{second['verification_code']}"))[1]["status"] == "valid"

    # After a restart the watcher resumes from its cursor and marks nothing wrongly.
    await running.watcher.stop()
    running.watcher.start()
    await asyncio.sleep(0.5)
    assert (await api.call("GET", f"/api/v1/verify/{second['verification_code']}"))[1]["status"] == "valid"


async def test_the_watcher_stops_while_a_feed_outpaces_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A reader blocked on a full queue is cancelled cleanly: stopping never hangs."""
    import time

    from credit.queries import ChangeNotice
    from gateway.registry import Registry
    from gateway.reports.supersede import SupersedeWatcher

    class EndlessFeed:
        region = Region.BEIJING

        async def changes(self, after_seq: int):  # type: ignore[no-untyped-def]
            seq = after_seq
            while True:
                seq += 1
                yield ChangeNotice(seq, f"r{seq}", 1)

    registry = Registry.open(f"sqlite:///{tmp_path / 'gateway.db'}")
    watcher = SupersedeWatcher(registry, [EndlessFeed()])  # type: ignore[list-item]
    slow = watcher._apply

    def applying_slowly(*args):  # type: ignore[no-untyped-def]
        time.sleep(0.05)  # the queue fills while a batch is written
        return slow(*args)

    watcher._apply = applying_slowly  # type: ignore[method-assign]
    watcher.start()
    await asyncio.sleep(0.5)
    stopping = asyncio.create_task(watcher.stop())
    done, _ = await asyncio.wait({stopping}, timeout=10)
    assert stopping in done, "the watcher did not stop"
    registry.close()


async def test_a_new_gateway_follows_the_feeds_from_their_heads(gateway) -> None:  # type: ignore[no-untyped-def]
    """With no report registered, no earlier change can supersede anything: the feeds'
    history is skipped, not replayed; a gateway with reports keeps its cursors."""
    from sqlalchemy import select

    from gateway.registry import feed_cursors
    from protos.credit.v1 import node_pb2 as pb

    _api, running, nodes = gateway
    with running.registry.engine.connect() as conn:
        cursors = dict(conn.execute(select(feed_cursors.c.region, feed_cursors.c.seq)).all())
    heads = {}
    for region, handle in nodes.items():
        changes = [c async for c in handle.stub.WatchChanges(pb.WatchChangesRequest(after_seq=0))]
        heads[region.value] = changes[-1].seq if changes else 0
        assert await next(c for c in running.clients if c.region is region).head_seq(timeout=5) == heads[region.value]
    assert any(heads.values()) and cursors == heads


async def test_a_feed_from_the_wrong_region_is_refused(tmp_path, start_node_at) -> None:  # type: ignore[no-untyped-def]
    """A client configured for Beijing that reaches Tianjin's node does not take Tianjin's
    changes for Beijing's."""
    from federation.client import GrpcNodeClient, NodeUnavailable

    drafts = [d for batch in generate(Region.TIANJIN, subjects=5, today=TODAY) for d in batch]
    tianjin = await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path / 'tj.db'}", drafts)
    client = GrpcNodeClient(Region.BEIJING, tianjin.address)
    try:
        with pytest.raises(NodeUnavailable, match="tianjin's, not beijing's"):
            async for _ in client.changes(0):
                pass
    finally:
        await client.close()
