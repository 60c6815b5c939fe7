"""Record drafts: validated input rows on their way into storage.

A draft is a record as an authority sent it, before the node gives it a version. Its
``record_id`` is stable across versions (given by the source, or derived from scope,
decision number and subject), and its ``content_hash`` covers every field a person could
read, so that the same row loaded twice is recognised as unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from credit.catalogue import Scope
from credit.identifiers import SubjectKind
from credit.rules import Procedure, RecordStatus


@dataclass(frozen=True, slots=True)
class RecordDraft:
    record_id: str
    subject_id: str
    subject_kind: SubjectKind
    subject_name: str
    domain: str
    scope: Scope
    decision_no: str
    authority: str
    decided_on: date
    category: str
    content: str
    procedure: Procedure
    status: RecordStatus
    publicity_until: date | None
    removed_on: date | None
    content_hash: str


def derive_record_id(scope: Scope, decision_no: str, subject_id: str) -> str:
    """The stable id of a record whose source gave none."""
    key = f"{scope.value}\x1f{decision_no}\x1f{subject_id}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


def content_hash(
    subject_id: str,
    subject_kind: SubjectKind,
    subject_name: str,
    domain: str,
    scope: Scope,
    decision_no: str,
    authority: str,
    decided_on: date,
    category: str,
    content: str,
    procedure: Procedure,
    status: RecordStatus,
    publicity_until: date | None,
    removed_on: date | None,
) -> str:
    """Hex sha-256 over every readable field, in a fixed order."""
    parts = (
        subject_id,
        subject_kind,  # StrEnum members are their values
        subject_name,
        domain,
        scope,
        decision_no,
        authority,
        decided_on.isoformat(),
        category,
        content,
        procedure,
        status,
        publicity_until.isoformat() if publicity_until else "",
        removed_on.isoformat() if removed_on else "",
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def make_draft(
    *,
    subject_id: str,
    subject_kind: SubjectKind,
    subject_name: str,
    domain: str,
    scope: Scope,
    decision_no: str,
    authority: str,
    decided_on: date,
    category: str = "",
    content: str = "",
    procedure: Procedure = Procedure.GENERAL,
    status: RecordStatus = RecordStatus.IN_FORCE,
    publicity_until: date | None = None,
    removed_on: date | None = None,
    record_id: str = "",
) -> RecordDraft:
    """A draft with its record id (derived unless given) and content hash."""
    return RecordDraft(
        record_id=record_id or derive_record_id(scope, decision_no, subject_id),
        subject_id=subject_id,
        subject_kind=subject_kind,
        subject_name=subject_name,
        domain=domain,
        scope=scope,
        decision_no=decision_no,
        authority=authority,
        decided_on=decided_on,
        category=category,
        content=content,
        procedure=procedure,
        status=status,
        publicity_until=publicity_until,
        removed_on=removed_on,
        content_hash=content_hash(
            subject_id,
            subject_kind,
            subject_name,
            domain,
            scope,
            decision_no,
            authority,
            decided_on,
            category,
            content,
            procedure,
            status,
            publicity_until,
            removed_on,
        ),
    )
