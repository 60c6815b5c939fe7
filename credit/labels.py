"""The Chinese words people read for the federation's values, shared by the portal, the
printed report and the officers' tables, so that one thing is called the same everywhere.

Tables are keyed by the domain enums; those are ``StrEnum``s, so a document's plain
string (``"clean"``) finds its label too. A test checks every member has one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from credit.audit import Action
from credit.identifiers import SubjectKind
from credit.policy import Role
from credit.registers import NOT_FOR_PERSONS
from credit.report import RegionStatus, Verdict
from credit.rules import RecordStatus

VERDICT: dict[str, str] = {
    Verdict.CLEAN: "三地均无违法违规记录",
    Verdict.HAS_RECORDS: "存在违法违规记录",
    Verdict.INCOMPLETE: "报告不完整：部分地区或领域未能查询",
}
# The incomplete verdict where it must also say what the paper cannot be used for.
INCOMPLETE_NOT_A_CERTIFICATE = "报告不完整——部分地区或领域未能查询，不能作为无违法违规证明"
VERDICT_EXPLAINED: dict[str, str] = {
    Verdict.CLEAN: "北京、天津、河北三地在查询区间内均未发现计入的违法违规记录。",
    Verdict.HAS_RECORDS: "以下列出查询区间内计入的违法违规记录，请核对；如有异议可对记录提出异议。",
    Verdict.INCOMPLETE: "部分地区或领域暂不可用，本报告不能作为无违法违规证明。请稍后重新查询。",
}

REGION_STATUS: dict[str, str] = {RegionStatus.ANSWERED: "已应答", RegionStatus.UNAVAILABLE: "暂不可用"}
RECORD_STATUS: dict[str, str] = {
    RecordStatus.IN_FORCE: "有效",
    RecordStatus.REPAIRED: "已信用修复",
    RecordStatus.REVOKED: "已撤销",
}

SUBJECT_KIND: dict[str, str] = {SubjectKind.ENTERPRISE: "经营主体", SubjectKind.PERSON: "自然人"}
IDENTIFIER_NAME: dict[str, str] = {SubjectKind.ENTERPRISE: "统一社会信用代码", SubjectKind.PERSON: "公民身份号码"}

# The registration details a report certifies (市场主体登记信息), by the report
# document's keys, in the order they are shown.
REGISTRATION_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "名称"),
    ("legal_representative", "法定代表人（负责人、经营者）"),
    ("address", "住所（经营场所）"),
    ("authority", "登记机关"),
    ("established_on", "成立日期"),
    ("status", "登记状态"),
)
REGISTRATION_HEADING = "主体登记信息"
REGISTRATION_NOTE = "登记信息"  # what a report without registration details says instead, and why
REGISTRATION_SOURCE = "信息来源"
NOT_STATED = "未载明"


def registration_source(register: Mapping[str, Any]) -> str:
    """Whose register the details come from: ``天津市场主体登记信息``."""
    return f"{register.get('region_name') or register.get('region') or ''}市场主体登记信息"


def subject_name_text(subject: Mapping[str, Any]) -> str:
    """A report subject's name as pages show it, never a bare dash: the name; else, for
    a person, that the registers of market entities do not cover persons; else why no
    register names the subject; else (a report from before registers were read) 未载明.

    Raises nothing.
    """
    name = subject.get("name")
    if name:
        return str(name)
    if subject.get("kind") == SubjectKind.PERSON:
        return f"姓名{NOT_STATED}（{NOT_FOR_PERSONS}）"
    note = subject.get("register_note")
    return f"名称{NOT_STATED}（{note}）" if note else NOT_STATED


# The one word for a report's verification code, on pages, printed reports and forms.
VERIFICATION_CODE = "核验码"


def cutoff_explained(working_days: int | None) -> str:
    """Why a report's period ends before its application date, where the period is shown
    ("" when the count is unknown). The rule is the plans' own: data up to the 7th
    working day before the application (seed 002: 可申请查询日起7个工作日前3年或5年),
    because decisions are published within 7 working days of being made (seed 001:
    自作出行政决定之日起7个工作日内上网公开)."""
    if not working_days:
        return ""
    return (
        f"查询区间截止于申请日前第 {working_days} 个工作日（节假日不计，调休上班日计入）："
        f"行政处罚等信用信息自作出决定之日起 {working_days} 个工作日内归集公示，"
        "为确保数据完整准确，此后作出的决定不在本次查询范围内。"
    )


# A registered report's status, as a verifier is told it.
REPORT_STATUS: dict[str, str] = {
    "valid": "有效",
    "superseded": "已更新（数据发生变化，请以新报告为准）",
    "revoked": "已撤销",
    "unknown": "未找到",
    "not_genuine": "非真实报告",
}
GRANT_STATE: dict[str, str] = {"active": "有效", "used_up": "次数已用完", "expired": "已过期", "revoked": "已撤销"}

# Who did something, in an access history (besides the roles: holders of a grant code
# and anonymous verifiers).
ACTOR_ROLE: dict[str, str] = {
    Role.ENTERPRISE: "经营主体",
    Role.PERSON: "个人",
    Role.THIRD_PARTY: "第三方",
    Role.AGENCY: "机关",
    Role.ADMIN: "管理员",
    "anonymous": "持码人",
    "verifier": "核验",
}
ACTION: dict[str, str] = {
    Action.LOGIN: "登录",
    Action.LOGIN_FAILED: "登录失败",
    Action.LOGOUT: "退出登录",
    Action.PASSWORD_CHANGED: "修改密码",
    Action.REPORT_ISSUED: "出具报告",
    Action.REPORT_VIEWED: "查看报告",
    Action.GRANT_PREVIEWED: "预览授权",
    Action.GRANT_CREATED: "创建授权",
    Action.GRANT_REDEEMED: "凭授权查看",
    Action.GRANT_REVOKED: "撤销授权",
    Action.VERIFIED: "核验报告",
    Action.BATCH_CHECK: "批量核查",
    Action.REFUSED: "被拒绝的查询",
    Action.NODE_QUERY: "地区节点查询",
    Action.NODE_BATCH: "地区节点批量核查",
    Action.OBJECTION_FILED: "提交异议或修复申请",
    Action.OBJECTION_VIEWED: "查看办件",
    Action.OBJECTION_RESOLVED: "办结异议或修复申请",
    Action.CREDIT_REPAIRED: "信用修复",
    Action.FEED_READ: "读取变更数据",
}


_CJK = re.compile(r"[\u3400-\u9fff]")
_ENGLISH_TAIL = re.compile(r"\s*[(（]([^()（）]*[A-Za-z][^()（）]*)[)）]\s*$")


def chinese_only(detail: str, fallback: str = "请求未能完成，请检查后重试。") -> str:
    """An error's words for a Chinese page: the Chinese part of ``中文 (English)``.

    The federation's errors say it in Chinese, then in English in brackets (the API's
    problem details keep both); pages show the Chinese only. A detail with no Chinese at
    all gives ``fallback``.
    """
    text = detail.strip()
    while True:
        trimmed = _ENGLISH_TAIL.sub("", text)
        if trimmed == text or not _CJK.search(trimmed):
            break
        text = trimmed
    return text if _CJK.search(text) else fallback


_FIELD_PREFIX = re.compile(r"^[a-z_]+:\s*")
_ENGLISH_ASIDE = re.compile(r"\s*[(（][^()（）]*[A-Za-z]{2,}[^()（）]*[)）]")


def chinese_reason(reason: str, fallback: str) -> str:
    """Why an identifier was refused, for a table people read: the Chinese of a reason such
    as ``subject: 统一社会信用代码无效 (invalid …): 校验码错误：应为 'H'，实际为 'X'``, without
    the field name before it and the English asides within it (the API keeps them). A
    reason with no Chinese gives ``fallback``.
    """
    text = _ENGLISH_ASIDE.sub("", _FIELD_PREFIX.sub("", reason.strip()))
    return chinese_only(text, fallback)
