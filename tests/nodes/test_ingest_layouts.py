"""Authorities' files as published: every layout, encoding and value form, each stored
field checked; rejects are exactly the invalid rows, each with its reason."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from credit.catalogue import catalogue
from credit.errors import InvalidInput
from credit.regions import Region
from infra.db import sync_engine
from nodes.db import migrate
from nodes.ingest import IngestReport, RowRules, file_options, ingest_file
from nodes.store import records

TODAY = date(2025, 6, 16)
CO = "91120116MA05JBXQ06"  # a valid credit code (Tianjin)
TRADER = "92120101MA00000019"  # a sole trader's credit code
OPERATOR = "120101198503121230"  # the operator's resident ID number
PERSON = "130102199001014569"

NATIONAL = [
    "行政相对人名称", "行政相对人类别", "行政相对人代码_1（统一社会信用代码）", "行政相对人代码_2(工商注册号)",
    "行政相对人代码_3(组织机构代码)", "行政相对人代码_4(税务登记号)", "行政相对人代码_5(事业单位证书号)",
    "行政相对人代码_6(社会组织登记证号)", "法定代表人", "法定代表人证件类型", "法定代表人证件号码", "证件类型",
    "证件号码", "行政处罚决定书文号", "违法行为类型", "违法事实", "处罚依据", "处罚类别", "处罚内容",
    "罚款金额（万元）", "没收违法所得、没收非法财物的金额（万元）", "暂扣或吊销证照名称及编号", "处罚决定日期",
    "处罚有效期", "公示截止期", "处罚机关", "处罚机关统一社会信用代码", "数据来源单位",
    "数据来源单位统一社会信用代码", "备注",
]  # fmt: skip
assert len(NATIONAL) == 30
MARKET = "天津市和平区市场监督管理局"


def national(**cells: str) -> list[str]:
    """One row of the 2021 standard; keyword names are the fields this test sets."""
    names = {
        "name": 0, "type": 1, "uscc": 2, "reg_no": 3, "rep": 8, "rep_id_type": 9, "rep_id": 10, "id_type": 11,
        "id": 12, "no": 13, "category": 17, "content": 18, "fine": 19, "decided": 22, "until": 24, "authority": 25,
    }  # fmt: skip
    row = [""] * 30
    row[0], row[1], row[2], row[13] = "天津甲公司", "法人及非法人组织", CO, "津和市监罚〔2024〕1号"
    row[17], row[18], row[22], row[25] = "罚款", "罚款5000元", "2024-03-15", MARKET
    for key, value in cells.items():
        row[names[key]] = value
    return row


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, encoding: str = "utf-8", crlf: bool = False,
              title: str = "") -> Path:  # fmt: skip
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    if title:
        writer.writerow([title])
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


Loaded = tuple[IngestReport, list[dict[str, Any]]]


def load(tmp_path: Path, path: Path, *, region: Region = Region.TIANJIN, **kwargs: Any) -> Loaded:
    db = f"sqlite:///{tmp_path / 'node.db'}"
    migrate(db)
    engine = sync_engine(db)
    options = file_options(kwargs.pop("domain", ""), kwargs.pop("scope", ""))
    try:
        rules = RowRules(catalogue(region), today=TODAY, options=options)
        report = ingest_file(path, engine=engine, rules=rules, **kwargs)
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(records).where(records.c.current))]
    finally:
        engine.dispose()
    return report, rows


def by_no(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["decision_no"]: r for r in rows}


FIELDS = [
    # every date form, markers for "no end", and Excel serials
    national(no="D-iso", decided="2024-03-15", until="—"),
    national(no="D-slash", decided="2024/3/5 0:00:00", until="长期"),
    national(no="D-time", decided="2023-05-06 00:00:00", until="2026-05-05T00:00:00"),
    national(no="D-zh", decided="2023年5月6日", until="-"),
    national(no="D-dot", decided="2023.05.06", until="— —"),
    national(no="D-compact", decided="20230506", until="/"),
    national(no="D-serial", decided="45052", until="无"),
    # subjects
    national(no="S-trader-code", type="个体工商户", uscc=TRADER, name="和平区某某小吃店"),
    national(
        no="S-trader-id",
        type="个体工商户",
        uscc="",
        rep="张三",
        rep_id_type="身份证",
        rep_id=OPERATOR,
        name="和平区张三便利店",
    ),
    national(no="S-trader-in-code", type="个体工商户", uscc=OPERATOR, name="和平区张三水果店"),
    national(no="S-person", type="自然人", uscc="", id_type="身份证", id=PERSON, name="李四"),
    national(no="S-fullwidth", uscc=" ９１１２０１１６ＭＡ０５ＪＢＸＱ０６ ", name="天津甲公司"),
    national(no="S-apostrophe", uscc="'" + CO.lower()),
    # procedure and category
    national(no="津和市监（当场）决字〔2024〕3号"),
    national(no="津和市监简易罚〔2024〕4号"),
    national(no="N-not-penalised", category="其他", content="依法不予行政处罚"),
    national(no="N-fine-only", content="", fine="0.50"),
]
INVALID = [
    (
        national(no="X-passport", type="自然人", uscc="", id_type="护照", id="E12345678", name="John"),
        "identity document",
    ),
    (national(no="X-excel", uscc="9.1120E+17"), "Excel"),
    (national(no="X-day-first", decided="06/05/2023"), "ambiguous"),
    (national(no="X-bad-date", decided="2023-02-30"), "not a valid date"),
    (national(no="X-future", decided="2099-01-01"), "future"),
    (national(no="X-no-code", uscc="", reg_no="120101000012345"), "registration number"),
    (national(no="X-id-as-code", uscc=PERSON), "resident ID number is given as the code"),
    (national(no="X-unmapped", authority="天津市和平区某某协调办公室"), "maps to no domain"),
    (national(no="X-no-name", name="—"), "subject_name"),
    (national(no="X-publicity", until="2020-01-01"), "publicity ends before"),
]


@pytest.mark.parametrize(
    ("encoding", "crlf", "title"),
    [
        ("utf-8", False, ""),
        ("utf-8-sig", True, ""),
        ("gb18030", False, "天津市和平区行政处罚信息公示表"),
        ("gb18030", True, ""),
    ],
)
def test_the_national_standard_loads_every_field(tmp_path: Path, encoding: str, crlf: bool, title: str) -> None:
    rows = [
        *FIELDS,
        *(r for r, _ in INVALID),
        ["合计：27 条", *[""] * 29],
        [""] * 30,
        ["制表单位：天津市和平区"] + [""] * 29,
    ]
    path = write_csv(tmp_path / "penalties.csv", NATIONAL, rows, encoding=encoding, crlf=crlf, title=title)
    report, stored = load(tmp_path, path)

    assert report.layout == "national-penalty-2021"
    assert report.encoding == {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (BOM)", "gb18030": "GB18030"}[encoding]
    assert (report.counts.added, len(report.rejects), report.footer, report.blank) == (len(FIELDS), len(INVALID), 2, 1)
    first = 3 if title else 2
    for reject, (row, reason) in zip(report.rejects, INVALID, strict=True):
        assert reason in reject.reason, (reject, reason)
        assert reject.line == first + len(FIELDS) + INVALID.index((row, reason))
    got = by_no(stored)
    for no, decided, until in [
        ("D-iso", date(2024, 3, 15), None), ("D-slash", date(2024, 3, 5), None),
        ("D-time", date(2023, 5, 6), date(2026, 5, 5)), ("D-zh", date(2023, 5, 6), None),
        ("D-dot", date(2023, 5, 6), None), ("D-compact", date(2023, 5, 6), None), ("D-serial", date(2023, 5, 6), None),
    ]:  # fmt: skip
        assert (got[no]["decided_on"], got[no]["publicity_until"]) == (decided, until), no
    assert (got["S-trader-code"]["subject_id"], got["S-trader-code"]["subject_kind"]) == (TRADER, "enterprise")
    for no in ("S-trader-id", "S-trader-in-code"):
        assert (got[no]["subject_id"], got[no]["subject_kind"]) == (OPERATOR, "person"), no
    assert got["S-trader-id"]["subject_name"] == "和平区张三便利店"  # the business name is kept
    assert (got["S-person"]["subject_id"], got["S-person"]["subject_kind"]) == (PERSON, "person")
    assert got["S-fullwidth"]["subject_id"] == got["S-apostrophe"]["subject_id"] == CO
    assert got["津和市监（当场）决字〔2024〕3号"]["procedure"] == "simplified"
    assert got["津和市监简易罚〔2024〕4号"]["procedure"] == "simplified"
    assert got["D-iso"]["procedure"] == "general"
    assert got["N-not-penalised"]["category"] == "不予行政处罚"
    assert got["N-fine-only"]["content"] == "罚款 0.5 万元"
    assert {r["domain"] for r in stored} == {"market_regulation"}
    assert {r["scope"] for r in stored} == {"administrative_penalty"}
    assert {r["status"] for r in stored} == {"in_force"}


def test_decisions_without_a_number_never_merge_and_one_decision_in_two_rows_is_one_record(tmp_path: Path) -> None:
    rows = [
        national(no="无", decided="2024-01-05", content="罚款1000元"),
        national(no="/", decided="2023-02-06", content="罚款2000元"),
        national(no="", decided="2022-03-07", content="警告"),
        national(no="津和罚〔2024〕8号", category="罚款", content="罚款5000元"),
        national(no="津和罚〔2024〕8号", category="没收违法所得", content="没收违法所得2000元"),
        national(no="津和罚〔2024〕9号", decided="2024-01-01"),
        national(no="津和罚〔2024〕9号", decided="2022-01-01"),
    ]
    report, stored = load(tmp_path, write_csv(tmp_path / "p.csv", NATIONAL, rows))
    assert report.counts.added == 6 and not report.rejects
    unnumbered = sorted(r["decided_on"] for r in stored if r["decision_no"] == "")
    assert unnumbered == [date(2022, 3, 7), date(2023, 2, 6), date(2024, 1, 5)]
    joined = [r for r in stored if r["decision_no"] == "津和罚〔2024〕8号"]
    assert len(joined) == 1 and joined[0]["version"] == 1
    assert joined[0]["category"] == "罚款；没收违法所得"
    assert joined[0]["content"] == "罚款5000元；没收违法所得2000元"
    assert report.merged == 1
    two = sorted(r["decided_on"] for r in stored if r["decision_no"] == "津和罚〔2024〕9号")
    assert two == [date(2022, 1, 1), date(2024, 1, 1)]
    assert len(report.warnings) == 1 and "stored as two records" in report.warnings[0]
    # Loading the same file again changes nothing.
    again, _ = load(tmp_path, write_csv(tmp_path / "p.csv", NATIONAL, rows))
    assert (again.counts.added, again.counts.changed, again.counts.unchanged) == (0, 0, 6)


PUBLICITY = ["序号", "企业名称", "统一社会信用代码", "列入经营异常名录原因", "列入日期", "列入决定书文号",
             "作出决定机关（列入）", "移出经营异常名录原因", "移出日期", "移出决定书文号",
             "作出决定机关（移出）"]  # fmt: skip
ILLEGAL = ["序号", "企业名称", "统一社会信用代码", "类别", "列入严重违法失信名单（黑名单）原因", "列入日期",
           "列入决定书文号", "作出决定机关（列入）", "移出严重违法失信名单（黑名单）原因", "移出日期",
           "移出决定书文号", "作出决定机关（移出）"]  # fmt: skip


def test_the_publicity_systems_lists_load_with_entries_still_in_force(tmp_path: Path) -> None:
    abnormal = [
        ["1", "天津甲公司", CO, "通过登记的住所或者经营场所无法联系", "2023-04-01", "津和市监异〔2023〕1号",
         MARKET, "", "—", "", ""],
        ["2", "天津甲公司", CO, "未按规定报送年度报告", "2021/6/30", "津和市监异〔2021〕5号", MARKET,
         "补报年度报告", "2022-01-10", "津和市监移〔2022〕2号", MARKET],
    ]  # fmt: skip
    report, stored = load(tmp_path, write_csv(tmp_path / "abnormal.csv", PUBLICITY, abnormal, encoding="gb18030"))
    assert report.layout == "publicity-abnormal-operations" and report.counts.added == 2
    got = by_no(stored)
    assert got["津和市监异〔2023〕1号"]["removed_on"] is None
    assert got["津和市监异〔2021〕5号"]["removed_on"] == date(2022, 1, 10)
    assert {(r["scope"], r["domain"], r["procedure"]) for r in stored} == {
        ("abnormal_operations_list", "market_regulation", "n/a")
    }
    assert got["津和市监异〔2023〕1号"]["content"] == "通过登记的住所或者经营场所无法联系"

    illegal = [["1", "天津甲公司", CO, "严重违法失信企业", "被列入经营异常名录届满3年仍未履行相关义务",
                "2024-01-02", "津市监严〔2024〕1号", "天津市市场监督管理委员会", "", "-", "", ""]]  # fmt: skip
    report, stored = load(tmp_path, write_csv(tmp_path / "illegal.csv", ILLEGAL, illegal))
    assert report.layout == "publicity-serious-illegal"
    row = by_no(stored)["津市监严〔2024〕1号"]
    assert (row["scope"], row["removed_on"], row["decided_on"]) == (
        "serious_illegal_dishonesty_list",
        None,
        date(2024, 1, 2),
    )


def test_the_serious_dishonesty_list_and_the_older_penalty_standard(tmp_path: Path) -> None:
    header = ["序号", "失信主体名称", "统一社会信用代码", "法定代表人", "列入名单事由", "认定依据", "认定单位",
              "认定文书号", "列入日期", "移出日期"]  # fmt: skip
    rows = [["1", "天津甲公司", CO, "王五", "拖欠农民工工资", "《拖欠农民工工资失信联合惩戒对象名单管理暂行办法》",
             "天津市人力资源和社会保障局", "津人社失信〔2024〕3号", "2024-02-01", "长期"]]  # fmt: skip
    report, stored = load(tmp_path, write_csv(tmp_path / "list.csv", header, rows))
    assert report.layout == "serious-dishonesty-list"
    assert (stored[0]["scope"], stored[0]["domain"], stored[0]["removed_on"]) == (
        "serious_dishonesty_list", "human_resources", None,
    )  # fmt: skip

    older = ["行政处罚决定书文号", "处罚名称", "处罚类别1", "处罚类别2", "处罚事由", "处罚依据", "行政相对人名称",
             "行政相对人代码_1(统一社会信用代码)", "行政相对人代码_2(组织机构代码)", "行政相对人代码_3(工商登记码)",
             "行政相对人代码_4(税务登记号)", "行政相对人代码_5(居民身份证号)", "法定代表人姓名", "处罚结果",
             "处罚决定日期", "处罚机关", "当前状态", "地方编码", "数据更新时间戳", "备注"]  # fmt: skip
    rows = [
        ["旧-1", "", "罚款", "警告", "", "", "天津甲公司", CO, "", "", "", "", "", "罚款1万元", "2023-01-05", MARKET,
         "正常", "120101", "", ""],
        ["旧-2", "", "罚款", "", "", "", "李四", "", "", "", "", PERSON, "", "罚款200元", "2023-01-06", MARKET, "",
         "120101", "", ""],
    ]  # fmt: skip
    report, stored = load(tmp_path, write_csv(tmp_path / "older.csv", older, rows))
    assert report.layout == "national-penalty-2016" and not report.rejects
    got = by_no(stored)
    assert got["旧-1"]["category"] == "罚款；警告" and got["旧-1"]["content"] == "罚款1万元"
    assert (got["旧-2"]["subject_id"], got["旧-2"]["subject_kind"]) == (PERSON, "person")


def test_a_workbook_with_a_title_row_date_cells_and_number_cells(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "说明"
    sheet.append(["本表为行政处罚信息"])
    data = book.create_sheet("处罚信息")
    data.append(["天津市和平区行政处罚信息（2024 年第一季度）"])
    data.append(NATIONAL)
    row: list[Any] = list(national(no="X-1"))
    row[22] = datetime(2024, 3, 15)  # a date cell
    data.append(row)
    row = list(national(no="X-2", uscc=""))
    row[2] = 9.112011600000001e17  # a code typed as a number: its digits are lost
    data.append(row)
    row = list(national(no="X-3", fine=""))
    row[19] = 0.5
    row[18] = ""
    row[22] = 45052  # a serial day number
    data.append(row)
    data.append(["合计：3 条"])
    path = tmp_path / "penalties.xlsx"
    book.save(path)

    with pytest.raises(InvalidInput) as caught:
        load(tmp_path, path)  # the first sheet is not a penalty table
    assert "unknown layout" in caught.value.detail
    report, stored = load(tmp_path, path, sheet="处罚信息")
    assert (report.layout, report.sheet, report.counts.added, report.footer) == (
        "national-penalty-2021",
        "处罚信息",
        2,
        1,
    )
    assert [r.line for r in report.rejects] == [4] and "Excel" in report.rejects[0].reason
    got = by_no(stored)
    assert got["X-1"]["decided_on"] == date(2024, 3, 15)
    assert got["X-3"]["decided_on"] == date(2023, 5, 6) and got["X-3"]["content"] == "罚款 0.5 万元"
    report, _ = load(tmp_path, path, sheet="2")
    assert report.sheet == "处罚信息"


def test_records_outside_the_catalogue_are_stored_but_not_reportable(tmp_path: Path) -> None:
    # Tianjin covers 市场监管 for enterprises only: a person's market penalty is kept.
    rows = [national(no="P-1", type="自然人", uscc="", id=PERSON, name="李四")]
    report, stored = load(tmp_path, write_csv(tmp_path / "p.csv", NATIONAL, rows))
    assert report.counts.added == 1 and report.not_reportable == 1
    assert stored[0]["subject_kind"] == "person"


def test_domain_and_scope_for_a_whole_file_and_a_dry_run(tmp_path: Path) -> None:
    rows = [national(no="W-1", authority="天津市和平区某某协调办公室")]
    path = write_csv(tmp_path / "p.csv", NATIONAL, rows)
    report, stored = load(tmp_path, path, domain="市场监督管理", dry_run=True)
    assert report.dry_run and report.counts.added == 1 and stored == []
    assert any("dry run" in line for line in report.summary())
    report, stored = load(tmp_path, path, domain="市场监督管理")
    assert stored[0]["domain"] == "market_regulation"


def test_an_unknown_layout_is_refused_with_the_columns_it_lacks(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", ["企业名称", "处罚机关", "金额"], [["甲", "乙", "1"]])
    with pytest.raises(InvalidInput) as caught:
        load(tmp_path, path)
    assert "unknown layout" in caught.value.detail and "处罚决定日期" in caught.value.detail


def test_title_lines_with_quoted_line_breaks_keep_the_line_numbers(tmp_path: Path) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["天津市和平区\n行政处罚信息公示\u2028（第一批）"])  # one cell over two lines, and a U+2028
    writer.writerow(["数据截至 2024-06-30"])
    writer.writerow(NATIONAL)
    writer.writerow(national(no="L-1"))
    writer.writerow(national(no="L-2", decided="06/05/2023"))
    path = tmp_path / "p.csv"
    path.write_bytes(buffer.getvalue().encode("gb18030"))
    report, stored = load(tmp_path, path)
    assert [r["decision_no"] for r in stored] == ["L-1"]
    assert [r.line for r in report.rejects] == [6]  # lines 1–2 title, 3 date, 4 header, 5 and 6 rows


def test_an_xls_workbook(tmp_path: Path) -> None:
    """A legacy .xls (the fixture was written by xlwt): title row, date cells, amounts as
    numbers, a code Excel stored as a number, a footer."""
    fixture = Path(__file__).parents[1] / "data" / "penalties.xls"
    path = tmp_path / "penalties.xls"
    path.write_bytes(fixture.read_bytes())
    report, stored = load(tmp_path, path, region=Region.HEBEI)
    assert (report.layout, report.encoding, report.counts.added, report.footer) == (
        "national-penalty-2021",
        "XLS",
        1,
        1,
    )
    assert [r.line for r in report.rejects] == [4] and "Excel" in report.rejects[0].reason
    row = stored[0]
    assert (row["subject_id"], row["decided_on"], row["publicity_until"]) == (
        "91130100MA00000025",
        date(2024, 3, 15),
        None,
    )
    assert row["domain"] == "market_regulation" and row["content"] == "罚款5000元"
