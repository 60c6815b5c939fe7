"""A regional node as its callers see it: every call of the node contract, in domain values.

:class:`NodeClient` is the seam: the gateway's services and a peer's followers are
written against it, and tested against an in-process implementation; :class:`GrpcNodeClient`
is the one that talks to a node over one long-lived gRPC channel.

A node's refusal comes back as the :class:`~credit.errors.CreditError` it was raised as
on the node (the status code and the ``google.rpc.Status`` details it carries, read with
``grpcio-status``, :func:`node_error`); a node that cannot answer — down, too slow, or
refusing the gateway's own credentials — is :class:`NodeUnavailable`, which says whether
another attempt may succeed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC
from typing import Protocol

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter

from credit.cases import Attachment, Case, CaseKind, CaseState, Correction, Resolution
from credit.catalogue import Catalogue, Scope
from credit.errors import (
    CreditError,
    FailedPrecondition,
    FieldViolation,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from credit.identifiers import Subject
from credit.profiles import ReportProfile
from credit.queries import ChangeNotice, JointDiscipline, QueryOptions
from credit.regions import Region
from credit.report import ReplicaResult
from credit.rules import SubjectResult
from federation import wire
from federation.assertions import METADATA_KEY
from federation.coalescer import QueryCoalescer
from federation.wire import CheckAnswer
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc

NODE_CALLS = Counter(
    "jjj_gateway_node_calls_total",
    # A subject query counts once, also when it went to the node with others in one call
    # (jjj_gateway_node_query_calls_total counts the calls).
    "Calls and subject queries made to regional nodes, by outcome",
    ["region", "code"],
)
REPLICA_CALLS = Counter(
    "jjj_gateway_replica_calls_total",
    "Regions asked of another region's replica after their own node failed",
    ["origin", "served_by", "outcome"],
)


class NodeUnavailable(Unavailable):
    """A node gave no usable answer: unreachable, past the deadline, or refusing the
    caller's own credentials (a fault of the deployment, not of the user's request).

    ``reason`` is the short account a report prints for the region; ``retryable`` when
    another attempt may succeed (the node could not be reached); ``transient`` when a
    later try may (also a deadline that passed).
    """

    def __init__(self, region: Region, code: str, details: str, *, reason: str = "") -> None:
        super().__init__(f"{region.name_zh}节点暂不可用，请稍后再试 ({region.value}: {code}: {details})")
        self.region = region
        self.code = code
        self.details = details
        self.reason = reason or f"{code}: {details}"

    @property
    def retryable(self) -> bool:
        return self.code == "UNAVAILABLE"

    @property
    def transient(self) -> bool:
        return self.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def status_text(error: CreditError) -> str:
    """``CODE: detail``: how a region's failure is kept in a batch table or a report."""
    if isinstance(error, NodeUnavailable):
        return f"{error.code}: {error.details}"
    return f"{error.grpc_code}: {error.detail}"


def failure_reason(error: CreditError) -> str:
    """The short account of a failed call that a report prints for the region."""
    return error.reason if isinstance(error, NodeUnavailable) else status_text(error)


def _violations(error: grpc.aio.AioRpcError) -> tuple[FieldViolation, ...]:
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError has the call's accessors
    except ValueError:  # a details trailer that contradicts the status code
        return ()
    if status is None:
        return ()
    return _status_violations(status)


def _status_violations(status: status_pb2.Status) -> tuple[FieldViolation, ...]:
    violations: tuple[FieldViolation, ...] = ()
    for packed in status.details:
        bad = error_details_pb2.BadRequest()
        if packed.Unpack(bad):
            violations += tuple(FieldViolation(v.field, v.description) for v in bad.field_violations)
    return violations


_REFUSALS: dict[grpc.StatusCode, type[CreditError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def node_error(region: Region, error: grpc.aio.AioRpcError) -> CreditError:
    """What a failed node call means to the caller: the node's refusal as the error it was
    raised as (with its field violations), or :class:`NodeUnavailable`."""
    code = error.code()
    details = str(error.details() or code.name)
    violations = _violations(error) if code is grpc.StatusCode.INVALID_ARGUMENT else ()
    return _status_error(region, code, details, violations)


def item_error(region: Region, status: bytes) -> CreditError:
    """What one refused item of a ``QuerySubjects`` call means to the caller: the same
    as :func:`node_error` for its own call ending with that ``google.rpc.Status``."""
    try:
        decoded = status_pb2.Status.FromString(status)
    except DecodeError:
        return NodeUnavailable(region, "WRONG_NODE", "an item's status did not decode")
    code = _CODES.get(decoded.code, grpc.StatusCode.UNKNOWN)
    details = decoded.message or code.name
    violations = _status_violations(decoded) if code is grpc.StatusCode.INVALID_ARGUMENT else ()
    return _status_error(region, code, details, violations)


def _status_error(
    region: Region, code: grpc.StatusCode, details: str, violations: tuple[FieldViolation, ...]
) -> CreditError:
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInput(details, violations)
    refusal = _REFUSALS.get(code)
    if refusal is not None:
        return refusal(details)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return NodeUnavailable(region, code.name, details, reason="超时 (deadline exceeded)")
    if code is grpc.StatusCode.UNAVAILABLE:
        return NodeUnavailable(region, code.name, details, reason=f"无法连接 (unavailable: {details})")
    return NodeUnavailable(region, code.name, details)


class NodeClient(Protocol):
    """Every call of a regional node. Each raises the node's refusal as a
    :class:`~credit.errors.CreditError` (see :func:`node_error`) or :class:`NodeUnavailable`."""

    region: Region

    async def query(
        self,
        subject: Subject,
        profile: ReportProfile,
        options: QueryOptions,
        *,
        purpose: str,
        timeout: float,
        assertion: str = "",
        catalogue: Catalogue | None = None,
    ) -> SubjectResult:
        """One subject's result, asked with an on-behalf-of assertion. ``catalogue`` is
        the region's catalogue as the caller holds it: the node's answer may then leave
        its plain "no record" pairs out, and they are put back from it (the result is the
        same either way)."""

    async def query_replica(
        self,
        origin: Region,
        subject: Subject,
        profile: ReportProfile,
        options: QueryOptions,
        *,
        purpose: str,
        timeout: float,
        assertion: str = "",
        catalogue: Catalogue | None = None,
    ) -> ReplicaResult:
        """``origin``'s result for one subject from this node's replica of it (``catalogue``:
        ``origin``'s, as in :meth:`query`)."""

    async def catalogue(self, *, timeout: float, origin: Region | None = None) -> Catalogue:
        """The region's catalogue, or with ``origin`` that region's catalogue as this
        node's replica holds it."""

    async def check_subjects(
        self, subjects: Sequence[str], options: QueryOptions, *, purpose: str, timeout: float, assertion: str
    ) -> CheckAnswer:
        """A batch check of ``subjects`` (as given, each checked by the node)."""

    async def joint_discipline(
        self,
        subject: Subject,
        scopes: Sequence[Scope],
        *,
        purpose: str,
        timeout: float,
        assertion: str = "",
    ) -> JointDiscipline:
        """The other regions' discipline-list entries for a subject, from this node's replicas."""

    def changes(self, after_seq: int) -> AsyncIterator[ChangeNotice]:
        """The node's change feed after ``after_seq``, followed until the stream breaks."""

    async def head_seq(self, *, timeout: float) -> int:
        """The highest change-feed position the node has stored."""

    async def file_objection(
        self,
        subject_id: str,
        record_id: str,
        kind: CaseKind,
        reason: str,
        attachment: Attachment | None,
        *,
        timeout: float,
        assertion: str,
    ) -> Case:
        """A new case against one of the subject's records."""

    async def list_objections(
        self,
        *,
        subject_id: str = "",
        state: CaseState | None = None,
        kind: CaseKind | None = None,
        limit: int = 100,
        before: str = "",
        timeout: float,
        assertion: str,
    ) -> list[Case]:
        """The node's cases, newest first: one subject's, or (for an authority) all."""

    async def get_objection(
        self, number: str, *, subject_id: str = "", with_attachment: bool = False, timeout: float, assertion: str
    ) -> Case:
        """One case."""

    async def resolve_objection(
        self,
        number: str,
        resolution: Resolution,
        note: str,
        correction: Correction | None,
        *,
        timeout: float,
        assertion: str,
    ) -> Case:
        """Decide an open case."""

    async def repair_record(self, record_id: str, note: str, *, timeout: float, assertion: str) -> Case:
        """Apply a credit repair to a record, as its own case."""

    async def close(self) -> None:
        """Let go of the connection."""


def _code(error: CreditError) -> str:
    return error.code if isinstance(error, NodeUnavailable) else error.grpc_code


def _metadata(assertion: str) -> tuple[tuple[str, str], ...] | None:
    return ((METADATA_KEY, assertion),) if assertion else None


class GrpcNodeClient:
    """A region's node over one long-lived channel (see :class:`NodeClient`).

    Subject queries go through a :class:`~federation.coalescer.QueryCoalescer`: while
    ``max_in_flight`` calls to the node are out, further queries leave together in one
    ``QuerySubjects`` call of at most ``max_batch`` — or at once in another call to a
    node whose recent calls all took ``patience`` seconds or more (a far node);
    ``coalesce=False`` sends each alone at once, as many at a time as are asked.
    """

    def __init__(
        self,
        region: Region,
        address: str,
        *,
        channel: grpc.aio.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        coalesce: bool = True,
        max_in_flight: int = 1,
        max_batch: int = 32,
        patience: float = 0.02,
    ) -> None:
        self.region = region
        self.address = address
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        if channel is not None:
            self.channel = channel
        elif credentials is not None:
            self.channel = grpc.aio.secure_channel(address, credentials, options=options)
        else:
            self.channel = grpc.aio.insecure_channel(address, options=options)
        self._stub = node_pb2_grpc.RegionalNodeStub(self.channel)
        self._queries = QueryCoalescer(
            region.value,
            single=self._query_subject,
            batch=self._query_subjects,
            failed=self._failed,
            item_failed=self._item_failed,
            expired=self._expired,
            wrong=self._wrong,
            max_in_flight=max_in_flight,
            max_batch=max_batch,
            coalesce=coalesce,
            patience=patience,
        )

    def _failed(self, error: grpc.aio.AioRpcError) -> CreditError:
        NODE_CALLS.labels(self.region.value, error.code().name).inc()
        return node_error(self.region, error)

    def _item_failed(self, status: bytes) -> CreditError:
        error = item_error(self.region, status)
        NODE_CALLS.labels(self.region.value, _code(error)).inc()
        return error

    def _expired(self) -> CreditError:
        # What the query's own call would have ended with, had it been sent.
        NODE_CALLS.labels(self.region.value, grpc.StatusCode.DEADLINE_EXCEEDED.name).inc()
        return _status_error(self.region, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", ())

    def _wrong(self, reason: str) -> NodeUnavailable:
        return NodeUnavailable(self.region, "WRONG_NODE", reason, reason=reason)

    async def _query_subject(self, request: pb.QuerySubjectRequest, assertion: str, timeout: float) -> pb.SubjectResult:
        reply: pb.SubjectResult = await self._stub.QuerySubject(request, timeout=timeout, metadata=_metadata(assertion))
        return reply

    async def _query_subjects(self, request: pb.QuerySubjectsRequest, timeout: float) -> pb.QuerySubjectsResponse:
        reply: pb.QuerySubjectsResponse = await self._stub.QuerySubjects(request, timeout=timeout)
        return reply

    async def query(
        self,
        subject: Subject,
        profile: ReportProfile,
        options: QueryOptions,
        *,
        purpose: str,
        timeout: float,
        assertion: str = "",
        catalogue: Catalogue | None = None,
    ) -> SubjectResult:
        known = wire.coverage_digest(catalogue, profile, subject.kind) if catalogue is not None else b""
        request = wire.query_to_pb(subject, options, purpose, known_coverage=known)
        reply = await self._queries.ask(request, assertion, timeout)
        NODE_CALLS.labels(self.region.value, "OK").inc()
        if reply.region != self.region.value:
            raise self._wrong(f"node at {self.address} answers for {reply.region}")
        self._check_omission(reply, known)
        return wire.result_from_pb(reply, subject, profile, catalogue=catalogue)

    def _check_omission(self, reply: pb.SubjectResult, known: bytes) -> None:
        if reply.no_record_omitted and not known:
            raise self._wrong(f"node at {self.address} left pairs out of an answer that was to hold them all")

    async def query_replica(
        self,
        origin: Region,
        subject: Subject,
        profile: ReportProfile,
        options: QueryOptions,
        *,
        purpose: str,
        timeout: float,
        assertion: str = "",
        catalogue: Catalogue | None = None,
    ) -> ReplicaResult:
        known = wire.coverage_digest(catalogue, profile, subject.kind) if catalogue is not None else b""
        query = wire.query_to_pb(subject, options, purpose, known_coverage=known)
        request = pb.QueryReplicaRequest(origin=origin.value, query=query)
        try:
            reply = await self._stub.QueryReplica(request, timeout=timeout, metadata=_metadata(assertion))
        except grpc.aio.AioRpcError as error:
            REPLICA_CALLS.labels(origin.value, self.region.value, error.code().name).inc()
            failure = node_error(self.region, error)
            if isinstance(failure, NodeUnavailable) and failure.code == "UNAVAILABLE":
                # A replica's answer is a fallback already: it is not retried, and says so plainly.
                failure.reason = f"UNAVAILABLE: {failure.details}"
            raise failure from error
        if reply.region != origin.value or reply.replica.served_by != self.region.value:
            raise self._wrong(f"node at {self.address} answered for {reply.region} served by {reply.replica.served_by}")
        as_of = reply.replica.replica_as_of.ToDatetime(tzinfo=UTC) if reply.replica.HasField("replica_as_of") else None
        self._check_omission(reply, known)
        result = wire.result_from_pb(reply, subject, profile, catalogue=catalogue)
        return ReplicaResult.of(result, served_by=self.region, replica_as_of=as_of)

    async def catalogue(self, *, timeout: float, origin: Region | None = None) -> Catalogue:
        request = pb.GetCatalogueRequest(origin=origin.value if origin is not None else "")
        try:
            reply = await self._stub.GetCatalogue(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        if origin is not None and reply.region != origin.value:
            raise self._wrong(f"node at {self.address} sent {reply.region}'s catalogue for {origin.value}")
        return wire.catalogue_from_pb(reply)

    async def check_subjects(
        self, subjects: Sequence[str], options: QueryOptions, *, purpose: str, timeout: float, assertion: str
    ) -> CheckAnswer:
        # Sparse: a line only for the subjects that are not plain (most have no record),
        # much less to encode, send and store; a node older than the field answers in full.
        request = pb.CheckSubjectsRequest(
            subject_ids=subjects, options=wire.options_to_pb(options), purpose=purpose, sparse=True
        )
        try:
            reply = await self._stub.CheckSubjects(request, timeout=timeout, metadata=_metadata(assertion))
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        NODE_CALLS.labels(self.region.value, "OK").inc()
        return CheckAnswer(reply.SerializeToString())  # kept as it came: a batch job stores the bytes

    async def joint_discipline(
        self,
        subject: Subject,
        scopes: Sequence[Scope],
        *,
        purpose: str,
        timeout: float,
        assertion: str = "",
    ) -> JointDiscipline:
        request = pb.JointDisciplineRequest(
            subject_id=subject.id,
            subject_kind=wire.KIND_TO_PB[subject.kind],
            scopes=[wire.SCOPE_TO_PB[scope] for scope in scopes],
            purpose=purpose,
        )
        try:
            reply = await self._stub.CheckJointDiscipline(request, timeout=timeout, metadata=_metadata(assertion))
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        return wire.discipline_from_pb(reply)

    async def changes(self, after_seq: int) -> AsyncIterator[ChangeNotice]:
        # Read in batches: one message per change is several times slower to catch up on.
        call = self._stub.WatchChangeBatches(pb.WatchChangesRequest(after_seq=after_seq, follow=True))
        try:
            async for batch in call:
                if batch.region and batch.region != self.region.value:
                    raise self._wrong(f"the feed at {self.address} is {batch.region}'s, not {self.region.value}'s")
                for change in batch.changes:
                    yield wire.change_notice_from_pb(change)
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        finally:
            call.cancel()  # a follower that stops reading ends the stream on the node too

    async def head_seq(self, *, timeout: float) -> int:
        # Asked from beyond any position the feed can reach, the feed answers at once
        # with one empty batch that names its head.
        request = pb.WatchChangesRequest(after_seq=2**63 - 1, follow=False, max_batch=1)
        try:
            async for batch in self._stub.WatchChangeBatches(request, timeout=timeout):
                return int(batch.head_seq)
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        return 0

    async def file_objection(
        self,
        subject_id: str,
        record_id: str,
        kind: CaseKind,
        reason: str,
        attachment: Attachment | None,
        *,
        timeout: float,
        assertion: str,
    ) -> Case:
        request = pb.FileObjectionRequest(
            subject_id=subject_id, record_id=record_id, kind=wire.CASE_KIND_TO_PB[kind], reason=reason
        )
        if attachment is not None:
            request.attachment.CopyFrom(pb.Attachment(filename=attachment.filename, data=attachment.data))
        try:
            reply = await self._stub.FileObjection(request, timeout=timeout, metadata=_metadata(assertion))
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        return wire.case_from_pb(reply)

    async def list_objections(
        self,
        *,
        subject_id: str = "",
        state: CaseState | None = None,
        kind: CaseKind | None = None,
        limit: int = 100,
        before: str = "",
        timeout: float,
        assertion: str,
    ) -> list[Case]:
        request = pb.ListObjectionsRequest(subject_id=subject_id, limit=limit, before=before)
        if state is not None:
            request.state = wire.CASE_STATE_TO_PB[state]
        if kind is not None:
            request.kind = wire.CASE_KIND_TO_PB[kind]
        try:
            reply = await self._stub.ListObjections(request, timeout=timeout, metadata=_metadata(assertion))
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        return [wire.case_from_pb(message) for message in reply.objections]

    async def get_objection(
        self, number: str, *, subject_id: str = "", with_attachment: bool = False, timeout: float, assertion: str
    ) -> Case:
        request = pb.GetObjectionRequest(number=number, with_attachment=with_attachment, subject_id=subject_id)
        try:
            reply = await self._stub.GetObjection(request, timeout=timeout, metadata=_metadata(assertion))
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        return wire.case_from_pb(reply)

    async def resolve_objection(
        self,
        number: str,
        resolution: Resolution,
        note: str,
        correction: Correction | None,
        *,
        timeout: float,
        assertion: str,
    ) -> Case:
        request = pb.ResolveObjectionRequest(number=number, resolution=wire.RESOLUTION_TO_PB[resolution], note=note)
        if correction is not None:
            request.correction.CopyFrom(wire.correction_to_pb(correction))
        try:
            reply = await self._stub.ResolveObjection(request, timeout=timeout, metadata=_metadata(assertion))
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        return wire.case_from_pb(reply)

    async def repair_record(self, record_id: str, note: str, *, timeout: float, assertion: str) -> Case:
        request = pb.RepairRecordRequest(record_id=record_id, note=note)
        try:
            reply = await self._stub.RepairRecord(request, timeout=timeout, metadata=_metadata(assertion))
        except grpc.aio.AioRpcError as error:
            raise self._failed(error) from error
        return wire.case_from_pb(reply)

    async def close(self) -> None:
        await self.channel.close(None)
