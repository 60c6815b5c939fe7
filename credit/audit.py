"""The audit log as a hash chain (查询使用登记): every entry commits to the one before it,
and signed checkpoints commit to the chain's head, so that an edited, deleted, inserted
or reordered entry is detected, and so is a chain rewritten from some entry onwards.

An entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON
(RFC 8785), its sequence number included. A checkpoint is a compact JWS (EdDSA) over
``{"seq", "hash", "at"}`` of the entry it seals. A sealed log must carry checkpoints at
its :class:`Cadence`, so that deleting the checkpoints after an edit is itself found;
and each instance publishes its latest checkpoint for its peers to keep, so that a
history rewritten or cut later no longer matches the copies kept elsewhere. The storage
is elsewhere (:mod:`infra.auditlog`); this module computes and checks.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from credit.clock import iso_z
from credit.errors import InvalidInput
from credit.signing import Keyring, SigningKey, TokenType, VerificationError, canonical, sign, verify

GENESIS = "0" * 64


class Action(enum.StrEnum):
    """What was done. Gateway and node entries share the vocabulary."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    PASSWORD_CHANGED = "password_changed"
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
    FEED_READ = "feed_read"  # a member began reading a node's change feed


class EventOutcome(enum.StrEnum):
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
    outcome: EventOutcome = EventOutcome.OK
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
    return iso_z(value, "microseconds")


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


@dataclass(frozen=True, slots=True)
class Head:
    """The log's head row: the last entry's number and hash, and the last number sealed."""

    seq: int
    hash: str
    sealed_seq: int


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a sealed log carries a signed checkpoint: the gateway's sealing, as data
    the verifier holds a log to.

    ``entries``: every entry whose number is a multiple of it has a checkpoint of its own,
    written in the same transaction as the entry. ``seconds``: while entries are written,
    the head is sealed at least this often, and a process seals what an earlier one left
    unsealed before its own first entry; so entries with no checkpoint between them were
    all written within ``seconds`` of each other, whether the gateway was quiet or
    restarted in between. The verifier allows twice that (:attr:`longest_unsealed`), so
    that one late or failed seal is no break. Zero turns a rule off.
    """

    entries: int = 1000
    seconds: float = 60.0

    @property
    def longest_unsealed(self) -> timedelta:
        return timedelta(seconds=2 * self.seconds)


def seal(entry: Entry | Head, key: SigningKey, *, at: datetime | None = None) -> Checkpoint:
    """A signed checkpoint of the chain up to ``entry`` (an entry, or the head that names it).

    Raises nothing.
    """
    when = at or datetime.now(UTC)
    sealed = {"seq": entry.seq, "hash": entry.hash, "at": _utc(when)}
    return Checkpoint(entry.seq, entry.hash, when, sign(sealed, key, typ=TokenType.AUDIT_CHECKPOINT))


def checkpoint_kid(jws: str) -> str:
    """The id of the key a checkpoint names in its header (not verified: which key to
    check it with); empty when the header cannot be read.

    Raises nothing.
    """
    encoded = jws.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:
        return ""
    return str(header.get("kid", "")) if isinstance(header, dict) else ""


def open_checkpoint(jws: str, keyring: Keyring) -> Checkpoint:
    """The checkpoint a signed token carries, once its signature is proven: what it seals
    and when, as signed.

    Raises:
        VerificationError: not an audit checkpoint signed by a key of ``keyring``.
    """
    payload = verify(jws, keyring, typ=TokenType.AUDIT_CHECKPOINT)
    seq, sealed, at = payload["seq"], payload["hash"], payload["at"]
    if type(seq) is not int or seq < 1 or not isinstance(sealed, str) or not isinstance(at, str):
        raise VerificationError("审计检查点内容无效 (the checkpoint's signed payload is malformed)")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise VerificationError("审计检查点内容无效 (the checkpoint's time is malformed)") from None
    return Checkpoint(seq, sealed, when, jws)


def checkpoint_document(checkpoint: Checkpoint, issuer: str) -> dict[str, Any]:
    """A checkpoint as an instance publishes it and as a peer exports what it kept: the
    signed token, and what it seals readable without decoding it.

    Raises nothing.
    """
    return {
        "issuer": issuer,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": _utc(checkpoint.at),
        "kid": checkpoint_kid(checkpoint.jws),
        "jws": checkpoint.jws,
    }


def checkpoints_from_document(document: Any) -> list[tuple[str, Checkpoint]]:
    """The (issuer, checkpoint) pairs of a published or exported document: one checkpoint,
    a list of them, or ``{"checkpoints": [...]}``. Signatures are not checked here
    (:func:`verify_chain` checks them).

    Raises:
        InvalidInput: not such a document.
    """
    if isinstance(document, dict) and "checkpoints" in document:
        document = document["checkpoints"]
    items = document if isinstance(document, list) else [document]
    found = []
    for item in items:
        try:
            seq, sealed, jws = item["seq"], item["hash"], item["jws"]
            at = datetime.fromisoformat(item["at"])
        except (TypeError, KeyError, ValueError):
            raise InvalidInput("not an audit checkpoint: expected seq, hash, at and jws") from None
        if type(seq) is not int or not isinstance(sealed, str) or not isinstance(jws, str):
            raise InvalidInput("not an audit checkpoint: seq must be a number, hash and jws text")
        found.append((str(item.get("issuer", "")), Checkpoint(seq, sealed, at, jws)))
    return found


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    checkpoints: int
    broken_at: int | None = None
    reason: str = ""
    witnessed: int = 0  # checkpoints of this log kept by peers, checked against it

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(
    entries: Iterable[Entry],
    checkpoints: Iterable[Checkpoint],
    keyring: Keyring,
    *,
    cadence: Cadence | None = None,
    head: Head | None = None,
    witnessed: Iterable[Checkpoint] = (),
) -> ChainReport:
    """Check a whole chain, in storage order by sequence number, and its checkpoints.

    Names the first entry that does not fit: an edited one (its hash is wrong), one
    after a deletion or a reordering (its predecessor is not the one it committed to,
    or a number is missing), or the checkpointed entry of a chain rewritten consistently
    after the checkpoint was signed. A chain cut short before a checkpoint is reported
    at the first missing entry.

    A chain rewritten consistently and stripped of the checkpoints after the edit fits
    all of that; three more checks find it where it can be found:

    - ``cadence`` (for a sealed log): the checkpoints it must carry; a stretch of
      entries without them is reported at its first entry.
    - ``head``: the head row must name the last entry, its hash, and the last
      checkpoint's number (a head moved back, or checkpoints deleted behind it).
    - ``witnessed``: checkpoints of this log that peers kept when it published them;
      each must match the chain, and the chain must reach the newest (a rewritten or
      cut history that the local copy alone no longer shows).

    Raises nothing: everything found is in the report.
    """
    count = count_sealed = count_kept = 0

    def broken(seq: int, reason: str) -> ChainReport:
        return ChainReport(count, count_sealed, seq, reason, count_kept)

    sealed: dict[int, str] = {}
    for checkpoint in checkpoints:
        count_sealed += 1
        if problem := _signature_problem(checkpoint, keyring):
            return broken(checkpoint.seq, f"checkpoint at {checkpoint.seq}: {problem}")
        sealed[checkpoint.seq] = checkpoint.hash
    kept: dict[int, str] = {}
    for checkpoint in witnessed:
        count_kept += 1
        if problem := _signature_problem(checkpoint, keyring):
            return broken(checkpoint.seq, f"the checkpoint of entry {checkpoint.seq} a peer keeps: {problem}")
        kept[checkpoint.seq] = checkpoint.hash
    unsealed = _Unsealed(cadence, sealed) if cadence is not None else None
    prev, expected_seq = GENESIS, 1
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            return broken(expected_seq, f"entry {expected_seq} is missing (next is {entry.seq})")
        if entry.prev_hash != prev:
            return broken(
                entry.seq, f"entry {entry.seq} does not follow entry {entry.seq - 1} (deleted, inserted or reordered)"
            )
        if entry_hash(prev, entry.seq, entry.at, entry) != entry.hash:
            return broken(entry.seq, f"entry {entry.seq} was changed after it was written")
        if entry.seq in sealed and sealed[entry.seq] != entry.hash:
            return broken(
                entry.seq,
                f"the chain up to entry {entry.seq} differs from what its signed checkpoint sealed (rewritten)",
            )
        if entry.seq in kept and kept[entry.seq] != entry.hash:
            return broken(
                entry.seq,
                f"the chain up to entry {entry.seq} differs from the signed checkpoint of it a peer keeps (rewritten)",
            )
        if unsealed is not None and (reason := unsealed.add(entry)):
            return broken(unsealed.first, reason)
        prev, expected_seq = entry.hash, entry.seq + 1
    last = expected_seq - 1
    if beyond := [seq for seq in sealed if seq > last]:
        return broken(last + 1, f"entries from {last + 1} are missing (a checkpoint seals entry {max(beyond)})")
    if beyond := [seq for seq in kept if seq > last]:
        return broken(
            last + 1,
            f"entries from {last + 1} are missing: a peer keeps a checkpoint of entry {max(beyond)} (the log was cut)",
        )
    if head is not None and (problem_at := _head_problem(head, last, prev, max(sealed, default=0))):
        return broken(*problem_at)
    return ChainReport(count, count_sealed, witnessed=count_kept)


def _signature_problem(checkpoint: Checkpoint, keyring: Keyring) -> str:
    try:
        payload: dict[str, Any] = verify(checkpoint.jws, keyring, typ=TokenType.AUDIT_CHECKPOINT)
    except VerificationError as exc:
        return exc.detail
    if payload.get("seq") != checkpoint.seq or payload.get("hash") != checkpoint.hash:
        return "it does not match its signature"
    return ""


class _Unsealed:
    """The entries since the last checkpoint, held to the cadence they must be sealed at."""

    def __init__(self, cadence: Cadence, sealed: dict[int, str]) -> None:
        self.cadence = cadence
        self.sealed = sealed
        self.first = 0  # the stretch's first entry; 0 while there is none
        self.earliest = self.latest = datetime.min.replace(tzinfo=UTC)

    def add(self, entry: Entry) -> str:
        """Take the next entry; why the stretch now breaks the cadence, if it does."""
        if not self.first:
            self.first, self.earliest, self.latest = entry.seq, entry.at, entry.at
        else:
            # Entry times are wall-clock times of possibly several processes: not monotonic.
            self.earliest, self.latest = min(self.earliest, entry.at), max(self.latest, entry.at)
        every, seconds = self.cadence.entries, self.cadence.seconds
        if every and entry.seq % every == 0 and entry.seq not in self.sealed:
            return (
                f"entry {entry.seq} has no checkpoint, though every entry numbered a multiple of {every} has one: "
                f"entries from {self.first} on are not sealed as they must be (checkpoints deleted?)"
            )
        if seconds and self.latest - self.earliest > self.cadence.longest_unsealed:
            return (
                f"entries {self.first} to {entry.seq} were written over {_duration(self.latest - self.earliest)} "
                f"with no checkpoint between them, though the log is sealed at least every {seconds:g} s while it "
                "is written (checkpoints deleted?)"
            )
        if entry.seq in self.sealed:
            self.first = 0
        return ""


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _head_problem(head: Head, last: int, last_hash: str, last_sealed: int) -> tuple[int, str] | None:
    if head.seq > last:
        return last + 1, f"entries from {last + 1} are missing (the head says {head.seq})"
    if head.seq < last:
        return head.seq + 1, f"entries from {head.seq + 1} lie beyond the head (it says {head.seq}: moved back)"
    if head.hash != last_hash:
        return max(last, 1), f"the head's hash is not entry {last}'s (the chain behind the head was rewritten)"
    if head.sealed_seq > last_sealed:
        return last_sealed + 1, (
            f"the head says the log was sealed up to entry {head.sealed_seq}, but the last checkpoint seals entry "
            f"{last_sealed} (checkpoints deleted)"
        )
    if head.sealed_seq < last_sealed:
        return head.sealed_seq + 1, (
            f"the last checkpoint seals entry {last_sealed}, but the head says the log was sealed up to entry "
            f"{head.sealed_seq} only (the head was moved back)"
        )
    return None
