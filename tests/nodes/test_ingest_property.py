"""The columnar loader stores exactly what the row rules say, for any generated file;
and a national-standard file from real authorities' names loads with the right domains."""

from __future__ import annotations

import csv
import io
import tomllib
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credit.catalogue import catalogue
from credit.identifiers import make_resident_id, make_uscc
from credit.regions import Region
from nodes.ingest import IngestReport, RowRules, read_file
from nodes.ingest.rules import draft_file
from nodes.store import prepare

TODAY = date(2025, 6, 16)
HEADER = ["行政相对人名称", "行政相对人类别", "统一社会信用代码", "证件号码", "证件类型", "行政处罚决定书文号",
          "处罚类别", "处罚内容", "处罚决定日期", "公示截止期", "处罚机关", "程序类型", "状态"]  # fmt: skip
FIELDS = ["subject_name", "subject_type", "uscc", "resident_id", "id_type", "decision_no", "category", "content",
          "decided_on", "publicity_until", "authority", "procedure", "status"]  # fmt: skip
CHOICES = {
    "subject_name": ["甲公司", "", "—", "李四"],
    "subject_type": ["", "法人及非法人组织", "个体工商户", "自然人", "外星人"],
    "uscc": ["91120116MA05JBXQ06", "91120116MA05JBXQ07", "", "120101198503121230",
             "９１１２０１１６ＭＡ０５ＪＢＸＱ０６", "9.1120E+17", "'91120116ma05jbxq06"],
    "resident_id": ["", "130102199001014569", "130102199001014560"],
    "id_type": ["", "身份证", "护照"],
    "decision_no": ["D-1", "D-2", "无", "/", "", "津（当场）决字1号"],
    "category": ["罚款", "其他", "没收", ""],
    "content": ["罚款1000元", "不予行政处罚", "", "警告"],
    "decided_on": ["2024-03-15", "2024/3/5", "2023年5月6日", "20230506", "45052", "06/05/2023", "2099-01-01",
                   "2023-02-30", "", "2024-03-15 00:00:00"],
    "publicity_until": ["", "—", "长期", "2026-01-01", "2020-01-01"],
    "authority": ["天津市和平区市场监督管理局", "天津市生态环境局", "某某办公室", ""],
    "procedure": ["", "普通程序", "简易程序", "听证"],
    "status": ["", "有效", "已信用修复", "作废"],
}  # fmt: skip
rows_strategy = st.lists(
    st.fixed_dictionaries({f: st.sampled_from(CHOICES[f]) for f in FIELDS}), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy)
def test_the_columnar_loader_stores_exactly_what_the_row_rules_say(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows([r[f] for f in FIELDS] for r in rows)
    path = tmp_path / "generated.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    rules = RowRules(catalogue(Region.TIANJIN), today=TODAY)

    report = IngestReport(source="g")
    stored = sorted(item for batch in read_file(path, rules, report) for item in batch.drop("joinable").rows())
    expected, rejects = draft_file(rules, [(i + 2, r) for i, r in enumerate(rows)])

    assert stored == sorted(prepare(d) for d in expected.drafts)
    assert [(r.line, r.reason) for r in report.rejects] == rejects
    assert report.merged == expected.merged_rows
    # Every valid row is a record, or folded into its decision's record; none lost.
    assert len(stored) + report.merged + len(rejects) == len(rows) - report.blank


def test_a_national_file_from_real_authorities_loads_with_their_domains(tmp_path: Path) -> None:
    """City, district and county authorities of all three regions, no 领域 column."""
    names = tomllib.loads(Path(__file__).parents[1].joinpath("data", "authority_names.toml").read_text("utf-8"))["name"]
    for region in Region:
        mine = [n for n in names if n["region"] == region.value]
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(["行政相对人名称", "行政相对人代码_1(统一社会信用代码)", "行政处罚决定书文号", "处罚内容",
                         "处罚决定日期", "处罚机关"])  # fmt: skip
        for i, n in enumerate(mine):
            writer.writerow(["甲公司", "91120116MA05JBXQ06", f"罚-{i}", "罚款", "2024-03-15", n["authority"]])
        path = tmp_path / f"{region.value}.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        report = IngestReport(source=region.value)
        items = [
            i
            for b in read_file(path, RowRules(catalogue(region), today=TODAY), report)
            for i in b.drop("joinable").rows()
        ]
        right = {item[7]: item[5] for item in items}  # decision_no -> domain
        correct = sum(1 for i, n in enumerate(mine) if right.get(f"罚-{i}") == n["domain"])
        assert correct / len(mine) >= 0.98, (region, correct, len(mine), report.unmapped)
        assert report.layout == "national-penalty-2021"


_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXYXIOSVZ"
codes = st.one_of(
    st.text(alphabet=_ALPHABET, min_size=16, max_size=19),
    st.text(alphabet="0123456789X", min_size=17, max_size=19),
    st.builds(
        lambda body: make_uscc(body), st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17)
    ),
    st.builds(
        lambda prefix, born, seq: make_resident_id(f"{prefix}0101{born:%Y%m%d}{seq:03d}"),
        st.sampled_from(["11", "12", "13", "99", "00"]),
        st.dates(min_value=date(1850, 1, 1), max_value=date(2030, 12, 31)),
        st.integers(0, 999),
    ),
    st.text(min_size=0, max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(codes, min_size=1, max_size=30))
def test_column_checks_agree_with_the_identifier_rules(values: list[str]) -> None:
    import polars as pl

    from credit.identifiers import resident_id_problems, uscc_problems
    from nodes.ingest.columnar import valid_resident_id, valid_uscc

    series = pl.Series(values, dtype=pl.String)
    assert valid_uscc(series).to_list() == [not uscc_problems(v) and not v[:17].isdigit() for v in values]
    assert valid_resident_id(series, TODAY).to_list() == [not resident_id_problems(v, today=TODAY) for v in values]
