"""The row rules: what one published row means as a record, or why it is rejected.

This is the reference the columnar loader (:mod:`nodes.ingest.columnar`) is tested
against: for any file, both store the same records and reject the same rows with the
same reasons. The checks run in a fixed order and the first failing one is the row's
reason.

Rows reach these rules as a mapping of field (see :data:`credit.layouts.FIELDS`) to the
cell's text; cells are cleaned here (spaces, empty markers, codes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from typing import Any

from credit.authorities import AuthorityMap, authority_map
from credit.catalogue import Catalogue, Scope, domain
from credit.errors import CreditError
from credit.identifiers import Subject, SubjectKind, parse_subject
from credit.rules import Procedure, RecordStatus
from nodes.ingest.values import (
    OPEN_ENDED,
    RowError,
    clean_code,
    clean_text,
    excel_mangled,
    format_amount,
    parse_amount,
    parse_date,
)
from nodes.records import RecordDraft, make_draft

TEXT_FIELDS = (
    "subject_name", "subject_type", "id_type", "legal_rep", "legal_rep_id_type", "decision_no", "category",
    "content", "fine", "confiscated", "decided_on", "publicity_until", "authority", "domain", "scope",
    "procedure", "status", "removed_on", "record_id", "reason",
)  # fmt: skip
CODE_FIELDS = ("uscc", "reg_no", "org_code", "resident_id", "legal_rep_id")
MAX_LEN = {"subject_name": 200, "decision_no": 200, "authority": 200, "category": 200, "record_id": 64}
FIELD_ZH = {
    "subject_name": "行政相对人名称",
    "decided_on": "处罚决定日期",
    "authority": "处罚机关",
    "decision_no": "行政处罚决定书文号",
    "category": "处罚类别",
    "record_id": "记录编号",
}
REQUIRED = ("subject_name", "decided_on", "authority")

PROCEDURES = {
    "普通程序": Procedure.GENERAL,
    "一般程序": Procedure.GENERAL,
    "general": Procedure.GENERAL,
    "简易程序": Procedure.SIMPLIFIED,
    "简易": Procedure.SIMPLIFIED,
    "当场处罚": Procedure.SIMPLIFIED,
    "simplified": Procedure.SIMPLIFIED,
    "n/a": Procedure.NOT_APPLICABLE,
}
STATUSES = {
    "": RecordStatus.IN_FORCE,
    "有效": RecordStatus.IN_FORCE,
    "正常": RecordStatus.IN_FORCE,
    "in_force": RecordStatus.IN_FORCE,
    "已信用修复": RecordStatus.REPAIRED,
    "信用修复": RecordStatus.REPAIRED,
    "已修复": RecordStatus.REPAIRED,
    "repaired": RecordStatus.REPAIRED,
    "已撤销": RecordStatus.REVOKED,
    "撤销": RecordStatus.REVOKED,
    "revoked": RecordStatus.REVOKED,
}
# 行政相对人类别 as written → what it is.
ORGANISATION, SOLE_TRADER, PERSON = "organisation", "sole_trader", "person"
SUBJECT_TYPES = {
    "": "",
    "法人及非法人组织": ORGANISATION,
    "法人和非法人组织": ORGANISATION,
    "法人": ORGANISATION,
    "非法人组织": ORGANISATION,
    "企业": ORGANISATION,
    "法人或其他组织": ORGANISATION,
    "enterprise": ORGANISATION,
    "个体工商户": SOLE_TRADER,
    "个体": SOLE_TRADER,
    "自然人": PERSON,
    "person": PERSON,
}
# 证件类型 meaning the resident identity card; any other document is refused (see docs/node.md).
RESIDENT_ID_TYPES = frozenset(
    {"", "身份证", "居民身份证", "身份证号", "身份证号码", "居民身份证号码", "中华人民共和国居民身份证"}
)
SIMPLIFIED_MARK = re.compile(r"当场|简易")
NOT_PENALISED = re.compile(r"不予(行政)?处罚")
NOT_PENALISED_CATEGORY = "不予行政处罚"
NO_IDENTITY = "无文号"

# Reasons that more than one place writes.
FUTURE = "处罚决定日期 {} 晚于今天 (decision date is in the future)"
PUBLICITY_BEFORE = "公示截止期早于决定日期 (publicity ends before the decision date)"
REMOVED_BEFORE = "移出日期早于列入日期 (removed before it was listed)"


@dataclass(frozen=True, slots=True)
class FileOptions:
    """What the operator says about a whole file (``jjj ingest --domain/--scope``) and
    what its layout fixes."""

    domain: str = ""  # a domain code
    scope: Scope | None = None
    layout_domain: str = ""
    layout_scope: Scope | None = None


@dataclass
class RowRules:
    """The rules for one region's node, with caches of what each distinct value means."""

    catalogue: Catalogue
    today: date
    pilot_codes: frozenset[str] = frozenset()
    options: FileOptions = field(default_factory=FileOptions)

    @cached_property
    def authorities(self) -> AuthorityMap:
        return authority_map(self.catalogue.region)

    @cached_property
    def covered(self) -> frozenset[tuple[str, SubjectKind, Scope]]:
        return frozenset(
            (entry.domain.code, entry.subject, scope) for entry in self.catalogue.entries for scope in entry.scopes
        )

    # Each of these answers for one distinct value, and raises RowError for a bad one.

    def scope_of(self, text: str) -> Scope:
        if not text:
            return self.options.scope or self.options.layout_scope or Scope.ADMINISTRATIVE_PENALTY
        try:
            return Scope.parse(text)
        except CreditError:
            raise RowError(f"未知数据范围 '{text}' (unknown scope '{text}')") from None

    def domain_of(self, given: str, authority: str) -> str:
        if given:
            try:
                return domain(given).code
            except CreditError as exc:
                raise RowError(exc.detail) from None
        if self.options.domain:
            return self.options.domain
        if self.options.layout_domain:
            return self.options.layout_domain
        code = self.authorities.domain_of(authority)
        if code is None:
            raise RowError(
                f"处罚机关「{authority}」无法对应领域，请在领域列或 --domain 中注明，或将该机关加入机关对照表 "
                f"(authority '{authority}' maps to no domain: give a 领域 column or --domain, or add it to the "
                f"authority table)",
                authority=authority,
            )
        return code

    def date_of(self, text: str, what: str, *, open_ended: bool) -> date | None:
        if not text or (open_ended and text in OPEN_ENDED):
            return None
        return parse_date(text, what)

    def procedure_of(self, text: str, decision_no: str, scope: Scope) -> Procedure:
        if text:
            known = PROCEDURES.get(text)
            if known is None:
                raise RowError(f"未知程序类型 '{text}' (unknown procedure)")
            return known
        if scope is not Scope.ADMINISTRATIVE_PENALTY:
            return Procedure.NOT_APPLICABLE
        # 当场 decisions (…（当场）决字…) are the simplified procedure by law.
        return Procedure.SIMPLIFIED if SIMPLIFIED_MARK.search(decision_no) else Procedure.GENERAL

    def status_of(self, text: str) -> RecordStatus:
        status = STATUSES.get(text)
        if status is None:
            raise RowError(f"未知状态 '{text}' (unknown status)")
        return status

    def subject_of(
        self, type_text: str, uscc: str, resident_id: str, id_type: str, legal_rep_id: str, legal_rep_id_type: str,
        reg_no: str, org_code: str,
    ) -> Subject:  # fmt: skip
        """The subject a row names; codes are cleaned."""
        kind = SUBJECT_TYPES.get(type_text)
        if kind is None:
            raise RowError(f"未知行政相对人类别 '{type_text}' (unknown subject type)")
        if kind == PERSON:
            self._check_document(id_type)
            value = resident_id or uscc
            if not value:
                raise RowError("自然人缺少公民身份号码 (a person row has no resident ID number)")
            return self._parse(value, SubjectKind.PERSON)
        if kind == SOLE_TRADER:
            if uscc:
                # The operator's ID number in the code column: the business is recorded
                # under its operator, a person, never as an enterprise.
                if uscc[:17].isdigit() and len(uscc) == 18:
                    return self._parse(uscc, SubjectKind.PERSON)
                return self._parse(uscc, SubjectKind.ENTERPRISE)
            if resident_id:
                self._check_document(id_type)
                return self._parse(resident_id, SubjectKind.PERSON)
            if legal_rep_id:
                self._check_document(legal_rep_id_type)
                return self._parse(legal_rep_id, SubjectKind.PERSON)
            raise self._no_identifier(reg_no, org_code)
        if kind == ORGANISATION:
            if not uscc:
                raise self._no_identifier(reg_no, org_code)
            subject = self._parse(uscc, None)
            if subject.kind is SubjectKind.PERSON:
                raise RowError(
                    f"统一社会信用代码列中是公民身份号码 '{uscc}'，而行政相对人类别为法人及非法人组织 "
                    f"(a resident ID number is given as the code of an organisation)"
                )
            return subject
        if uscc:
            return self._parse(uscc, None)
        if resident_id:
            self._check_document(id_type)
            return self._parse(resident_id, SubjectKind.PERSON)
        raise self._no_identifier(reg_no, org_code)

    @staticmethod
    def _check_document(id_type: str) -> None:
        if id_type not in RESIDENT_ID_TYPES:
            raise RowError(
                f"证件类型「{id_type}」不受理：信用报告只按统一社会信用代码或公民身份号码出具 "
                f"(identity document '{id_type}' is not accepted: reports are issued for credit codes and "
                f"resident ID numbers only)"
            )

    @staticmethod
    def _no_identifier(reg_no: str, org_code: str) -> RowError:
        if reg_no or org_code:
            return RowError(
                "只有工商注册号或组织机构代码，缺少统一社会信用代码 "
                "(only a registration number or organisation code is given: the unified social credit code is needed)"
            )
        return RowError("缺少主体标识 (no unified social credit code or ID number)")

    def _parse(self, value: str, kind: SubjectKind | None) -> Subject:
        mangled = excel_mangled(value)
        if mangled is not None:
            raise mangled
        try:
            return parse_subject(value, kind=kind, pilot_codes=self.pilot_codes, today=self.today)
        except CreditError as exc:
            raise RowError(exc.detail) from None

    def draft(self, row: Mapping[str, str]) -> RecordDraft:
        """The record one row means.

        Raises:
            RowError: the row's reason for rejection.
        """
        f = {name: clean_text(row.get(name, "")) for name in TEXT_FIELDS}
        for name in REQUIRED:
            if not f[name]:
                raise RowError(f"缺少必填字段 {FIELD_ZH[name]} (required field {name} is empty)")
        for name, limit in MAX_LEN.items():
            if len(f[name]) > limit:
                raise RowError(f"{FIELD_ZH[name]} 超过 {limit} 字符 ({name} longer than {limit} characters)")
        if not f["record_id"].isprintable():
            raise RowError("记录编号含控制字符 (record id contains control characters)")
        codes = {name: clean_code(row.get(name, "")) for name in CODE_FIELDS}
        subject = self.subject_of(
            f["subject_type"], codes["uscc"], codes["resident_id"], f["id_type"], codes["legal_rep_id"],
            f["legal_rep_id_type"], codes["reg_no"], codes["org_code"],
        )  # fmt: skip
        scope = self.scope_of(f["scope"])
        domain_code = self.domain_of(f["domain"], f["authority"])
        decided_on = self.date_of(f["decided_on"], "处罚决定日期", open_ended=False)
        assert decided_on is not None
        if decided_on > self.today:
            raise RowError(FUTURE.format(decided_on))
        publicity_until = self.date_of(f["publicity_until"], "公示截止期", open_ended=True)
        if publicity_until and publicity_until < decided_on:
            raise RowError(PUBLICITY_BEFORE)
        removed_on = self.date_of(f["removed_on"], "移出日期", open_ended=True)
        if removed_on and removed_on < decided_on:
            raise RowError(REMOVED_BEFORE)
        procedure = self.procedure_of(f["procedure"], f["decision_no"], scope)
        status = self.status_of(f["status"])
        category, content = describe(f["category"], f["content"], f["fine"], f["confiscated"], f["reason"])
        return finish(
            record_id=f["record_id"],
            subject=subject,
            subject_name=f["subject_name"],
            domain=domain_code,
            scope=scope,
            decision_no=f["decision_no"],
            authority=f["authority"],
            decided_on=decided_on,
            category=category,
            content=content,
            procedure=procedure,
            status=status,
            publicity_until=publicity_until,
            removed_on=removed_on,
        )

    def reportable(self, draft: RecordDraft) -> bool:
        """Whether the region's catalogue covers the record's domain × scope for its kind
        of subject: only then can a report show it. Other records are stored all the same."""
        return (draft.domain, draft.subject_kind, draft.scope) in self.covered


def describe(category: str, content: str, fine: str, confiscated: str, reason: str) -> tuple[str, str]:
    """Category and content as stored: a decision not to penalise written only in the
    content is marked in the category (where the rules look for it); empty content is
    filled from the amounts or the listing reason.

    Raises nothing.
    """
    if "不予" not in category and NOT_PENALISED.search(content):
        category = NOT_PENALISED_CATEGORY if category in ("", "其他") else f"{category}；{NOT_PENALISED_CATEGORY}"
    if not content:
        parts = []
        amount = parse_amount(fine) if fine else None
        if amount:
            parts.append(f"罚款 {format_amount(amount)} 万元")
        amount = parse_amount(confiscated) if confiscated else None
        if amount:
            parts.append(f"没收 {format_amount(amount)} 万元")
        content = "；".join(parts) or reason
    return category, content


def record_key(scope: Scope, decision_no: str, subject_id: str, authority: str, decided_on: date) -> str:
    """The stable id of a record whose source gave none.

    A decision number identifies a decision with its subject (the id is the one nodes
    have always derived, so records keep their ids). Without a number (无, /, -, empty)
    the authority and date take its place, so that two decisions never merge.
    """
    if decision_no:
        key = f"{scope.value}\x1f{decision_no}\x1f{subject_id}"
    else:
        key = f"{scope.value}\x1f{NO_IDENTITY}\x1f{subject_id}\x1f{authority}\x1f{decided_on.isoformat()}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def second_key(record_id: str, authority: str, decided_on: date) -> str:
    """The id of a second decision that shares a number with another in the same file
    (a different authority or date): derived from the first id, so stable across loads."""
    key = f"{record_id}\x1f{authority}\x1f{decided_on.isoformat()}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def finish(*, record_id: str, subject: Subject, decided_on: date, **fields: object) -> RecordDraft:
    scope = fields["scope"]
    assert isinstance(scope, Scope)
    if not record_id:
        record_id = record_key(scope, str(fields["decision_no"]), subject.id, str(fields["authority"]), decided_on)
    return make_draft(
        record_id=record_id,
        subject_id=subject.id,
        subject_kind=subject.kind,
        decided_on=decided_on,
        **fields,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class Merged:
    """Records of one file after rows of one decision are joined."""

    drafts: list[RecordDraft]
    merged_rows: int  # rows folded into another row's record
    split: list[str]  # warnings: one number, two decisions


def merge_decisions(drafts: Iterable[tuple[int, RecordDraft]]) -> Merged:
    """Join the rows of one file that are one decision (several rows for 罚款 and 没收),
    and keep apart rows that share a decision number but not its authority or date.

    ``drafts`` are (line, draft) in file order. Rows of one record id with the same
    authority and date are one record: the first row's fields, with every distinct
    category and content joined by "；". A row with the same id but another authority
    or date is a second record (:func:`second_key`), and a warning names its line.

    Raises nothing.
    """
    out: dict[str, RecordDraft] = {}
    lines: dict[str, int] = {}
    merged_rows = 0
    split: list[str] = []
    for line, draft in drafts:
        record_id = draft.record_id
        known = out.get(record_id)
        if known is not None and (known.authority, known.decided_on) != (draft.authority, draft.decided_on):
            split.append(
                f"第 {line} 行与第 {lines[record_id]} 行文号相同（{draft.decision_no or '无'}）但机关或日期不同，"
                f"作为两条记录 (line {line} shares its decision number with line {lines[record_id]} but not its "
                f"authority or date: stored as two records)"
            )
            record_id = second_key(record_id, draft.authority, draft.decided_on)
            draft = rekey(draft, record_id)
            known = out.get(record_id)
        if known is None:
            out[record_id] = draft
            lines[record_id] = line
            continue
        merged_rows += 1
        out[record_id] = join(known, draft)
    return Merged(list(out.values()), merged_rows, split)


def _joined(a: str, b: str) -> str:
    if not b or b in a.split("；"):
        return a
    return f"{a}；{b}" if a else b


def join(first: RecordDraft, other: RecordDraft) -> RecordDraft:
    """One decision's record from two of its rows."""
    return rebuild(
        first, category=_joined(first.category, other.category), content=_joined(first.content, other.content)
    )


def rekey(draft: RecordDraft, record_id: str) -> RecordDraft:
    return replace(draft, record_id=record_id)


def rebuild(draft: RecordDraft, **changes: str) -> RecordDraft:
    """A draft with fields changed and its content hash recomputed."""
    fields = {name: getattr(draft, name) for name in RecordDraft.__slots__ if name != "content_hash"}
    fields.update(changes)
    return make_draft(**fields)


def draft_file(rules: RowRules, rows: Sequence[tuple[int, Mapping[str, str]]]) -> tuple[Merged, list[tuple[int, str]]]:
    """A whole (small) file by the row rules: the records it stores and its rejects.
    The reference for the columnar loader.

    Raises nothing.
    """
    good: list[tuple[int, RecordDraft]] = []
    sourced: list[RecordDraft] = []  # rows with the source's own record id: never joined
    rejects: list[tuple[int, str]] = []
    for line, row in rows:
        try:
            draft = rules.draft(row)
        except RowError as exc:
            rejects.append((line, str(exc)))
            continue
        if clean_text(row.get("record_id", "")):
            sourced.append(draft)
        else:
            good.append((line, draft))
    merged = merge_decisions(good)
    return Merged(sourced + merged.drafts, merged.merged_rows, merged.split), rejects


# The same joins over items in storage form (nodes.store.Prepared), for the loader when
# a decision's rows lie in different batches.


def rebuild_item(stored_category: str, stored_content: str, item: tuple[Any, ...]) -> tuple[Any, ...]:
    """``item`` holding the category and content a stored version of its decision had
    too, with its content hash recomputed."""
    category = _joined(stored_category, item[10])
    content = _joined(stored_content, item[11])
    fields = (*item[2:10], category, content, *item[12:])
    return (item[0], _hash_of(fields), *fields)


def second_item(item: tuple[Any, ...]) -> tuple[Any, ...]:
    """``item`` as a second decision sharing a number (:func:`second_key`)."""
    return (second_key(item[0], item[8], date.fromisoformat(item[9])), *item[1:])


def _hash_of(fields: tuple[Any, ...]) -> str:
    return hashlib.sha256("\x1f".join("" if v is None else str(v) for v in fields).encode()).hexdigest()


# Registers of market entities (市场主体登记信息): one entry per subject.

REGISTER_TEXT_FIELDS = ("subject_name", "legal_rep", "address", "registered_by", "established_on", "reg_status")
REGISTER_MAX_LEN = {"subject_name": 200, "legal_rep": 100, "address": 300, "registered_by": 200, "reg_status": 50}
REGISTER_FIELD_ZH = {
    "subject_name": "名称",
    "legal_rep": "法定代表人（负责人、经营者）",
    "address": "住所（经营场所）",
    "registered_by": "登记机关",
    "reg_status": "登记状态",
}
ESTABLISHED_FUTURE = "成立日期 {} 晚于今天 (established date is in the future)"
NOT_A_MARKET_ENTITY = (
    "公民身份号码不是市场主体登记的标识，市场主体登记信息按统一社会信用代码登记 "
    "(a resident ID number: registers of market entities are kept by unified social credit code)"
)


@dataclass(frozen=True, slots=True)
class RegisterRules:
    """The rules for a row of a register of market entities; each answers for one
    distinct value and raises :class:`RowError` for a bad one."""

    today: date
    pilot_codes: frozenset[str] = frozenset()

    def code_of(self, uscc: str, reg_no: str, org_code: str) -> str:
        """The entity's credit code (cleaned); an enterprise only.

        Raises:
            RowError: no code, a registration number or organisation code only, a code
                Excel mangled, a resident ID number, or an invalid code.
        """
        if not uscc:
            raise RowRules._no_identifier(reg_no, org_code)
        mangled = excel_mangled(uscc)
        if mangled is not None:
            raise mangled
        if len(uscc) == 18 and uscc[:17].isdigit():
            try:
                parse_subject(uscc, kind=SubjectKind.PERSON, today=self.today)
            except CreditError:
                pass
            else:
                raise RowError(NOT_A_MARKET_ENTITY)
        try:
            return parse_subject(uscc, kind=SubjectKind.ENTERPRISE, pilot_codes=self.pilot_codes, today=self.today).id
        except CreditError as exc:
            raise RowError(exc.detail) from None

    def established_of(self, text: str) -> date | None:
        """The established date (成立日期), or None when the register gives none.

        Raises:
            RowError: not a date, or a day after today.
        """
        if not text:
            return None
        day = parse_date(text, "成立日期")
        if day > self.today:
            raise RowError(ESTABLISHED_FUTURE.format(day))
        return day
