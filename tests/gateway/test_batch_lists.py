"""Reading an agency's uploaded list: XLSX (first sheet, title rows above the header), CSV in
UTF-8 with or without a BOM and in GB18030, the code and name columns found by their
headers, blank rows between rows of the list kept and those around it dropped, and a
clear Chinese refusal for what is none of these."""

from __future__ import annotations

import codecs
import io
import zipfile
from typing import Any

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit.errors import InvalidInput
from credit.labels import chinese_only
from gateway.batch import lists
from gateway.batch.jobs import parse_subject_list, refusal, repeats
from gateway.batch.lists import SubjectList, read_list

CODE_A = "91120000MA05K1AB2X"
CODE_B = "911101087263982735"
PERSON = "110101199003078515"


def workbook(*sheets: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for number, rows in enumerate(sheets, start=1):
        sheet = book.create_sheet(f"表{number}")
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


OFFICERS_LIST = [
    ["2025 年度评优评先企业名单"],  # a title row above the header
    [],
    ["序号", "企业名称", "统一社会信用代码", "备注"],
    [1, "天津某某科技有限公司", CODE_A, ""],
    [2, "北京某某代码技术有限公司", CODE_B, "复核"],
    [3, None, None, None],  # a blank row inside the list
    [4, "张三", PERSON, ""],
    [5, "天津某某科技有限公司", CODE_A.lower(), ""],
    [6, "无代码单位", None, ""],
    [],
    [],  # blank rows after the list
]


def test_an_xlsx_list_gives_its_codes_and_names_row_by_row() -> None:
    listed = read_list(workbook(OFFICERS_LIST, [["另一张表", "不读"]]))
    assert listed == SubjectList(
        [CODE_A, CODE_B, "", PERSON, CODE_A.lower(), ""],
        ["天津某某科技有限公司", "北京某某代码技术有限公司", "", "张三", "天津某某科技有限公司", "无代码单位"],
    )
    # The repeat is found as the nodes read codes (upper case); blank entries repeat nothing.
    assert repeats(listed.entries) == {4: 1}


def test_a_code_typed_as_a_number_is_kept_as_its_digits_or_refused_by_the_rules() -> None:
    listed = read_list(workbook([["身份证号", "姓名"], [110101199003078515, "李四"], [12345, "王五"]]))
    # Excel keeps 15 significant digits: an 18-digit number has lost its last ones, and
    # is written so that the identifier rules refuse it rather than check another person.
    assert listed.entries[0] != PERSON and "E+" in listed.entries[0]
    assert listed.entries[1] == "12345" and listed.names == ["李四", "王五"]


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"], ids=["utf8", "utf8-bom", "gb18030", "gbk"]
)
def test_csv_lists_read_in_utf8_and_gb18030(encoding: str) -> None:
    text = f"主体名称,统一社会信用代码\r\n天津某某科技有限公司,{CODE_A}\r\n,\r\n北京某某公司,{CODE_B}\r\n\r\n"
    listed = read_list(text.encode(encoding))
    assert listed.entries == [CODE_A, "", CODE_B]
    assert listed.names == ["天津某某科技有限公司", "", "北京某某公司"]


def test_a_list_without_a_header_is_its_first_column() -> None:
    assert read_list(f"{CODE_A}\n\n{CODE_B},某公司\n".encode()) == SubjectList([CODE_A, "", CODE_B], None)
    assert read_list(f"代码\n{CODE_A}\n".encode()) == SubjectList([CODE_A], None)
    # A name holding 代码 in a row of the list heads nothing.
    assert read_list(f"{CODE_A},某某代码有限公司\n".encode()).entries == [CODE_A]


def _refusal(data: bytes) -> str:
    with pytest.raises(InvalidInput) as refused:
        parse_subject_list(data)
    return chinese_only(refused.value.detail)


def test_what_is_not_a_list_is_refused_in_chinese() -> None:
    utf16 = codecs.BOM_UTF16_LE + f"统一社会信用代码\r\n{CODE_A}\r\n".encode("utf-16-le")
    for data in (utf16, b"\xff\xfe\x00\x00garbage\x81", b"PK\x03\x04 not a zip"):
        assert "UTF-8" in _refusal(data) and "GB18030" in _refusal(data) and "XLSX" in _refusal(data)
    assert ".xls" in _refusal(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    assert "名单为空" in _refusal("统一社会信用代码\n\n,\n".encode())
    assert "名单为空" in _refusal(workbook([["统一社会信用代码", "名称"]]))
    not_a_workbook = io.BytesIO()
    with zipfile.ZipFile(not_a_workbook, "w") as archive:
        archive.writestr("hello.txt", "no workbook here")
    assert "无法读取工作簿" in _refusal(not_a_workbook.getvalue())
    assert "名称超过" in _refusal(f"名称,代码\n{'长' * 201},{CODE_A}\n".encode())


def test_a_workbook_that_unpacks_beyond_the_limit_is_not_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    data = workbook([["统一社会信用代码"], *([CODE_A] for _ in range(200))])
    monkeypatch.setattr(lists, "MAX_INFLATED", 2_000)
    assert "工作簿过大" in _refusal(data)


def _repeats_one_by_one(entries: list[str]) -> dict[int, int]:
    first: dict[str, int] = {}
    found: dict[int, int] = {}
    for index, entry in enumerate(entries):
        if not entry or refusal(entry):
            continue
        seen = first.setdefault(entry.strip().upper(), index + 1)
        if seen != index + 1:
            found[index] = seen
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["", " ", "a", "A", " a", "b\x07", "B\x07", "ß", "SS", "x\n", "91110108MA01RXNE2H"])))
def test_repeats_are_found_as_one_by_one(entries: list[str]) -> None:
    assert repeats(entries) == _repeats_one_by_one(entries)


def test_control_characters_are_found_as_the_expression_finds_them() -> None:
    from gateway.batch.jobs import _CONTROL, _any_control

    for code in [*range(0x300), 0x2028, 0x2029, 0x3000]:
        for entries in (["ab" + chr(code), "x"], ["a", chr(code)], ["91110108MA01RXNE2H", "中" + chr(code)]):
            assert _any_control(entries) == (_CONTROL.search("".join(entries)) is not None), hex(code)
