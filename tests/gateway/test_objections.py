"""The objection lifecycle end to end: a real gateway over three real nodes.

The subject objects to a record of its report (with an attachment); the owning node
keeps the case and marks the record 异议处理中 in new reports; an agency officer lists,
reads and decides it; the outcome is the record's next version on the node's change
feed, and the earlier reports that contained the record become superseded.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

import aiohttp

from tests.gateway.test_supersede import _status

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def records_in(report: dict[str, Any], region: str) -> list[dict[str, Any]]:
    return [
        record
        for line in report["lines"]
        for cell in line["cells"]
        if cell["region"] == region
        for record in cell.get("records", ())
    ]


async def test_objection_lifecycle_supersedes_the_earlier_reports(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _running, _nodes = gateway
    owner = await api.login("records-co", "demo-records-2024")
    agency = await api.login("agency", "demo-agency-2024")
    _, first, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    target = records_in(first["report"], "beijing")[0]
    other = records_in(first["report"], "tianjin")[0]

    # Filed from the report, with a PDF, as a form upload.
    form = aiohttp.FormData()
    form.add_field("report_no", first["report_no"])
    form.add_field("record_id", target["record_id"])
    form.add_field("reason", "该处罚决定已被行政复议撤销")
    form.add_field("attachment", PDF, filename="复议决定书.pdf", content_type="application/pdf")
    status, case, reply = await api.call("POST", "/api/v1/objections", owner, data=form)
    assert status == 201, case
    number = case["number"]
    assert number.startswith("BJ-YY-") and reply.headers["Location"] == f"/api/v1/objections/{number}"
    assert case["state"] == "open" and case["record"]["under_objection"] is True
    assert case["attachment"]["content_type"] == "application/pdf" and case["attachment"]["size"] == len(PDF)

    # Filing changes no record: the first report stays valid; a new one shows 异议处理中.
    assert (await api.call("GET", f"/api/v1/verify/{first['verification_code']}"))[1]["status"] == "valid"
    _, during, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    marked = {r["record_id"]: r for region in ("beijing", "tianjin") for r in records_in(during["report"], region)}
    assert marked[target["record_id"]]["objection"] == "open"
    assert "objection" not in marked[other["record_id"]]

    # The subject follows it; the authority sees it in its region's queue, with the file.
    status, mine, _ = await api.call("GET", "/api/v1/objections", owner)
    assert status == 200 and [c["number"] for c in mine["objections"]] == [number] and mine["unavailable"] == {}
    status, queue, _ = await api.call("GET", "/api/v1/objections?region=beijing&state=open", agency)
    assert status == 200 and [c["number"] for c in queue["objections"]] == [number]
    status, body, reply = await api.call("GET", f"/api/v1/objections/{number}/attachment", agency)
    assert status == 200 and reply.content_type == "application/pdf" and body == PDF.decode()
    assert "attachment" in reply.headers["Content-Disposition"]

    # Only an authority decides.
    decision = {"resolution": "revoked", "note": "经复核，原处罚决定已撤销，记录予以撤销"}
    status, problem, _ = await api.call("POST", f"/api/v1/objections/{number}/resolve", owner, json=decision)
    assert status == 403 and problem["status"] == 403
    status, done, _ = await api.call("POST", f"/api/v1/objections/{number}/resolve", agency, json=decision)
    assert status == 200, done
    assert done["state"] == "closed" and done["resolution"] == "revoked" and done["resolved_by"] == "agency"
    assert done["new_version"] == target["version"] + 1 and done["record"]["status"] == "revoked"
    status, problem, _ = await api.call("POST", f"/api/v1/objections/{number}/resolve", agency, json=decision)
    assert status == 409

    # The outcome flows through the change feed: both earlier reports are superseded.
    await _status(api, first["verification_code"], "superseded")
    await _status(api, during["verification_code"], "superseded")
    _, after, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    assert target["record_id"] not in {r["record_id"] for r in records_in(after["report"], "beijing")}
    assert (await api.call("GET", f"/api/v1/verify/{after['verification_code']}"))[1]["status"] == "valid"

    # The subject sees the outcome.
    _, mine, _ = await api.call("GET", f"/api/v1/objections/{number}", owner)
    assert mine["state"] == "closed" and mine["resolution"] == "revoked" and mine["resolution_name"] == "已撤销"
    assert mine["resolution_note"] == decision["note"]

    # Everything is in the gateway's audit log.
    admin = await api.login("admin", "demo-admin-2024")
    _, audit, _ = await api.call("GET", "/api/v1/audit?limit=200", admin)
    actions = [(e["action"], e["actor"]) for e in audit["entries"]]
    assert ("objection_filed", "records-co") in actions and ("objection_resolved", "agency") in actions


async def test_credit_repair_and_bad_requests(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _running, _nodes = gateway
    owner = await api.login("records-co", "demo-records-2024")
    clean = await api.login("clean-co", "demo-clean-2024")
    agency = await api.login("agency", "demo-agency-2024")
    bank = await api.login("bank", "demo-bank-2024")
    _, report, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    record = records_in(report["report"], "tianjin")[0]
    good = {"report_no": report["report_no"], "record_id": record["record_id"], "reason": "已履行全部义务"}

    async def refused(token: str, body: dict[str, Any], status: int, field: str | None = None) -> None:
        got, problem, reply = await api.call("POST", "/api/v1/objections", token, json=body)
        assert got == status, problem
        assert reply.content_type == "application/problem+json"
        if field:
            assert field in {p["name"] for p in problem["invalid-params"]}, problem

    await refused(owner, {**good, "report_no": "R-nope"}, 404)
    await refused(owner, {**good, "record_id": "not-in-the-report"}, 404)
    await refused(clean, good, 404)  # another subject's report
    await refused(bank, good, 403)
    await refused(owner, {**good, "kind": "complaint"}, 400, "kind")
    await refused(owner, {**good, "reason": " "}, 400, "reason")
    bad_file = {"filename": "x.pdf", "content_base64": base64.b64encode(b"MZ not a pdf").decode()}
    await refused(owner, {**good, "attachment": bad_file}, 400, "attachment")
    await refused(owner, {**good, "attachment": {"content_base64": "%%%"}}, 400, "attachment.content_base64")
    assert (await api.call("POST", "/api/v1/objections", owner, data=b"{not json"))[0] == 400
    # Too large to take, as a form upload or as JSON: 413, and nothing filed.
    huge = PDF + b"0" * (7 << 20)
    form = aiohttp.FormData(good)
    form.add_field("attachment", io.BytesIO(huge), filename="big.pdf", content_type="application/pdf")
    status, problem, _ = await api.call("POST", "/api/v1/objections", owner, data=form)
    assert status == 413 and problem["invalid-params"][0]["name"] == "attachment"
    big_json = {**good, "attachment": {"filename": "big.pdf", "content_base64": base64.b64encode(huge).decode()}}
    body = io.BytesIO(json.dumps(big_json).encode())
    headers = {"Content-Type": "application/json"}
    assert (await api.call("POST", "/api/v1/objections", owner, data=body, headers=headers))[0] == 413
    # Within the request limit but over the attachment's: the node's rule, a 400.
    over = {
        **good,
        "attachment": {"filename": "x.pdf", "content_base64": base64.b64encode(PDF + b"0" * (4 << 20)).decode()},
    }
    got, problem, _ = await api.call(
        "POST", "/api/v1/objections", owner, data=io.BytesIO(json.dumps(over).encode()), headers=headers
    )
    assert got == 400 and problem["invalid-params"][0]["name"] == "attachment", problem
    assert (await api.call("GET", "/api/v1/objections", owner))[1]["objections"] == []

    # A credit repair application, refused; then the authority applies the repair directly.
    status, applied, _ = await api.call("POST", "/api/v1/objections", owner, json={**good, "kind": "credit_repair"})
    assert status == 201 and applied["number"].startswith("TJ-XF-")
    await refused(owner, {**good, "kind": "credit_repair"}, 409)  # one open application per record
    resolve = f"/api/v1/objections/{applied['number']}/resolve"
    assert (await api.call("POST", resolve, agency, json={"resolution": "upheld", "note": "x"}))[0] == 400
    status, refusal, _ = await api.call("POST", resolve, agency, json={"resolution": "refused", "note": "公示期未满"})
    assert status == 200 and refusal["new_version"] is None
    assert (await api.call("GET", f"/api/v1/verify/{report['verification_code']}"))[1]["status"] == "valid"

    repair = {"region": "tianjin", "record_id": record["record_id"], "note": "津信修〔2025〕12号"}
    assert (await api.call("POST", "/api/v1/repairs", owner, json=repair))[0] == 403
    assert (await api.call("POST", "/api/v1/repairs", agency, json={**repair, "region": "mars"}))[0] == 400
    assert (await api.call("POST", "/api/v1/repairs", agency, json={**repair, "record_id": "nope"}))[0] == 404
    status, repaired, _ = await api.call("POST", "/api/v1/repairs", agency, json=repair)
    assert status == 201 and repaired["resolution"] == "repaired" and repaired["record"]["status"] == "repaired"
    await _status(api, report["verification_code"], "superseded")

    # Listing and reading: authorities name a region; subjects see only their own.
    assert (await api.call("GET", "/api/v1/objections", agency))[0] == 400
    assert (await api.call("GET", "/api/v1/objections?region=tianjin&state=nope", agency))[0] == 400
    _, queue, _ = await api.call("GET", "/api/v1/objections?region=tianjin&kind=credit_repair", agency)
    assert [c["number"] for c in queue["objections"]] == [repaired["number"], applied["number"]]
    assert (await api.call("GET", f"/api/v1/objections/{applied['number']}", clean))[0] == 404
    assert (await api.call("GET", "/api/v1/objections/XX-1", owner))[0] == 400
    assert (await api.call("GET", f"/api/v1/objections/{applied['number']}/attachment", owner))[0] == 404
    _, theirs, _ = await api.call("GET", "/api/v1/objections", clean)
    assert theirs["objections"] == []


async def test_a_region_that_is_down_is_named_not_hidden(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _running, nodes = gateway
    owner = await api.login("records-co", "demo-records-2024")
    await nodes[next(iter(nodes))].node.stop(0)
    await asyncio.sleep(0)
    status, mine, _ = await api.call("GET", "/api/v1/objections", owner)
    assert status == 200 and list(mine["unavailable"]) == [next(iter(nodes)).value]


async def test_an_officer_of_one_region_decides_that_regions_cases_only(gateway) -> None:  # type: ignore[no-untyped-def]
    from gateway.access.auth import hash_password
    from gateway.registry import Account

    api, running, _nodes = gateway
    running.registry.add_account(
        Account("officer-tj", hash_password("officer-tj-2024"), "agency", None, "天津市认定机关", region="tianjin")
    )
    owner = await api.login("records-co", "demo-records-2024")
    officer = await api.login("officer-tj", "officer-tj-2024")
    _, report, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    numbers = {}
    for region in ("beijing", "tianjin"):
        record = records_in(report["report"], region)[0]
        body = {"report_no": report["report_no"], "record_id": record["record_id"], "reason": "记录有误"}
        numbers[region] = (await api.call("POST", "/api/v1/objections", owner, json=body))[1]["number"]

    assert (await api.call("GET", "/api/v1/objections?region=beijing", officer))[0] == 403
    _, queue, _ = await api.call("GET", "/api/v1/objections?region=tianjin", officer)
    assert [c["number"] for c in queue["objections"]] == [numbers["tianjin"]]
    decision = {"resolution": "upheld", "note": "经核实，维持"}
    status, problem, _ = await api.call(
        "POST", f"/api/v1/objections/{numbers['beijing']}/resolve", officer, json=decision
    )
    assert status == 403 and "tianjin" in problem["detail"]
    assert (await api.call("GET", f"/api/v1/objections/{numbers['beijing']}", officer))[0] == 403
    repair = {"region": "beijing", "record_id": records_in(report["report"], "beijing")[0]["record_id"], "note": "x"}
    assert (await api.call("POST", "/api/v1/repairs", officer, json=repair))[0] == 403
    status, done, _ = await api.call("POST", f"/api/v1/objections/{numbers['tianjin']}/resolve", officer, json=decision)
    assert status == 200 and done["resolved_by"] == "officer-tj"
