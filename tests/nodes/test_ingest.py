"""Ingest: bad rows to the rejects report, good rows load, the same file twice changes nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from credit.catalogue import catalogue
from credit.errors import InvalidInput
from credit.regions import Region
from infra.db import sync_engine
from nodes.db import migrate
from nodes.ingest import RowRules, ingest_file
from nodes.store import SqlRecordWriter, records
from tests.nodes.builders import ACME, OTHER

HEADER = (
    "行政相对人名称,统一社会信用代码,行政处罚决定书文号,处罚类别,处罚内容,处罚决定日期,"
    "公示截止期,处罚机关,领域,程序类型,状态"
)
GOOD = [
    f"天津甲公司,{ACME},津市监罚〔2024〕1号,罚款,罚款5000元,2024-03-15,2027-03-14,天津市市场监督管理委员会,市场监管,普通程序,有效",
    # Domain inferred from the authority the catalogue names.
    f"天津乙公司,{OTHER},津环罚〔2024〕7号,罚款,罚款1万元,2024/5/6,,市生态环境局,,简易程序,",
    f"天津甲公司,{ACME.lower()},津税罚〔2023〕9号,警告,警告,2023年7月1日,,国家税务总局天津市税务局,taxation,,",
]
BAD = [
    (f"坏校验,{ACME[:-1]}X,D1,罚款,x,2024-03-15,,天津市市场监督管理委员会,市场监管,,", "check character"),
    ("坏长度,9112,D2,罚款,x,2024-03-15,,天津市市场监督管理委员会,市场监管,,", "18"),
    (f"坏日期,{ACME},D3,罚款,x,2024-02-30,,天津市市场监督管理委员会,市场监管,,", "not a valid date"),
    (f"未来,{ACME},D4,罚款,x,2099-01-01,,天津市市场监督管理委员会,市场监管,,", "future"),
    (f"未知领域,{ACME},D5,罚款,x,2024-03-15,,天津市市场监督管理委员会,航天,,", "unknown domain"),
    (f"无法推断,{ACME},D6,罚款,x,2024-03-15,,某某办公室,,,", "maps to no domain"),
    (f",{ACME},D7,罚款,x,2024-03-15,,天津市市场监督管理委员会,市场监管,,", "subject_name"),
    (f"坏程序,{ACME},D8,罚款,x,2024-03-15,,天津市市场监督管理委员会,市场监管,听证程序,", "unknown procedure"),
    (f"列数,{ACME},D9", "fields"),
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def ingest(db: str, path: Path):  # type: ignore[no-untyped-def]
    migrate(db)
    engine = sync_engine(db)
    try:
        rules = RowRules(catalogue(Region.TIANJIN), today=date(2025, 6, 16))
        return ingest_file(path, engine=engine, rules=rules)
    finally:
        engine.dispose()


def stored(db: str) -> list[tuple[object, ...]]:
    engine = sync_engine(db)
    try:
        with engine.connect() as conn:
            query = select(
                records.c.seq, records.c.record_id, records.c.version, records.c.current, records.c.content_hash
            )
            return [tuple(r) for r in conn.execute(query.order_by(records.c.seq))]
    finally:
        engine.dispose()


def test_bad_rows_are_reported_and_good_rows_load(db_url: str, tmp_path: Path) -> None:
    lines = [GOOD[0], *[b for b, _ in BAD], GOOD[1], GOOD[2]]
    report = ingest(db_url, write(tmp_path / "penalties.csv", lines))

    assert report.counts.added == 3
    assert len(report.rejects) == len(BAD)
    for reject, (_, reason) in zip(report.rejects, BAD, strict=True):
        assert reason in reject.reason, (reject, reason)
    assert [r.line for r in report.rejects] == list(range(3, 3 + len(BAD)))
    rows = stored(db_url)
    assert len(rows) == 3

    report.write_rejects(tmp_path / "rejects.csv")
    text = (tmp_path / "rejects.csv").read_text(encoding="utf-8")
    assert "line,reason,row" in text and "check character" in text


def test_reingesting_the_same_file_changes_nothing(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "penalties.csv", GOOD)
    ingest(db_url, path)
    before = stored(db_url)
    again = ingest(db_url, path)
    assert (again.counts.added, again.counts.changed, again.counts.unchanged) == (0, 0, 3)
    assert stored(db_url) == before


def test_a_changed_record_becomes_a_new_version_and_keeps_history(db_url: str, tmp_path: Path) -> None:
    ingest(db_url, write(tmp_path / "v1.csv", GOOD))
    repaired = GOOD[0].replace(",有效", ",已信用修复")
    report = ingest(db_url, write(tmp_path / "v2.csv", [repaired]))
    assert (report.counts.added, report.counts.changed) == (0, 1)
    rows = stored(db_url)
    versions = [(v, c) for _, rid, v, c, _ in rows if rid == rows[0][1]]
    assert versions == [(1, False), (2, True)]
    # Loading the older file again is a change back, stored as version 3: nothing is lost.
    ingest(db_url, write(tmp_path / "v1b.csv", [GOOD[0]]))
    assert [v for _, rid, v, _, _ in stored(db_url) if rid == rows[0][1]] == [1, 2, 3]


def test_jsonl_with_english_and_chinese_keys(db_url: str, tmp_path: Path) -> None:
    lines = [
        {
            "subject_id": ACME,
            "subject_name": "天津甲公司",
            "decision_no": "J-1",
            "decided_on": "2024-03-15",
            "authority": "天津市市场监督管理委员会",
            "domain": "market_regulation",
            "scope": "abnormal_operations_list",
        },
        {
            "行政相对人名称": "天津乙公司",
            "统一社会信用代码": OTHER,
            "行政处罚决定书文号": "J-2",
            "处罚决定日期": "2024-01-02",
            "处罚机关": "市生态环境局",
        },
    ]
    path = tmp_path / "records.jsonl"
    path.write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{not json}\n[1]\n", encoding="utf-8"
    )
    report = ingest(db_url, path)
    assert report.counts.added == 2
    assert [r.line for r in report.rejects] == [3, 4]
    assert "invalid JSON" in report.rejects[0].reason


@pytest.mark.parametrize(
    ("content", "name", "needle"),
    [
        (b"\xd6\xd0\xce\xc4,\xb4\xfa\xc2\xeb\n1,2\n", "gbk.csv", "unknown layout"),
        ("行政相对人名称,处罚机关\n甲,乙\n".encode(), "missing.csv", "missing columns"),
        (b"", "empty.csv", "empty"),
        (b"{}", "records.xlsx", "cannot read the workbook"),
        (b"{}", "records.pdf", "use .csv"),
    ],
)
def test_unreadable_files_load_nothing(db_url: str, tmp_path: Path, content: bytes, name: str, needle: str) -> None:
    ingest(db_url, write(tmp_path / "first.csv", GOOD[:1]))
    before = stored(db_url)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as caught:
        ingest(db_url, path)
    assert needle in caught.value.detail
    assert stored(db_url) == before


def test_a_failed_load_rolls_back_entirely(tmp_path: Path) -> None:
    """Nothing of a file is stored when the load fails part-way."""
    db = f"sqlite:///{tmp_path / 'n.db'}"
    ingest(db, write(tmp_path / "first.csv", GOOD[:1]))
    before = stored(db)
    engine = sync_engine(db)

    def batches():  # type: ignore[no-untyped-def]
        from tests.nodes.builders import penalty

        yield [penalty(decision_no="X-1")]
        raise OSError("disk went away")

    with pytest.raises(OSError):
        SqlRecordWriter(engine).load(batches(), source="broken")
    engine.dispose()
    assert stored(db) == before


def test_ingest_log_counts(db_url: str, tmp_path: Path) -> None:
    from nodes.store import ingests

    ingest(db_url, write(tmp_path / "p.csv", [*GOOD, BAD[0][0]]))
    engine = sync_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(ingests)).one()
        assert (row.rows_read, row.rows_added, row.rows_rejected) == (4, 3, 1)
        assert len(row.file_sha256) == 64
        assert conn.execute(select(func.count()).select_from(records)).scalar() == 3
    engine.dispose()


def _mixed_csv(path: Path) -> Path:
    """Seeded rows plus bad rows and quoted fields that hold commas, quotes and newlines."""
    from nodes.seed import generate, write_csv

    write_csv(generate(Region.TIANJIN, subjects=1500, today=date(2025, 6, 16)), path)
    lines = path.read_text(encoding="utf-8").splitlines()
    quoted = (
        f'天津丙公司,法人及非法人组织,{OTHER},,"津罚〔2024〕99号",罚款,"罚款5000元，\n责令改正；""整改""期限30日",'
        "2024-03-15,,天津市市场监督管理委员会,市场监管,行政处罚,普通程序,有效,,"
    )
    bad = f"坏校验,法人及非法人组织,{ACME[:-1]}X,,D1,罚款,x,2024-03-15,,市场监管委,市场监管,行政处罚,,,,"
    body = lines[1:]
    for i in range(0, len(body), 97):
        body.insert(i, quoted.replace("99号", f"{i}号"))
    for i in range(50, len(body), 151):
        body.insert(i, bad)
    path.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    return path


def test_small_blocks_and_the_python_fallback_give_exactly_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks cut anywhere, quoted line breaks and malformed rows (parsed again by
    Python's csv) keep every row's line and reason."""
    from nodes.ingest import IngestReport, read_file, sources

    path = _mixed_csv(tmp_path / "mixed.csv")
    rules = RowRules(catalogue(Region.TIANJIN), today=date(2025, 6, 16))
    whole, cut = IngestReport(source="w"), IngestReport(source="c")
    expected = [d for batch in read_file(path, rules, whole) for d in batch.drop("joinable").rows()]
    monkeypatch.setattr(sources, "BLOCK_BYTES", 4096)
    got = [d for batch in read_file(path, rules, cut) for d in batch.drop("joinable").rows()]

    assert got == expected
    assert len(expected) > 500
    assert any("\n" in item[11] for item in got)  # content
    assert cut.rows_read == whole.rows_read
    assert [(r.line, r.reason) for r in cut.rejects] == [(r.line, r.reason) for r in whole.rejects]
    assert len(whole.rejects) > 3
    lines = path.read_text(encoding="utf-8").split("\n")
    for reject in whole.rejects:
        assert lines[reject.line - 1].startswith("坏校验"), reject


def test_a_file_of_mixed_encodings_is_refused(tmp_path: Path) -> None:
    from nodes.ingest import IngestReport, read_file

    path = _mixed_csv(tmp_path / "mixed.csv")
    data = path.read_bytes()
    middle = data.index(b"\n", len(data) // 2) + 1
    path.write_bytes(data[:middle] + "坏".encode("gbk") + data[middle:])
    rules = RowRules(catalogue(Region.TIANJIN), today=date(2025, 6, 16))
    with pytest.raises(InvalidInput) as caught:
        for _ in read_file(path, rules, IngestReport(source="p")):
            pass
    # Too short for its head to show UTF-8: read as GB18030, which the UTF-8 part breaks.
    assert "not GB18030" in caught.value.detail and "line" in caught.value.detail


@pytest.mark.parametrize(
    ("data", "cut"),
    [
        (b"a,b\nc,d\n", 8),
        (b'a,"b\nc",d\ne', 10),
        (b'a,"b\nc', -1),
        (b'x,"q ""quoted"" \n still",y\nz', 27),
    ],
)
def test_blocks_end_at_record_boundaries(data: bytes, cut: int) -> None:
    from nodes.ingest.sources import _record_boundary

    assert _record_boundary(data) == cut


def test_a_source_record_id_with_control_characters_is_rejected(db_url: str, tmp_path: Path) -> None:
    row = {
        "subject_id": ACME,
        "subject_name": "天津甲公司",
        "decision_no": "C-1",
        "decided_on": "2024-03-15",
        "authority": "天津市市场监督管理委员会",
        "domain": "market_regulation",
    }
    path = tmp_path / "records.jsonl"
    lines = [json.dumps({**row, "record_id": "src-\u001f-1"}), json.dumps({**row, "record_id": "src-2"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest(db_url, path)
    assert report.counts.added == 1
    assert [r.line for r in report.rejects] == [1] and "control characters" in report.rejects[0].reason


NATIONAL = (
    "行政相对人名称,行政相对人类别,行政相对人代码_1(统一社会信用代码),行政处罚决定书文号,处罚类别,处罚内容,"
    "处罚决定日期,处罚机关"
)


def test_a_decisions_rows_in_different_batches_are_one_record_and_reloading_changes_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of one decision far apart in a file (here: every row its own batch) are
    joined by the writer; rows that only share a number stay two records; loading the
    same file again stores no version."""
    from nodes.ingest import sources

    monkeypatch.setattr(sources, "BLOCK_BYTES", 64)
    market = "天津市和平区市场监督管理局"
    rows = [
        f"天津甲公司,法人及非法人组织,{ACME},津和罚〔2024〕8号,罚款,罚款5000元,2024-03-15,{market}",
        f"天津乙公司,法人及非法人组织,{OTHER},津和罚〔2024〕1号,警告,警告,2024-01-15,{market}",
        f"天津甲公司,法人及非法人组织,{ACME},津和罚〔2024〕9号,警告,警告,2024-01-01,{market}",
        f"天津甲公司,法人及非法人组织,{ACME},津和罚〔2024〕8号,没收,没收违法所得2000元,2024-03-15,{market}",
        f"天津甲公司,法人及非法人组织,{ACME},津和罚〔2024〕9号,警告,警告,2022-01-01,{market}",
    ]
    path = tmp_path / "national.csv"
    path.write_text("\n".join([NATIONAL, *rows]) + "\n", encoding="utf-8")

    first = ingest(db_url, path)
    assert (first.counts.added, first.merged, len(first.rejects)) == (4, 1, 0)
    engine = sync_engine(db_url)
    try:
        with engine.connect() as conn:
            query = select(records.c.decision_no, records.c.version, records.c.category, records.c.content,
                           records.c.decided_on).where(records.c.current)  # fmt: skip
            current = sorted(tuple(r) for r in conn.execute(query))
        assert current == [
            ("津和罚〔2024〕1号", 1, "警告", "警告", date(2024, 1, 15)),
            ("津和罚〔2024〕8号", 1, "罚款；没收", "罚款5000元；没收违法所得2000元", date(2024, 3, 15)),
            ("津和罚〔2024〕9号", 1, "警告", "警告", date(2022, 1, 1)),
            ("津和罚〔2024〕9号", 1, "警告", "警告", date(2024, 1, 1)),
        ]
        before = stored(db_url)
        again = ingest(db_url, path)
        assert (again.counts.added, again.counts.changed) == (0, 0)
        assert stored(db_url) == before
    finally:
        engine.dispose()


def test_a_load_that_fails_part_way_stores_nothing(db_url: str, tmp_path: Path) -> None:
    import polars as pl

    from nodes.ingest import IngestReport, read_file
    from nodes.loader import FrameWriter

    ingest(db_url, write(tmp_path / "first.csv", GOOD[:1]))
    before = stored(db_url)
    path = write(tmp_path / "second.csv", GOOD[1:])
    rules = RowRules(catalogue(Region.TIANJIN), today=date(2025, 6, 16))
    frames = list(read_file(path, rules, IngestReport(source="second.csv")))

    def batches():  # type: ignore[no-untyped-def]
        yield from frames
        raise OSError("disk went away")

    engine = sync_engine(db_url)
    try:
        with pytest.raises(OSError):
            FrameWriter(engine).load(batches(), source="second.csv")
        # A broken frame (no subject, which the table refuses) fails inside the database.
        bad = frames[0].with_columns(pl.lit(None, pl.String).alias("subject_id"), pl.col("record_id") + "-b")
        with pytest.raises(Exception):  # noqa: B017 - each backend raises its own error
            FrameWriter(engine).load([frames[0], bad], source="second.csv")
    finally:
        engine.dispose()
    assert stored(db_url) == before
