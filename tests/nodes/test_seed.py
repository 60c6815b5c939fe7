"""Synthetic data: valid identifiers of the region, mostly clean, every kind of record."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from credit.catalogue import Scope
from credit.identifiers import SubjectKind, parse_subject
from credit.profiles import get_profile
from credit.regions import Region
from credit.rules import Procedure, RecordStatus
from credit.window import compute_window
from nodes.seed import DEMO_SUBJECTS, generate, synthetic_subject

TODAY = date(2025, 6, 16)


def test_subjects_are_valid_and_belong_to_the_region() -> None:
    for region in Region:
        ids = set()
        for i in range(2000):
            subject = synthetic_subject(region, i)
            parsed = parse_subject(subject.id)
            assert parsed.kind is subject.kind
            division = subject.id[2:8] if subject.kind is SubjectKind.ENTERPRISE else subject.id[:6]
            assert division in region.divisions
            ids.add(subject.id)
        assert len(ids) == 2000


def test_every_kind_of_record_the_rules_must_handle_is_generated() -> None:
    drafts = [d for batch in generate(Region.TIANJIN, subjects=3000, today=TODAY) for d in batch]
    window = compute_window(TODAY, 3, get_profile("tianjin-2023"))
    versions = Counter(d.record_id for d in drafts)

    assert any(d.procedure is Procedure.SIMPLIFIED for d in drafts)
    assert any("不予" in d.category for d in drafts)
    assert any(d.status is RecordStatus.REVOKED for d in drafts)
    repaired = [d for d in drafts if d.status is RecordStatus.REPAIRED]
    assert repaired and all(versions[d.record_id] == 2 for d in repaired)
    lists = [d for d in drafts if d.scope.is_list]
    assert any(d.removed_on and d.removed_on < window.start for d in lists)  # expired before the window
    assert any(d.removed_on is None and window.start <= d.decided_on <= window.cutoff for d in lists)
    penalties = [d for d in drafts if d.scope is Scope.ADMINISTRATIVE_PENALTY]
    just_outside = [d for d in penalties if timedelta(days=0) < window.start - d.decided_on <= timedelta(days=25)]
    assert just_outside
    # Most subjects have no record at all.
    with_records = {d.subject_id for d in drafts} - {demo.id for demo in DEMO_SUBJECTS}
    assert len(with_records) < 3000 * 0.3


def test_generation_is_deterministic() -> None:
    first = [d for batch in generate(Region.HEBEI, subjects=500, today=TODAY) for d in batch]
    second = [d for batch in generate(Region.HEBEI, subjects=500, today=TODAY) for d in batch]
    other_seed = [d for batch in generate(Region.HEBEI, subjects=500, today=TODAY, seed=7) for d in batch]
    assert first == second
    assert first != other_seed
