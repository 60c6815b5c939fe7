"""Registers of market entities load as published: layouts, encodings, bad rows with
their reasons, upserts, and the node's records left alone."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from credit.catalogue import catalogue
from credit.errors import InvalidInput
from credit.identifiers import make_resident_id, make_uscc
from credit.regions import Region
from infra.db import sync_engine
from nodes.db import migrate
from nodes.ingest import IngestReport, RowRules, ingest_file
from nodes.registers import registrations
from nodes.store import records

TODAY = date(2025, 6, 16)
A = make_uscc("91120116MA05JBXQ0")
B = make_uscc("91120104MA06KLMN2")
C = make_uscc("92120101MA07PQRT3")  # a 个体工商户's code

HEADER = ["统一社会信用代码", "企业名称", "法定代表人", "住所", "登记机关", "成立日期", "登记状态", "注册资本（万元）"]
GOOD = [
    [
        A,
        "天津清源科技有限公司",
        "张达博",
        "天津市滨海新区平谊路153号",
        "天津市滨海新区市场监督管理局",
        "2015-11-05",
        "存续",
        "500",
    ],
    [
        f" {B.lower()} ",
        "天津南开贸易有限公司",
        "李四",
        "天津市南开区人民路1号",
        "天津市南开区市场监督管理局",
        "2018年3月1日",
        "吊销，未注销",
        "",
    ],
    [C, "南开区小王餐馆", "王五", "天津市南开区胜利路8号", "天津市和平区市场监督管理局", "", "在业", ""],
]
BAD = [
    ([A[:-1] + ("0" if A[-1] != "0" else "1"), "坏校验", "", "", "", "", "存续", ""], "check character"),
    ([make_resident_id("12010419850312004"), "王某", "", "", "", "", "", ""], "resident ID number"),
    (["", "只有注册号", "", "", "", "", "", ""], "no unified social credit code"),
    ([make_uscc("91120101MA07AAAA1"), "", "赵六", "", "", "", "存续", ""], "subject_name"),
    ([make_uscc("91120101MA07AAAB1"), "坏日期", "", "", "", "2024-02-30", "", ""], "not a valid date"),
    ([make_uscc("91120101MA07AAAC1"), "未来", "", "", "", "2099-01-01", "", ""], "future"),
    ([make_uscc("91120101MA07AAAD1"), "地址过长", "", "路" * 301, "", "", "", ""], "address longer than 300"),
    (["1.2011E+17", "科学计数", "", "", "", "", "", ""], "Excel"),
]


def write(path: Path, header: list[str], rows: list[list[str]], *, encoding: str = "utf-8", title: str = "") -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    if title:
        writer.writerow([title])
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def ingest(db: str, path: Path, **kwargs: Any) -> IngestReport:
    migrate(db)
    engine = sync_engine(db)
    try:
        return ingest_file(path, engine=engine, rules=RowRules(catalogue(Region.TIANJIN), today=TODAY), **kwargs)
    finally:
        engine.dispose()


def register(db: str) -> dict[str, dict[str, Any]]:
    engine = sync_engine(db)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(records)).scalar() == 0  # never records
            return {r.subject_id: dict(r._mapping) for r in conn.execute(select(registrations))}
    finally:
        engine.dispose()


def test_a_register_loads_into_the_register_and_bad_rows_are_rejected_with_reasons(db_url: str, tmp_path: Path) -> None:
    rows = [GOOD[0], *[row for row, _ in BAD], GOOD[1], GOOD[2], ["合计：3 户"] + [""] * 7]
    path = write(tmp_path / "register.csv", HEADER, rows, title="天津市市场主体登记信息（2025年5月）")
    report = ingest(db_url, path)

    assert report.layout == "market-entity-register" and report.layout_name == "市场主体登记信息"
    assert (report.counts.added, report.counts.changed, report.counts.unchanged) == (3, 0, 0)
    assert report.footer == 1
    assert [r.line for r in report.rejects] == list(range(4, 4 + len(BAD)))
    for reject, (_, reason) in zip(report.rejects, BAD, strict=True):
        assert reason in reject.reason, (reject, reason)
    stored = register(db_url)
    assert set(stored) == {A, B, C}
    assert stored[A]["name"] == "天津清源科技有限公司" and stored[A]["legal_rep"] == "张达博"
    assert stored[A]["address"] == "天津市滨海新区平谊路153号"
    assert stored[A]["authority"] == "天津市滨海新区市场监督管理局"
    assert stored[A]["established_on"] == date(2015, 11, 5) and stored[A]["status"] == "存续"
    assert stored[B]["established_on"] == date(2018, 3, 1) and stored[B]["status"] == "吊销，未注销"
    assert stored[C]["established_on"] is None
    assert any("register" in line or "登记" in line for line in report.summary())


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_the_other_headers_registers_use_in_either_encoding(tmp_path: Path, encoding: str) -> None:
    header = ["序号", "主体名称", "统一社会信用代码", "经营者", "经营场所", "登记机关", "成立日期", "经营状态"]
    rows = [
        ["1", "南开区小王餐馆", C, "王五", "天津市南开区胜利路8号", "天津市南开区市场监督管理局", "2019/7/1", "在业"]
    ]
    db = f"sqlite:///{tmp_path / 'node.db'}"
    report = ingest(db, write(tmp_path / "个体户.csv", header, rows, encoding=encoding))
    assert report.encoding == {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (BOM)", "gb18030": "GB18030"}[encoding]
    assert report.counts.added == 1 and not report.rejects
    entry = register(db)[C]
    assert (entry["name"], entry["legal_rep"], entry["address"]) == ("南开区小王餐馆", "王五", "天津市南开区胜利路8号")
    assert (entry["established_on"], entry["status"]) == (date(2019, 7, 1), "在业")


def test_a_workbook_register(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(
        ["法定代表人（负责人、经营者）", "住所（经营场所）", "名称", "统一社会信用代码", "成立日期", "登记状态"]
    )
    sheet.append(["张达博", "天津市滨海新区平谊路153号", "天津清源科技有限公司", A, datetime(2015, 11, 5), "存续"])
    path = tmp_path / "register.xlsx"
    book.save(path)
    db = f"sqlite:///{tmp_path / 'node.db'}"
    report = ingest(db, path)
    assert report.counts.added == 1 and not report.rejects
    assert register(db)[A]["legal_rep"] == "张达博" and register(db)[A]["established_on"] == date(2015, 11, 5)


def test_loading_again_changes_nothing_and_a_changed_entry_is_replaced(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "v1.csv", HEADER, GOOD)
    ingest(db_url, path)
    again = ingest(db_url, path)
    assert (again.counts.added, again.counts.changed, again.counts.unchanged) == (0, 0, 3)

    moved = [*GOOD[0][:3], "天津市和平区新址路2号", *GOOD[0][4:6], "迁出", ""]
    report = ingest(db_url, write(tmp_path / "v2.csv", HEADER, [moved, GOOD[1]]))
    assert (report.counts.added, report.counts.changed, report.counts.unchanged) == (0, 1, 1)
    stored = register(db_url)
    assert (stored[A]["address"], stored[A]["status"], stored[A]["source"]) == (
        "天津市和平区新址路2号",
        "迁出",
        "v2.csv",
    )
    assert len(stored) == 3  # an entry a later file leaves out stays


def test_a_dry_run_and_a_repeated_subject(db_url: str, tmp_path: Path) -> None:
    report = ingest(db_url, write(tmp_path / "dry.csv", HEADER, GOOD), dry_run=True)
    assert report.counts.added == 3 and register(db_url) == {}
    later = [*GOOD[0][:6], "注销", ""]
    report = ingest(db_url, write(tmp_path / "twice.csv", HEADER, [GOOD[0], later]))
    assert report.counts.added == 1 and any("later row stands" in w for w in report.warnings)
    assert register(db_url)[A]["status"] == "注销"


def test_a_file_no_layout_reads_names_the_register_columns_it_lacks(tmp_path: Path) -> None:
    path = write(
        tmp_path / "names.csv", ["统一社会信用代码", "企业名称", "法定代表人"], [[A, "天津清源科技有限公司", "张"]]
    )
    with pytest.raises(InvalidInput) as caught:
        ingest(f"sqlite:///{tmp_path / 'node.db'}", path)
    assert "市场主体登记信息" in caught.value.detail and "成立日期" in caught.value.detail
