"""The check statistics table (协助核查情况统计表) against hostile batch lists, on a real
gateway over three real nodes: cells that a spreadsheet would run as formulas, control
characters that broke the XLSX, and entries holding a line break that were counted once
by the job and twice by the table."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import openpyxl
import pytest
from sqlalchemy import update

from gateway.batch import jobs as batch
from gateway.batch import tables
from nodes.seed import DEMO_SUBJECTS
from tests.security.conftest import Api

SUBJECTS = {demo.key: demo.id for demo in DEMO_SUBJECTS}
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\u2028", "\u2029"]
LINE_BREAKS = {"\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"}


@dataclass
class Checked:
    """A finished job, its table as CSV rows and as XLSX rows (after the title row), and
    its summary."""

    job_id: str
    total: int
    csv_text: str
    csv_rows: list[list[str]]
    title: Any
    xlsx_rows: list[list[Any]]
    summary: dict[str, Any]


async def _submit(api: Api, officer: str, subjects: list[str] | str, purpose: str = "资格审查") -> tuple[int, Any]:
    if isinstance(subjects, str):  # an uploaded CSV list
        status, data, _ = await api.fetch(
            "POST",
            f"/api/v1/batches?purpose={quote(purpose)}",
            officer,
            data=subjects.encode("utf-8"),
            headers={"Content-Type": "text/csv"},
        )
        return status, json.loads(data)
    status, body, _ = await api.call(
        "POST", "/api/v1/batches", officer, json={"purpose": purpose, "subjects": subjects}
    )
    return status, body


async def _tables(api: Api, officer: str, job_id: str) -> Checked:
    for _ in range(600):
        status, job, _ = await api.call("GET", f"/api/v1/batches/{job_id}", officer)
        assert status == 200, job
        if job["status"] == "done":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"batch {job_id} did not finish")
    status, text, _ = await api.call("GET", f"/api/v1/batches/{job_id}/table.csv", officer)
    assert status == 200 and text.startswith("\ufeff")
    csv_rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    status, data, _ = await api.fetch("GET", f"/api/v1/batches/{job_id}/table.xlsx", officer)
    assert status == 200, data.decode("utf-8", "replace")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    formulas = [cell.coordinate for row in sheet.iter_rows() for cell in row if cell.data_type == "f"]
    assert formulas == []  # every cell a value
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    status, summary, _ = await api.call("GET", f"/api/v1/batches/{job_id}/summary", officer)
    assert status == 200, summary
    return Checked(job_id, job["total"], text, csv_rows[1:], rows[0][0], rows[2:], summary["summary"])


async def _check(api: Api, officer: str, subjects: list[str] | str, purpose: str = "资格审查") -> Checked:
    status, job = await _submit(api, officer, subjects, purpose)
    assert status == 202, job
    return await _tables(api, officer, job["job_id"])


def _same_table(checked: Checked) -> None:
    """The XLSX holds the CSV's cells, 序号 as a number."""
    assert [row[0] for row in checked.xlsx_rows] == list(range(1, len(checked.csv_rows) + 1))
    as_text = [[str(v) if v is not None else "" for v in row] for row in checked.xlsx_rows]
    assert as_text == checked.csv_rows


def _counted_once(checked: Checked, n: int, rejected: int) -> None:
    assert checked.total == len(checked.csv_rows) == len(checked.xlsx_rows) == n
    assert checked.summary["counts"]["subjects"] == n and checked.summary["counts"]["rejected"] == rejected


async def test_cells_that_begin_like_a_formula_are_quoted_in_csv_and_xlsx(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    listed = [
        '=HYPERLINK("http://x","click")',
        "+1+2",
        "-1+2",
        "@SUM(A1:A9)",
        "=cmd|' /C calc'!A0",
        "\t=1+2",  # surrounding whitespace is trimmed when the job is stored
        "\r@SUM(1)",
    ]
    checked = await _check(api, officer, listed, purpose="=1+2")
    subjects = [row[1] for row in checked.csv_rows]
    assert subjects == [
        '\'=HYPERLINK("http://x","click")',
        "'+1+2",
        "'-1+2",
        "'@SUM(A1:A9)",
        "'=cmd|' /C calc'!A0",
        "'=1+2",
        "'@SUM(1)",
    ]
    _same_table(checked)
    _counted_once(checked, len(listed), rejected=len(listed))
    cells = [cell for row in checked.csv_rows for cell in row] + [
        v for row in checked.xlsx_rows for v in row if isinstance(v, str)
    ]
    assert not [cell for cell in cells if cell.startswith(TRIGGERS)]
    # A cell that would begin with a tab or CR has it escaped, so it begins with neither.
    assert [tables.table_text(v) for v in ("\t=1", "\r+1", "\t")] == ["\\x09=1", "\\x0d+1", "\\x09"]


async def test_every_control_character_gives_a_downloadable_xlsx(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    listed = [f"A{c}B" for c in CONTROLS] + [SUBJECTS["clean"]]
    checked = await _check(api, officer, listed, purpose="核查\x07\x1b\u2028事由")
    assert checked.title == "协助核查情况统计表 · 核查\\x07\\x1b\\u2028事由"
    _same_table(checked)
    _counted_once(checked, len(listed), rejected=len(CONTROLS))
    *refused, clean = checked.csv_rows
    for c, row in zip(CONTROLS, refused, strict=True):
        shown = f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
        assert row[1] == f"A{shown}B" and row[4] == "代码无效", (c, row)
        assert ("换行符" if c in LINE_BREAKS else "控制字符") in row[9], (c, row)
    assert clean[1] == SUBJECTS["clean"] and clean[4] == "三地均无记录"


async def test_an_entry_holding_a_line_break_is_one_invalid_entry_everywhere(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    records, clean = SUBJECTS["records"], SUBJECTS["clean"]
    # Two valid codes in one entry were two checked subjects in the table before.
    listed = [records, f"{clean}\n{records}", f"{clean}\r\n{records}", clean]
    checked = await _check(api, officer, listed)
    _counted_once(checked, 4, rejected=2)
    _same_table(checked)
    assert [row[1] for row in checked.csv_rows] == [
        records,
        f"{clean}\\x0a{records}",
        f"{clean}\\x0d\\x0a{records}",
        clean,
    ]
    assert [row[4] for row in checked.csv_rows] == ["有记录", "代码无效", "代码无效", "三地均无记录"]
    assert checked.summary["counts"]["with_records"] == 1 and checked.summary["counts"]["clear"] == 1

    # An upload: rows end at CR, LF or CRLF; a quoted line break, U+2028, U+2029 or NEL
    # inside a row keeps the row one entry.
    upload = f'{records}\r\n"{clean}\n{records}"\r\nX\u2028Y\rX\u2029Y\nX\x85Y\n{clean}\r'
    checked = await _check(api, officer, upload)
    _counted_once(checked, 6, rejected=4)
    assert [row[1] for row in checked.csv_rows] == [
        records, f"{clean}\\x0a{records}", "X\\u2028Y", "X\\u2029Y", "X\\x85Y", clean
    ]  # fmt: skip
    assert all("换行符" in row[9] for row in checked.csv_rows[1:5])


async def test_the_size_cap_counts_entries_as_the_table_does(gateway, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    monkeypatch.setattr(batch, "MAX_SUBJECTS", 3)
    clean = SUBJECTS["clean"]
    at_cap = [clean, "A\nB\nC", "D\u2028E"]
    uploaded = f'{clean}\n"A\nB\rC"\nD\u2028E\n'
    for subjects in (at_cap, uploaded):
        status, job = await _submit(api, officer, subjects)
        assert status == 202 and job["total"] == 3, job
        _counted_once(await _tables(api, officer, job["job_id"]), 3, rejected=2)
    for subjects in ([*at_cap, "X"], uploaded + "X\n"):
        status, problem = await _submit(api, officer, subjects)
        assert status == 400 and "at most 3 subjects, got 4" in problem["detail"], problem


async def test_ordinary_subjects_and_numbers_are_unchanged(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    listed = [SUBJECTS["records"], SUBJECTS["clean"], SUBJECTS["person"], "91110108MA01RXNE2X", "ABC-=1@x"]
    checked = await _check(api, officer, listed)
    _same_table(checked)
    assert [row[1] for row in checked.csv_rows] == listed
    assert [row[0] for row in checked.csv_rows] == ["1", "2", "3", "4", "5"]
    assert not [cell for row in checked.csv_rows for cell in row if cell.startswith("'") or "\\x" in cell]
    found = checked.csv_rows[0][8]
    assert "北京·" in found and "×" in found  # the counts stay in the domain cell as written
    assert checked.csv_text.splitlines()[1].startswith("1,")  # 序号 written as a bare number


async def test_a_job_stored_before_chunks_were_json_still_reads(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    listed = [SUBJECTS["records"], "not-a-code", SUBJECTS["clean"]]
    checked = await _check(api, officer, listed)

    def store_the_old_way() -> None:
        from infra.db import sync_engine

        engine = sync_engine(running.settings.db_url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    update(batch.inputs)
                    .where(batch.inputs.c.job_id == checked.job_id)
                    .values(subjects="\n".join(listed))
                )
        finally:
            engine.dispose()

    await asyncio.to_thread(store_the_old_way)
    again = await _tables(api, officer, checked.job_id)
    assert again.csv_rows == checked.csv_rows and [row[1] for row in again.csv_rows] == listed


async def test_names_from_an_uploaded_list_are_neutralised_too(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    officer = await api.login("agency", "demo-agency-2024")
    clean, records = SUBJECTS["clean"], SUBJECTS["records"]
    hostile = ['=HYPERLINK("http://x","click")', "@SUM(A1:A9)", "名称\x07响铃", "+1+2"]
    upload = "企业名称,统一社会信用代码\n" + "".join(
        f'"{name.replace(chr(34), chr(34) * 2)}",{code}\n'
        for name, code in zip(hostile, [clean, records, clean, "-1+2"], strict=True)
    )
    checked = await _check(api, officer, upload)
    _same_table(checked)
    _counted_once(checked, 4, rejected=1)
    assert [row[2] for row in checked.csv_rows] == [
        '\'=HYPERLINK("http://x","click")',
        "'@SUM(A1:A9)",
        "名称\\x07响铃",
        "'+1+2",
    ]
    assert [row[1] for row in checked.csv_rows][3] == "'-1+2"
    assert [row[4] for row in checked.csv_rows] == ["三地均无记录", "有记录", "重复", "代码无效"]
    assert checked.summary["counts"]["duplicates"] == 1
