"""The smaller findings, each with its test: a preview confirms once, attachment names
cannot disguise themselves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from credit.cases import check_attachment

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TERMS = {"grantee": "bank", "purpose": "融资信贷", "days": 30, "max_uses": 3}


async def test_a_preview_confirms_once(gateway: Any) -> None:
    api, _, _ = gateway
    token = await api.login("clean-co", "demo-clean-2024")
    status, preview, _ = await api.call("POST", "/api/v1/grants/preview", token, json=TERMS)
    assert status == 200, preview
    confirm = {"preview": preview["preview"], "confirm": True}
    results = await asyncio.gather(*(api.call("POST", "/api/v1/grants", token, json=confirm) for _ in range(4)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(201) == 1 and statuses.count(409) + statuses.count(412) == 3, statuses
    status, listed, _ = await api.call("GET", "/api/v1/grants", token)
    assert len(listed["grants"]) == 1


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("invoice\u202efdp.exe.pdf", "invoice_fdp.exe.pdf"),  # right-to-left override
        ("a\u2066b\u2069.pdf", "a_b_.pdf"),  # isolates
        ("line\u2028break.pdf", "line_break.pdf"),
        ("zero\u200bwidth.pdf", "zero_width.pdf"),
        ("tab\tand\x7fdel.pdf", "tab_and_del.pdf"),
        ("正常的文件名.pdf", "正常的文件名.pdf"),
    ],
)
def test_attachment_names_cannot_disguise_themselves(given: str, shown: str) -> None:
    assert check_attachment(given, PDF).filename == shown


async def test_case_reads_and_attachment_downloads_are_in_the_gateways_audit(gateway: Any) -> None:
    import aiohttp

    from tests.gateway.test_objections import records_in

    api, running, _ = gateway
    assert running.service is not None
    owner = await api.login("records-co", "demo-records-2024")
    agency = await api.login("agency", "demo-agency-2024")
    _, report, _ = await api.call("POST", "/api/v1/reports", owner, json={})
    target = records_in(report["report"], "beijing")[0]
    form = aiohttp.FormData()
    form.add_field("report_no", report["report_no"])
    form.add_field("record_id", target["record_id"])
    form.add_field("reason", "记录有误")
    form.add_field("attachment", PDF, filename="证明.pdf", content_type="application/pdf")
    status, case, _ = await api.call("POST", "/api/v1/objections", owner, data=form)
    assert status == 201, case
    number = case["number"]
    assert (await api.call("GET", f"/api/v1/objections/{number}", agency))[0] == 200
    assert (await api.call("GET", f"/api/v1/objections/{number}/attachment", agency))[0] == 200
    await running.registry.writes.flush()
    viewed = [e.detail for e in running.service.audit.find(actor="agency", limit=50) if e.action == "objection_viewed"]
    assert f"{number} case read" in viewed and f"{number} attachment downloaded" in viewed


def node_audit_actions(db: str) -> list[str]:
    """The actions in a node's audit log, read from its database."""
    from sqlalchemy import select

    from infra.auditlog import entries
    from infra.db import sync_engine

    engine = sync_engine(db)
    try:
        with engine.connect() as conn:
            return [row.action for row in conn.execute(select(entries))]
    finally:
        engine.dispose()


async def test_reading_a_nodes_change_feed_is_audited(tmp_path: Any, start_node_at: Any) -> None:
    from credit.regions import Region
    from protos.credit.v1 import node_pb2 as pb

    db = f"sqlite:///{tmp_path / 'n.db'}"
    node = await start_node_at(Region.TIANJIN, db, allow_unasserted=True)
    async for _batch in node.stub.WatchChangeBatches(pb.WatchChangesRequest(after_seq=0, follow=False)):
        pass
    await node.node.servicer.settle()  # the entry is written behind the stream
    actions = node_audit_actions(db)
    assert "feed_read" in actions


async def test_a_stopping_node_commits_its_last_audit_entries_and_closes_every_connection(
    db_url: str, start_node_at: Any
) -> None:
    """A feed reader's audit entry is written beside its stream; a node stopped at once
    still commits it, before its database closes (not through a pool already closed,
    which would leave a connection open behind it)."""
    from credit.regions import Region
    from protos.credit.v1 import node_pb2 as pb

    node = await start_node_at(Region.TIANJIN, db_url, allow_unasserted=True)
    call = node.stub.WatchChangeBatches(pb.WatchChangesRequest(after_seq=0, follow=True))
    await anext(aiter(call))
    await node.node.stop(0)
    assert node.node.store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    actions = node_audit_actions(db_url)
    assert "feed_read" in actions
