"""Record builders shared by the node tests."""

from __future__ import annotations

import random
from datetime import date, timedelta

from credit.catalogue import Scope
from credit.identifiers import SubjectKind, make_uscc
from credit.rules import Procedure, RecordStatus
from nodes.records import RecordDraft, make_draft

ACME = make_uscc("91120116MA05JBXQ1")
OTHER = make_uscc("91120104MA06KLMN2")
# Application date used throughout: Monday 16 June 2025. Cut-off: the 7th working day
# before it (Dragon Boat holiday 31 May–2 June is further back), 5 June 2025.
APPLIED = date(2025, 6, 16)
CUTOFF = date(2025, 6, 5)


def penalty(
    subject: str = ACME,
    *,
    decision_no: str = "津市场监管罚〔2024〕1号",
    decided_on: date = date(2024, 3, 15),
    domain: str = "market_regulation",
    scope: Scope = Scope.ADMINISTRATIVE_PENALTY,
    procedure: Procedure = Procedure.GENERAL,
    status: RecordStatus = RecordStatus.IN_FORCE,
    category: str = "罚款",
    removed_on: date | None = None,
    kind: SubjectKind = SubjectKind.ENTERPRISE,
) -> RecordDraft:
    return make_draft(
        subject_id=subject,
        subject_kind=kind,
        subject_name="天津测试科技有限公司",
        domain=domain,
        scope=scope,
        decision_no=decision_no,
        authority="天津市市场监督管理委员会",
        decided_on=decided_on,
        category=category,
        content="罚款人民币5000元",
        procedure=procedure,
        status=status,
        removed_on=removed_on,
    )


def random_penalty(
    rng: random.Random,
    subject: str,
    *,
    decision_no: str,
    decided_on: date,
    domain: str,
    kind: SubjectKind = SubjectKind.ENTERPRISE,
) -> RecordDraft:
    """A record of ``subject`` with a random scope, procedure, status and category, and,
    for half the list scopes, a removal date: one on either side of every rule a count
    applies."""
    scope = rng.choice(list(Scope))
    removed = decided_on + timedelta(days=rng.randrange(1, 900)) if scope.is_list and rng.random() < 0.5 else None
    return penalty(
        subject,
        kind=kind,
        decision_no=decision_no,
        decided_on=decided_on,
        domain=domain,
        scope=scope,
        procedure=rng.choice(list(Procedure)),
        status=rng.choice(list(RecordStatus)),
        category=rng.choice(("罚款", "警告", "不予行政处罚")),
        removed_on=removed,
    )
