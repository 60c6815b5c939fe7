"""Every value people can meet has its Chinese words, and plain strings find them."""

from __future__ import annotations

import re

import pytest

from credit import labels
from credit.audit import Action
from credit.identifiers import SubjectKind
from credit.policy import Role
from credit.report import RegionStatus, Verdict
from credit.rules import RecordStatus

LATIN = re.compile(r"[A-Za-z]")


@pytest.mark.parametrize(
    ("table", "members"),
    [
        (labels.VERDICT, Verdict),
        (labels.VERDICT_EXPLAINED, Verdict),
        (labels.REGION_STATUS, RegionStatus),
        (labels.RECORD_STATUS, RecordStatus),
        (labels.SUBJECT_KIND, SubjectKind),
        (labels.IDENTIFIER_NAME, SubjectKind),
        (labels.ACTOR_ROLE, Role),
        (labels.ACTION, Action),
    ],
)
def test_every_member_has_chinese_words(table: dict[str, str], members: type) -> None:
    for member in members:  # type: ignore[attr-defined]
        words = table[member]
        assert words and not LATIN.search(words), (member, words)
        assert table[str(member.value)] == words  # a document's plain string finds it too


def test_the_printed_incomplete_verdict_says_it_is_no_certificate() -> None:
    assert labels.VERDICT[Verdict.INCOMPLETE] in labels.INCOMPLETE_NOT_A_CERTIFICATE.replace("——", "：")
    assert "不能作为无违法违规证明" in labels.INCOMPLETE_NOT_A_CERTIFICATE


OFFICER_REFUSAL = "您只能办理本地区的办件，此件属于天津 (an officer of beijing decides that region's cases only)"


@pytest.mark.parametrize(
    ("detail", "shown"),
    [
        ("只能查询本主体的报告 (you may only get the report of your own subject)", "只能查询本主体的报告"),
        ("尝试过于频繁，请 30 秒后再试 (too many lookups from here: retry in 30 s)", "尝试过于频繁，请 30 秒后再试"),
        (OFFICER_REFUSAL, "您只能办理本地区的办件，此件属于天津"),
        ("没有编号为 JJJ-1 的报告 (no report numbered JJJ-1)", "没有编号为 JJJ-1 的报告"),
        ("must be a str", "请求未能完成，请检查后重试。"),
        ("已撤销（第 2 版）", "已撤销（第 2 版）"),  # Chinese in brackets stays
    ],
)
def test_pages_show_the_chinese_part_of_an_error(detail: str, shown: str) -> None:
    assert labels.chinese_only(detail) == shown


def test_a_refusal_reason_reads_in_chinese_in_a_table() -> None:
    from credit.labels import chinese_reason

    node = "subject: 统一社会信用代码无效 (invalid unified social credit code): 校验码错误：应为 'H'，实际为 'X'"
    assert chinese_reason(node, "代码无效") == "统一社会信用代码无效: 校验码错误：应为 'H'，实际为 'X'"
    assert chinese_reason("条目含控制字符 (the entry holds a control character)", "代码无效") == "条目含控制字符"
    assert chinese_reason("not a code", "代码无效") == "代码无效"
