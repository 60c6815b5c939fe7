"""Batch checks (信用互查互认) on a real gateway over three real nodes: the table in CSV and
XLSX, invalid codes listed with the reason, a signed summary, and a job interrupted by a
gateway restart finishing with a complete, duplicate-free result."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
from datetime import datetime
from typing import Any

import aiohttp
import openpyxl
from sqlalchemy import func, select

from credit.clock import CHINA_TZ
from credit.regions import Region
from credit.signing import TokenType, verify
from gateway.batch.jobs import results
from gateway.server import start_gateway
from nodes.seed import DEMO_SUBJECTS, synthetic_subject
from tests.gateway.conftest import Api

SUBJECTS = {demo.key: demo.id for demo in DEMO_SUBJECTS}


async def _until_done(api: Api, token: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
    for _ in range(int(timeout / 0.1)):
        status, body, _ = await api.call("GET", f"/api/v1/batches/{job_id}", token)
        assert status == 200, body
        if body["status"] == "done":
            return dict(body)
        await asyncio.sleep(0.1)
    raise AssertionError(f"batch {job_id} did not finish")


def _table(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")  # spreadsheet programs need the BOM to read Chinese
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


async def test_a_batch_with_invalid_codes_gives_the_table_and_a_signed_summary(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    listed = [SUBJECTS["records"], SUBJECTS["clean"], "91110108MA01RXNE2X", SUBJECTS["person"], "not-a-code"]
    status, job, reply = await api.call(
        "POST", "/api/v1/batches", officer, json={"purpose": "评优评先资格审查", "subjects": listed, "years": 3}
    )
    assert status == 202, job
    assert reply.headers["Location"] == f"/api/v1/batches/{job['job_id']}"
    done = await _until_done(api, officer, job["job_id"])
    assert done["total"] == 5
    assert all(p["chunks_done"] == p["chunks"] == 1 for p in done["progress"].values())

    status, text, _ = await api.call("GET", f"/api/v1/batches/{job['job_id']}/table.csv", officer)
    assert status == 200
    rows = _table(text)
    header, body = rows[0], rows[1:]
    assert header[:5] == ["序号", "主体代码", "名单所列名称", "主体类型", "核查结果"]
    assert header[5:] == ["北京", "天津", "河北", "有记录的领域", "说明"]
    assert [r[1] for r in body] == listed  # every subject, in the order given, none dropped
    records, clean, bad_check, person, nonsense = body
    assert records[4] == "有记录" and records[5:8] == ["有记录", "有记录", "无记录"] and "北京·" in records[8]
    assert clean[4] == "三地均无记录" and clean[5:8] == ["无记录"] * 3
    assert bad_check[4] == "代码无效" and "校验码" in bad_check[9]
    assert nonsense[4] == "代码无效" and nonsense[9]
    assert person[3] == "自然人" and person[4] == "有记录" and person[6] == "有记录"

    status, data, reply = await _raw(api, f"/api/v1/batches/{job['job_id']}/table.xlsx", officer)
    assert status == 200 and reply.content_type.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
    cells = [[str(c) if c is not None else "" for c in row] for row in sheet.iter_rows(values_only=True)]
    assert cells[1] == header and cells[2:] == body

    status, summary, _ = await api.call("GET", f"/api/v1/batches/{job['job_id']}/summary", officer)
    assert status == 200
    document = verify(summary["jws"], running.service.keyring, typ=TokenType.BATCH_SUMMARY)
    assert document == summary["summary"]
    assert document["counts"] == {
        "subjects": 5,
        "rejected": 2,
        "with_records": 2,
        "clear": 1,
        "incomplete": 0,
        "duplicates": 0,
        "empty": 0,
    }
    assert document["purpose"] == "评优评先资格审查" and document["requested_by"] == "agency"
    assert document["table_csv_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()

    # The batch is in the audit log with its purpose, and each node logged its call.
    admin = await api.login("admin", "demo-admin-2024")
    _, log, _ = await api.call("GET", "/api/v1/audit?actor=agency", admin)
    batch_entries = [e for e in log["entries"] if e["action"] == "batch_check"]
    assert len(batch_entries) == 2 and {e["purpose"] for e in batch_entries} == {"评优评先资格审查"}


async def _raw(api: Api, path: str, token: str) -> tuple[int, bytes, aiohttp.ClientResponse]:
    return await api.fetch("GET", path, token)


async def test_bad_batches_are_refused(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    owner = await api.login("clean-co", "demo-clean-2024")
    one = {"purpose": "核查", "subjects": [SUBJECTS["clean"]]}
    assert (await api.call("POST", "/api/v1/batches", owner, json=one))[0] == 403
    for body, field in (
        ({"subjects": [SUBJECTS["clean"]]}, "purpose"),
        ({"purpose": "核查", "subjects": []}, "subjects"),
        ({"purpose": "核查", "subjects": "x"}, "subjects"),
        ({"purpose": "核查", "subjects": [SUBJECTS["clean"]], "years": 4}, "years"),
    ):
        status, problem, _ = await api.call("POST", "/api/v1/batches", officer, json=body)
        assert status == 400 and problem["invalid-params"][0]["name"] == field, (body, problem)
    too_many = json.dumps({"purpose": "核查", "subjects": ["x"] * 1_000_001}).encode()
    status, data, _ = await api.fetch(
        "POST", "/api/v1/batches", officer, data=io.BytesIO(too_many), headers={"Content-Type": "application/json"}
    )
    problem = json.loads(data)
    assert status == 400 and "1,000,000" in problem["detail"]
    status, problem, _ = await api.call("GET", "/api/v1/batches/b_nonexistent", officer)
    assert status == 404
    # A CSV upload with a header row and a GBK-free UTF-8 BOM works too.
    listed = "\ufeff统一社会信用代码\n" + "\n".join([SUBJECTS["clean"], SUBJECTS["records"]]) + "\n"
    status, data, _ = await api.fetch(
        "POST",
        "/api/v1/batches?purpose=%E6%A0%B8%E6%9F%A5",
        officer,
        data=listed.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert status == 202
    job = json.loads(data)
    assert job["total"] == 2 and job["purpose"] == "核查"
    await _until_done(api, officer, job["job_id"])


async def test_a_batch_interrupted_by_a_restart_resumes_without_duplicates(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    listed = [synthetic_subject(Region.TIANJIN, i).id for i in range(40_000)]
    status, job, _ = await api.call(
        "POST", "/api/v1/batches", officer, json={"purpose": "资格审查", "subjects": listed}
    )
    assert status == 202
    await asyncio.sleep(0.15)
    await running.stop()  # mid-way: some chunks answered (perhaps none yet), others not

    def answered() -> int:
        from infra.db import sync_engine

        engine = sync_engine(running.settings.db_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(results)).scalar_one())
        finally:
            engine.dispose()

    before = answered()
    assert before < 8 * 3, "the job finished before the restart; the test needs it unfinished"

    again = await start_gateway(running.settings)
    try:
        async with aiohttp.ClientSession() as http:
            api2 = Api(http, again.url)
            token = await api2.login("agency", "demo-agency-2024")
            done = await _until_done(api2, token, job["job_id"], timeout=120)
            assert done["total"] == 40_000
            status, text, _ = await api2.call("GET", f"/api/v1/batches/{job['job_id']}/table.csv", token)
            rows = _table(text)[1:]
            assert [r[1] for r in rows] == listed  # complete, in order, nothing twice
            # The synthetic list repeats some identifiers: each repeat says which row it repeats.
            first: dict[str, int] = {}
            for r in rows:
                seen = first.setdefault(r[1], int(r[0]))
                if seen == int(r[0]):
                    assert r[4] in ("三地均无记录", "有记录"), r
                else:
                    assert r[4] == "重复" and r[9] == f"与第 {seen} 行重复，核查结果见该行", r
            assert len(first) < len(rows)
    finally:
        await again.stop()
    assert answered() == 8 * 3  # one answer per chunk and region, however often it was asked


async def test_batches_over_grpc(gateway) -> None:  # type: ignore[no-untyped-def]
    import grpc

    from protos.credit.v1 import gateway_pb2 as gpb
    from protos.credit.v1 import gateway_pb2_grpc

    api, running, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    metadata = (("authorization", f"Bearer {officer}"),)
    async with grpc.aio.insecure_channel(running.grpc_address) as channel:
        stub = gateway_pb2_grpc.ReportGatewayStub(channel)
        listed = [SUBJECTS["records"], "bad"]
        job = await stub.SubmitBatch(gpb.SubmitBatchRequest(purpose="信用核查", subject_ids=listed), metadata=metadata)
        assert job.total == 2 and job.job_id.startswith("b_")
        for _ in range(300):
            job = await stub.GetBatch(gpb.GetBatchRequest(job_id=job.job_id), metadata=metadata)
            if job.status == "done":
                break
            await asyncio.sleep(0.1)
        assert job.status == "done" and {p.region for p in job.progress} == {"beijing", "tianjin", "hebei"}
        assert verify(job.summary_jws, running.service.keyring, typ=TokenType.BATCH_SUMMARY)["counts"]["rejected"] == 1
        pieces = [p.csv async for p in stub.GetBatchTable(gpb.GetBatchRequest(job_id=job.job_id), metadata=metadata)]
        rows = _table(b"".join(pieces).decode("utf-8"))[1:]
        assert [r[1] for r in rows] == listed and rows[1][4] == "代码无效"
        owner = await api.login("clean-co", "demo-clean-2024")
        try:
            await stub.SubmitBatch(
                gpb.SubmitBatchRequest(purpose="x", subject_ids=listed),
                metadata=(("authorization", f"Bearer {owner}"),),
            )
            raise AssertionError("an enterprise submitted a batch")
        except grpc.aio.AioRpcError as refused:
            assert refused.code() is grpc.StatusCode.PERMISSION_DENIED


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")  # a code's single letters (校验码应为 'H') are no English


def _officers_workbook(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_every_row_of_an_uploaded_workbook_is_a_row_of_the_tables(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    records, clean, person = SUBJECTS["records"], SUBJECTS["clean"], SUBJECTS["person"]
    uploaded = [
        ["2025 年度评优评先名单"],
        ["序号", "企业名称", "统一社会信用代码"],
        [1, "某某科技有限公司", records],
        [2, "某某商贸有限公司", clean],
        [3, None, None],
        [4, "张三", person],
        [5, "某某科技有限公司（重复）", records.lower()],
        [6, "校验码错误的公司", "91110108MA01RXNE2X"],
        [7, "没有代码的公司", None],
        [8, "某某商贸有限公司", clean],
    ]
    status, data, _ = await api.fetch(
        "POST",
        "/api/v1/batches?purpose=%E8%AF%84%E4%BC%98",
        officer,
        data=_officers_workbook(uploaded),
        headers={"Content-Type": XLSX_TYPE},
    )
    job = json.loads(data)
    assert status == 202 and job["total"] == 8, job  # every row of the list, the blank one too
    await _until_done(api, officer, job["job_id"])

    status, text, _ = await api.call("GET", f"/api/v1/batches/{job['job_id']}/table.csv", officer)
    rows = _table(text)[1:]
    assert [r[0] for r in rows] == [str(n) for n in range(1, 9)]  # 序号: the list's rows, in order
    assert [r[1] for r in rows] == [records, clean, "", person, records.lower(), "91110108MA01RXNE2X", "", clean]
    assert [r[2] for r in rows] == [
        "某某科技有限公司", "某某商贸有限公司", "", "张三", "某某科技有限公司（重复）", "校验码错误的公司",
        "没有代码的公司", "某某商贸有限公司",
    ]  # fmt: skip
    assert [r[4] for r in rows] == ["有记录", "三地均无记录", "空行", "有记录", "重复", "代码无效", "代码无效", "重复"]
    notes = [r[9] for r in rows]
    assert (
        notes[2] == "空行，未核查"
        and notes[4] == "与第 1 行重复，核查结果见该行"
        and notes[7].startswith("与第 2 行重复")
    )
    assert "校验码" in notes[5] and notes[6] == "未填写主体代码"
    assert not [note for note in notes if ENGLISH_WORD.search(note)]  # 说明 in Chinese only

    status, summary, _ = await api.call("GET", f"/api/v1/batches/{job['job_id']}/summary", officer)
    counts = summary["summary"]["counts"]
    assert counts == {
        "subjects": 8, "with_records": 2, "clear": 1, "incomplete": 0, "rejected": 2, "duplicates": 2, "empty": 1
    }  # fmt: skip
    assert sum(v for k, v in counts.items() if k != "subjects") == counts["subjects"]
    assert all(sum(region.values()) == 3 for region in summary["summary"]["regions"].values())  # the checked ones

    status, data, _ = await api.fetch("GET", f"/api/v1/batches/{job['job_id']}/table.xlsx", officer)
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet, about = book.worksheets
    assert sheet.title == "协助核查情况统计表" and sheet.freeze_panes == "A3"
    assert sheet.auto_filter.ref == "A2:J10"
    assert [sheet.cell(2, c).value for c in range(1, 11)] == _table(text)[0]
    assert [sheet.cell(r, 1).value for r in range(3, 11)] == list(range(1, 9))
    assert all(sheet.cell(r, 1).data_type == "n" for r in range(3, 11))  # 序号 a number
    widths = {letter: sheet.column_dimensions[letter].width for letter in "ABCDEJ"}
    assert widths["C"] >= 2 * len("某某科技有限公司（重复）") and widths["B"] >= 18 and widths["A"] < widths["B"]
    assert widths["J"] >= 2 * len("与第 1 行重复，核查结果见该行") - 4
    facts = {row[0]: row[1] for row in about.iter_rows(values_only=True)}
    assert isinstance(facts["提交时间（北京时间）"], datetime) and isinstance(facts["完成时间（北京时间）"], datetime)
    assert facts["核查事由"] == "评优" and facts["名单行数"] == 8 and facts["重复"] == 2 and facts["空行"] == 1
    created = datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))
    assert facts["提交时间（北京时间）"] == created.astimezone(CHINA_TZ).replace(tzinfo=None)


async def test_names_sent_with_a_json_list_are_kept_and_must_match_it(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    body = {"purpose": "核查", "subjects": [SUBJECTS["clean"], ""], "names": ["某某商贸有限公司", ""]}
    status, job, _ = await api.call("POST", "/api/v1/batches", officer, json=body)
    assert status == 202, job
    await _until_done(api, officer, job["job_id"])
    status, text, _ = await api.call("GET", f"/api/v1/batches/{job['job_id']}/table.csv", officer)
    assert [(r[1], r[2], r[4]) for r in _table(text)[1:]] == [
        (SUBJECTS["clean"], "某某商贸有限公司", "三地均无记录"),
        ("", "", "空行"),
    ]
    for names in (["只有一个"], [1, 2], ["长" * 201, ""]):
        status, problem, _ = await api.call("POST", "/api/v1/batches", officer, json={**body, "names": names})
        assert status == 400 and problem["invalid-params"][0]["name"] == "names", problem
