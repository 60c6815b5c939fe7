"""The audit log as a hash chain (查询使用登记): every entry commits to the one before it,
and signed checkpoints commit to the chain's head, so that an edited, deleted, inserted
or reordered entry is detected, and so is a chain rewritten from some entry onwards.

An entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON
(RFC 8785), its sequence number included. A checkpoint is a compact JWS (EdDSA) over
``{"seq", "hash", "at"}`` of the entry it seals. The storage is elsewhere
(:mod:`nodes.auditlog`); this module computes and checks.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credit.signing import Keyring, SigningKey, VerificationError, canonical, sign, verify

GENESIS = "0" * 64


class Action(enum.StrEnum):
    """What was done. Gateway and node entries share the vocabulary."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    REPORT_ISSUED = "report_issued"
    REPORT_VIEWED = "report_viewed"
    GRANT_PREVIEWED = "grant_previewed"
    GRANT_CREATED = "grant_created"
    GRANT_REDEEMED = "grant_redeemed"
    GRANT_REVOKED = "grant_revoked"
    VERIFIED = "verified"
    BATCH_CHECK = "batch_check"
    REFUSED = "refused"
    NODE_QUERY = "node_query"
    NODE_BATCH = "node_batch"
    OBJECTION_FILED = "objection_filed"
    OBJECTION_VIEWED = "objection_viewed"
    OBJECTION_RESOLVED = "objection_resolved"
    CREDIT_REPAIRED = "credit_repaired"


class Outcome(enum.StrEnum):
    OK = "ok"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Event:
    """One access, before it takes its place in the chain.

    ``subject`` is the subject's identifier, or empty where identifiers must not be kept
    (public verification: ``detail`` then holds the report's hash only).
    """

    actor: str
    role: str
    action: Action
    subject: str = ""
    purpose: str = ""
    outcome: Outcome = Outcome.OK
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    purpose: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def entry_hash(prev_hash: str, seq: int, at: datetime, event: Event | Entry) -> str:
    """The hash an entry must carry.

    Raises nothing.
    """
    body = canonical(
        {
            "seq": seq,
            "at": _utc(at),
            "actor": event.actor,
            "role": event.role,
            "action": str(event.action),
            "subject": event.subject,
            "purpose": event.purpose,
            "outcome": str(event.outcome),
            "detail": event.detail,
        }
    )
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + body).hexdigest()


def chain(prev_hash: str, seq: int, at: datetime, event: Event) -> Entry:
    """The entry ``event`` becomes after the entry whose hash is ``prev_hash``.

    Raises nothing.
    """
    return Entry(
        seq,
        at,
        event.actor,
        event.role,
        str(event.action),
        event.subject,
        event.purpose,
        str(event.outcome),
        event.detail,
        prev_hash,
        entry_hash(prev_hash, seq, at, event),
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    jws: str


def seal(entry: Entry, key: SigningKey, *, at: datetime | None = None) -> Checkpoint:
    """A signed checkpoint of the chain up to ``entry``.

    Raises nothing.
    """
    when = at or datetime.now(UTC)
    return Checkpoint(entry.seq, entry.hash, when, sign({"seq": entry.seq, "hash": entry.hash, "at": _utc(when)}, key))


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    checkpoints: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(entries: Iterable[Entry], checkpoints: Iterable[Checkpoint], keyring: Keyring) -> ChainReport:
    """Check a whole chain, in storage order by sequence number, and its checkpoints.

    Names the first entry that does not fit: an edited one (its hash is wrong), one
    after a deletion or a reordering (its predecessor is not the one it committed to,
    or a number is missing), or the checkpointed entry of a chain rewritten consistently
    after the checkpoint was signed. A chain cut short after its last checkpoint is
    reported at the first missing entry.

    Raises nothing: everything found is in the report.
    """
    sealed: dict[int, str] = {}
    count_checkpoints = 0
    for checkpoint in checkpoints:
        count_checkpoints += 1
        try:
            payload: dict[str, Any] = verify(checkpoint.jws, keyring)
        except VerificationError as exc:
            return ChainReport(0, count_checkpoints, checkpoint.seq, f"checkpoint at {checkpoint.seq}: {exc.detail}")
        if payload.get("seq") != checkpoint.seq or payload.get("hash") != checkpoint.hash:
            return ChainReport(
                0, count_checkpoints, checkpoint.seq, f"checkpoint at {checkpoint.seq} does not match its signature"
            )
        sealed[checkpoint.seq] = checkpoint.hash
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            return ChainReport(
                count, count_checkpoints, expected_seq, f"entry {expected_seq} is missing (next is {entry.seq})"
            )
        if entry.prev_hash != prev:
            return ChainReport(
                count,
                count_checkpoints,
                entry.seq,
                f"entry {entry.seq} does not follow entry {entry.seq - 1} (deleted, inserted or reordered)",
            )
        if entry_hash(prev, entry.seq, entry.at, entry) != entry.hash:
            return ChainReport(
                count, count_checkpoints, entry.seq, f"entry {entry.seq} was changed after it was written"
            )
        if entry.seq in sealed and sealed[entry.seq] != entry.hash:
            return ChainReport(
                count,
                count_checkpoints,
                entry.seq,
                f"the chain up to entry {entry.seq} differs from what its signed checkpoint sealed (rewritten)",
            )
        prev, expected_seq = entry.hash, entry.seq + 1
    beyond = [seq for seq in sealed if seq >= expected_seq]
    if beyond:
        return ChainReport(
            count,
            count_checkpoints,
            expected_seq,
            f"entries from {expected_seq} are missing (a checkpoint seals entry {max(beyond)})",
        )
    return ChainReport(count, count_checkpoints)
