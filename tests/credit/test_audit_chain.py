"""The audit chain names the first entry that was edited, deleted, inserted or moved."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from credit.audit import GENESIS, Action, Entry, Event, chain, seal, verify_chain
from credit.signing import Keyring, SigningKey

KEY = SigningKey.generate()
RING = Keyring([KEY.private.public_key()])
START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def build(n: int) -> list[Entry]:
    out, prev = [], GENESIS
    for i in range(1, n + 1):
        entry = chain(prev, i, START + timedelta(seconds=i), Event(f"user{i}", "enterprise", Action.REPORT_ISSUED, "S"))
        out.append(entry)
        prev = entry.hash
    return out


def test_an_intact_chain_and_its_checkpoints_verify() -> None:
    entries = build(10)
    report = verify_chain(entries, [seal(entries[4], KEY), seal(entries[9], KEY)], RING)
    assert report.intact and report.entries == 10 and report.checkpoints == 2


def test_an_edited_entry_is_named() -> None:
    entries = build(10)
    entries[6] = dataclasses.replace(entries[6], actor="someone-else")
    report = verify_chain(entries, [], RING)
    assert report.broken_at == 7 and "changed" in report.reason


def test_a_deleted_entry_is_named() -> None:
    entries = build(10)
    del entries[3]
    report = verify_chain(entries, [], RING)
    assert report.broken_at == 4 and "missing" in report.reason


def test_reordered_entries_are_named() -> None:
    entries = build(10)
    # Swap two entries' places, renumbering them so the numbers still run in order.
    a, b = entries[2], entries[3]
    entries[2] = dataclasses.replace(b, seq=3)
    entries[3] = dataclasses.replace(a, seq=4)
    report = verify_chain(entries, [], RING)
    assert report.broken_at == 3


def test_a_consistently_rewritten_chain_is_caught_by_its_checkpoint() -> None:
    entries = build(10)
    sealed = seal(entries[7], KEY)
    forged, prev = [], GENESIS
    for e in entries:
        actor = "forged" if e.seq == 5 else e.actor
        fresh = chain(prev, e.seq, e.at, Event(actor, e.role, Action(e.action), e.subject))
        forged.append(fresh)
        prev = fresh.hash
    assert verify_chain(forged, [], RING).intact  # a hash chain alone cannot tell
    report = verify_chain(forged, [sealed], RING)
    assert report.broken_at == 8 and "checkpoint" in report.reason


def test_a_cut_tail_and_a_forged_checkpoint_are_caught() -> None:
    entries = build(10)
    sealed = seal(entries[9], KEY)
    assert verify_chain(entries[:7], [sealed], RING).broken_at == 8
    foreign = seal(entries[9], SigningKey.generate())
    report = verify_chain(entries, [foreign], RING)
    assert report.broken_at == 10 and "unknown signing key" in report.reason
