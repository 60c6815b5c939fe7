"""The change feed's encoder: stored versions straight to one ``ChangeBatch``.

The feed is the hot path of replication, so rows go from the store's raw form
(:data:`nodes.store.FeedRow`) to protobuf without building domain values first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from federation.wire import KIND_TO_PB, PROCEDURE_TO_PB, SCOPE_TO_PB, STATUS_TO_PB, date_to_pb, set_time
from nodes.store import FeedRow
from protos.credit.v1 import node_pb2 as pb

_KIND_NUMBER = {kind.value: number for kind, number in KIND_TO_PB.items()}
_SCOPE_NUMBER = {scope.value: number for scope, number in SCOPE_TO_PB.items()}
_PROCEDURE_NUMBER = {procedure.value: number for procedure, number in PROCEDURE_TO_PB.items()}
_STATUS_NUMBER = {status.value: number for status, number in STATUS_TO_PB.items()}
_FEED_DATES: dict[object, pb.Date] = {}
_FEED_TIMES: dict[object, Timestamp] = {}


def _feed_date(value: str | date) -> pb.Date:
    # A feed carries few distinct days and ingest times: each is built once.
    message = _FEED_DATES.get(value)
    if message is None:
        day = date.fromisoformat(value) if isinstance(value, str) else value
        if len(_FEED_DATES) > 100_000:
            _FEED_DATES.clear()
        message = _FEED_DATES[value] = date_to_pb(day)
    return message


def _feed_time(value: str | datetime | None) -> Timestamp:
    message = _FEED_TIMES.get(value)
    if message is None:
        message = Timestamp()
        if value is not None:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            message.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        if len(_FEED_TIMES) > 10_000:
            _FEED_TIMES.clear()
        _FEED_TIMES[value] = message
    return message


def feed_batch_to_pb(
    region: str,
    rows: Sequence[FeedRow],
    *,
    caught_up: bool,
    head_seq: int,
    data_as_of: datetime | None,
    disputes: frozenset[str] | None = None,
) -> pb.ChangeBatch:
    """Versions of the change feed in one message, straight from their stored form
    (:meth:`nodes.store.RecordStore.feed`); the region is named once, on the batch.
    ``disputes``, when given, is the region's whole set of records under objection."""
    out = pb.ChangeBatch(region=region, caught_up=caught_up, head_seq=head_seq)
    set_time(out.data_as_of, data_as_of)
    if disputes is not None:
        out.disputes.SetInParent()
        out.disputes.record_ids.extend(sorted(disputes))
    changes = out.changes
    for (
        seq, record_id, version, _current, subject_id, subject_kind, subject_name, domain, scope, decision_no,
        authority, decided_on, category, content, procedure, status, publicity_until, removed_on, source,
        ingested_at, content_hash,
    ) in rows:  # fmt: skip
        r = changes.add(seq=seq).record
        r.record_id = record_id
        r.version = version
        r.subject_id = subject_id
        r.subject_kind = _KIND_NUMBER[subject_kind]
        r.subject_name = subject_name
        r.domain = domain
        r.scope = _SCOPE_NUMBER[scope]
        r.decision_no = decision_no
        r.authority = authority
        r.decided_on.CopyFrom(_feed_date(decided_on))
        r.category = category
        r.content = content
        r.procedure = _PROCEDURE_NUMBER[procedure]
        r.status = _STATUS_NUMBER[status]
        if publicity_until is not None:
            r.publicity_until.CopyFrom(_feed_date(publicity_until))
        if removed_on is not None:
            r.removed_on.CopyFrom(_feed_date(removed_on))
        p = r.provenance
        p.source = source
        p.content_hash = content_hash
        p.ingested_at.CopyFrom(_feed_time(ingested_at))
    return out
