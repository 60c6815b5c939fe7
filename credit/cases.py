"""Objections and credit repair (异议、信用修复): the cases' vocabulary and their rules.

A subject objects to one of its records (the record is wrong) or applies for its credit
repair (the obligations are fulfilled), with a reason and optionally one attachment. The
owning authority decides: an objection is upheld, corrected or revoked; a repair is
granted or refused (:data:`RESOLUTIONS`). Every outcome but a refusal is the record's
next version (:func:`outcome_of`). The node keeps the cases (``nodes.objections``); the
gateway and the portal speak of them in these words.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

import filetype  # type: ignore[import-untyped]

from credit.errors import InvalidInput
from credit.regions import Region
from credit.rules import CreditRecord, RecordStatus

MAX_REASON = 2000
MAX_NOTE = 2000
MAX_ATTACHMENT = 4 * 1024 * 1024
# What an attachment may be, by its content (not by what the uploader called it).
ATTACHMENT_TYPES = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}
REGION_CODES = {Region.BEIJING: "BJ", Region.TIANJIN: "TJ", Region.HEBEI: "HE"}


class CaseKind(enum.StrEnum):
    OBJECTION = "objection"  # 异议
    CREDIT_REPAIR = "credit_repair"  # 信用修复

    @property
    def code(self) -> str:
        return "YY" if self is CaseKind.OBJECTION else "XF"

    @property
    def name_zh(self) -> str:
        return "异议" if self is CaseKind.OBJECTION else "信用修复"


class CaseState(enum.StrEnum):
    OPEN = "open"  # 处理中
    CLOSED = "closed"  # 已办结


class Resolution(enum.StrEnum):
    UPHELD = "upheld"  # 维持
    CORRECTED = "corrected"  # 更正
    REVOKED = "revoked"  # 撤销
    REPAIRED = "repaired"  # 已信用修复
    REFUSED = "refused"  # 不予修复

    @property
    def name_zh(self) -> str:
        return {
            Resolution.UPHELD: "维持原记录",
            Resolution.CORRECTED: "已更正",
            Resolution.REVOKED: "已撤销",
            Resolution.REPAIRED: "已信用修复",
            Resolution.REFUSED: "不予修复",
        }[self]


RESOLUTIONS = {
    CaseKind.OBJECTION: (Resolution.UPHELD, Resolution.CORRECTED, Resolution.REVOKED),
    CaseKind.CREDIT_REPAIR: (Resolution.REPAIRED, Resolution.REFUSED),
}


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    sha256: str
    size: int
    data: bytes = b""  # empty unless asked for


@dataclass(frozen=True, slots=True)
class Correction:
    """What a correction changes; ``None`` leaves a field as it was."""

    category: str | None = None
    content: str | None = None
    decided_on: date | None = None
    publicity_until: date | None = None
    removed_on: date | None = None
    decision_no: str | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


@dataclass(frozen=True, slots=True)
class Case:
    number: str
    region: Region
    kind: CaseKind
    state: CaseState
    record_id: str
    record_version: int
    subject_id: str
    reason: str
    attachment: Attachment | None
    filed_by: str
    filed_at: datetime
    resolution: Resolution | None = None
    resolution_note: str = ""
    resolved_by: str = ""
    resolved_at: datetime | None = None
    new_version: int = 0
    record: CreditRecord | None = None  # the record's current version


def case_number(region: Region, kind: CaseKind, case_id: int) -> str:
    """``BJ-YY-00000012``: region, kind (YY 异议, XF 信用修复) and the case's id."""
    return f"{REGION_CODES[region]}-{kind.code}-{case_id:08d}"


_NUMBER = re.compile(r"^(BJ|TJ|HE)-(YY|XF)-(\d{1,12})$")


def parse_case_number(number: str, *, field: str = "number") -> tuple[Region, CaseKind, int]:
    """The region, kind and id a case number names.

    Raises:
        InvalidInput: not a case number.
    """
    match = _NUMBER.match(number.strip().upper())
    if match is None:
        raise InvalidInput.for_field(field, f"办件编号格式不正确 (not a case number: {number[:40]!r})")
    region = next(r for r, code in REGION_CODES.items() if code == match.group(1))
    kind = CaseKind.OBJECTION if match.group(2) == "YY" else CaseKind.CREDIT_REPAIR
    return region, kind, int(match.group(3))


def check_attachment(filename: str, data: bytes) -> Attachment:
    """An uploaded file accepted as an attachment: a PDF, PNG or JPEG of at most 4 MiB,
    recognised by its content.

    Raises:
        InvalidInput: empty, too large, or another kind of file.
    """
    if not data:
        raise InvalidInput.for_field("attachment", "附件为空 (the attachment is empty)")
    if len(data) > MAX_ATTACHMENT:
        raise InvalidInput.for_field(
            "attachment", f"附件不能超过 4 MB (the attachment is {len(data):,} bytes; at most {MAX_ATTACHMENT:,})"
        )
    kind = filetype.guess(data)
    mime = kind.mime if kind is not None else ""
    if mime not in ATTACHMENT_TYPES:
        raise InvalidInput.for_field(
            "attachment", f"附件须为 PDF、PNG 或 JPEG 文件 (attachments are PDF, PNG or JPEG; got {mime or 'unknown'})"
        )
    # Control and format characters (a right-to-left override makes "exe.pdf" read as
    # "fdp.exe"), line separators and path separators become "_".
    cleaned = "".join(
        "_" if ch in "/\\" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") else ch
        for ch in filename.strip()
    )
    name = cleaned[-200:] or f"attachment.{ATTACHMENT_TYPES[mime]}"
    return Attachment(name, mime, hashlib.sha256(data).hexdigest(), len(data), data)


def required_text(value: str, field: str, limit: int, what: str) -> str:
    """A reason or note as given, stripped.

    Raises:
        InvalidInput: empty, or longer than ``limit`` characters.
    """
    value = value.strip()
    if not value:
        raise InvalidInput.for_field(field, f"请填写{what} ({field} is required)")
    if len(value) > limit:
        raise InvalidInput.for_field(field, f"{what}不能超过 {limit} 字 ({field} longer than {limit} characters)")
    return value


def outcome_of(record: CreditRecord, resolution: Resolution, correction: Correction | None) -> CreditRecord:
    """The record as a case's resolution leaves it (its next version's content)."""
    if resolution is Resolution.REVOKED:
        return dataclasses.replace(record, status=RecordStatus.REVOKED)
    if resolution is Resolution.REPAIRED:
        return dataclasses.replace(record, status=RecordStatus.REPAIRED)
    if resolution is Resolution.CORRECTED and correction is not None:
        changes = {f.name: getattr(correction, f.name) for f in dataclasses.fields(correction)}
        return dataclasses.replace(record, **{k: v for k, v in changes.items() if v is not None})
    return record  # upheld: the same content, re-examined
