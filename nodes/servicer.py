"""The ``credit.v1.RegionalNode`` servicer: decode, delegate to the service, encode."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import grpc
import structlog

from credit import policy
from credit.audit import Action, Event, EventOutcome
from credit.cases import check_attachment
from credit.errors import CreditError, FailedPrecondition, InvalidInput, PermissionDenied, Unauthenticated
from federation import wire
from federation.assertions import BATCH, METADATA_KEY, AssertionVerifier, OnBehalfOf
from federation.interceptors import INTERNAL_STATUS, status_details
from federation.tls import peer_identity
from infra.auditlog import AuditLog
from nodes.feed import feed_batch_to_pb
from nodes.objections import ObjectionDesk
from nodes.service import NodeService
from nodes.store import FeedRow
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc

FEED_PAGE = 1000
FEED_BATCH = 2000  # WatchChangeBatches: changes per message unless the caller asks otherwise
MAX_FEED_BATCH = 10_000
MAX_QUERY_BATCH = 64  # QuerySubjects: queries per call
log = structlog.get_logger("jjj.node")


# Who may call what, by the identity in the caller's certificate (under mTLS).
GATEWAYS = ("gateway:",)
MEMBERS = ("gateway:", "node:")
# Who may list and decide every case, by the role the on-behalf-of assertion names.


class RegionalNodeServicer(node_pb2_grpc.RegionalNodeServicer):  # type: ignore[misc]  # generated base, untyped
    def __init__(
        self,
        *,
        service: NodeService,
        assertions: AssertionVerifier | None = None,
        feed_poll_seconds: float = 0.5,
        feed_heartbeat_seconds: float = 5.0,
        audit: AuditLog | None = None,
        require_identity: bool = False,
    ) -> None:
        self.service = service
        self.assertions = assertions
        self.feed_poll_seconds = feed_poll_seconds
        self.feed_heartbeat_seconds = feed_heartbeat_seconds
        self.audit = audit
        self.require_identity = require_identity
        # Set when the node stops: followed feeds then end at their next poll instead of
        # holding the server's stop for its whole grace period.
        self.closing = False

    def close_feeds(self) -> None:
        """End the followed change feeds at their next poll (the node is stopping: its
        followers go on from another node or once it is back). Raises nothing."""
        self.closing = True

    def _caller(self, context: Any, allowed: tuple[str, ...]) -> str:
        identity = peer_identity(context) if self.require_identity else None
        if self.require_identity and not (identity and identity.startswith(allowed)):
            raise PermissionDenied(f"调用方 {identity or '(unknown)'} 无权调用 (caller not allowed: {identity})")
        return identity or ""

    async def _feed_reader(self, context: Any, request: pb.WatchChangesRequest) -> None:
        """A member may read the change feed; each reading is in the node's audit log,
        with who read and from where on."""
        caller = self._caller(context, MEMBERS)
        if self.audit is not None:
            await self.audit.record_behind(
                Event(
                    caller or str(context.peer()),
                    "member",
                    Action.FEED_READ,
                    detail=f"after_seq={request.after_seq} follow={request.follow}",
                )
            )

    async def settle(self) -> None:
        """Write the audit entries recorded so far and wait until they are committed
        (called when the node stops, before its database closes)."""
        if self.audit is not None:
            await self.audit.flush()

    async def _asserted(
        self,
        context: Any,
        subject: str,
        action: Action,
        note: str = "",
        *,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> OnBehalfOf | None:
        """The call's on-behalf-of assertion (or ``metadata``'s: one item of a batch),
        checked for ``subject`` and audited."""
        # Every assertion served or refused goes to the node's audit log, behind the
        # answer: written with the others of the moment, within the log's linger time.
        caller = self._caller(context, GATEWAYS)
        if self.assertions is None:
            return None
        if metadata is None:
            metadata = context.invocation_metadata() or ()
        try:
            asserted = self.assertions.verify(metadata, subject=subject)
        except (Unauthenticated, PermissionDenied) as exc:
            if self.audit is not None:
                await self.audit.record_behind(
                    Event(
                        caller or "unknown",
                        "",
                        Action.REFUSED,
                        "" if subject == BATCH else subject[:18],
                        outcome=EventOutcome.REFUSED,
                        detail=exc.detail[:500],
                    )
                )
            raise
        log.info("query_on_behalf_of", user=asserted.user, subject=asserted.subject, purpose=asserted.purpose)
        if self.audit is not None:
            await self.audit.record_behind(
                Event(
                    asserted.user,
                    asserted.role,
                    action,
                    "" if asserted.subject == BATCH else asserted.subject,
                    asserted.purpose[:200],
                    detail=f"jti={asserted.token_id} iss={asserted.issuer} via={caller or '-'}{note}",
                )
            )
        return asserted

    async def GetCatalogue(
        self, request: pb.GetCatalogueRequest, context: grpc.aio.ServicerContext[pb.GetCatalogueRequest, pb.Catalogue]
    ) -> pb.Catalogue:
        self._caller(context, MEMBERS)
        if request.origin:
            catalogue, as_of = await self.service.replica_catalogue(request.origin)
        else:
            catalogue, as_of = await self.service.catalogue_as_of()
        return wire.catalogue_to_pb(catalogue, as_of)

    async def QuerySubject(
        self,
        request: pb.QuerySubjectRequest,
        context: grpc.aio.ServicerContext[pb.QuerySubjectRequest, pb.SubjectResult],
    ) -> pb.SubjectResult:
        await self._asserted(context, request.subject_id.strip().upper(), Action.NODE_QUERY)
        return await self.answer(request)

    async def answer(self, request: pb.QuerySubjectRequest) -> pb.SubjectResult:
        """One query answered, once its assertion is checked: read, evaluate and encode
        (lean when the caller named this node's coverage). What a call carrying many
        queries runs for each.

        Raises:
            InvalidIdentifier, UnknownName, InvalidWindow, InvalidInput: as
                :meth:`NodeService.query` (a bad subject, profile, window or purpose).
            sqlalchemy.exc.OperationalError: the database cannot be read.
        """
        result = await self.service.query(
            request.subject_id,
            wire.KIND_FROM_PB.get(request.subject_kind),
            wire.options_from_pb(request.options),
            purpose=request.purpose,
        )
        omit = wire.caller_knows(request.known_coverage, self.service.catalogue, result)
        return wire.result_to_pb(result, omit_no_record=omit)

    async def QuerySubjects(
        self,
        request: pb.QuerySubjectsRequest,
        context: grpc.aio.ServicerContext[pb.QuerySubjectsRequest, pb.QuerySubjectsResponse],
    ) -> pb.QuerySubjectsResponse:
        if len(request.queries) > MAX_QUERY_BATCH:
            raise InvalidInput.for_field(
                "queries", f"一次最多查询 {MAX_QUERY_BATCH} 个主体 (at most {MAX_QUERY_BATCH} queries per call)"
            )
        self._caller(context, GATEWAYS)  # a caller refused is refused for the whole call

        async def one(item: pb.SubjectQuery) -> pb.SubjectOutcome:
            try:
                query = item.query
                await self._asserted(
                    context,
                    query.subject_id.strip().upper(),
                    Action.NODE_QUERY,
                    metadata=((METADATA_KEY, item.assertion),),
                )
                result = await self.answer(query)
            except CreditError as exc:
                return pb.SubjectOutcome(error=status_details(exc))
            except Exception:  # as the interceptor does for a whole call: logged, never leaked
                log.exception("rpc_failed", method="QuerySubjects item")
                return pb.SubjectOutcome(error=INTERNAL_STATUS)
            return pb.SubjectOutcome(result=result)

        outcomes = await asyncio.gather(*(one(item) for item in request.queries))
        return pb.QuerySubjectsResponse(outcomes=outcomes)

    async def CheckSubjects(
        self,
        request: pb.CheckSubjectsRequest,
        context: grpc.aio.ServicerContext[pb.CheckSubjectsRequest, pb.CheckSubjectsResponse],
    ) -> pb.CheckSubjectsResponse:
        await self._asserted(context, BATCH, Action.NODE_BATCH)
        options = wire.options_from_pb(request.options)
        if request.sparse:
            sparse = await self.service.check_sparse(request.subject_ids, options, purpose=request.purpose)
            return wire.sparse_batch_to_pb(self.service.region, sparse)
        batch = await self.service.check(request.subject_ids, options, purpose=request.purpose)
        return wire.batch_to_pb(self.service.region, batch)

    async def WatchChanges(
        self,
        request: pb.WatchChangesRequest,
        context: grpc.aio.ServicerContext[pb.WatchChangesRequest, pb.RecordChange],
    ) -> AsyncIterator[pb.RecordChange]:
        await self._feed_reader(context, request)
        cursor = request.after_seq
        store = self.service.store
        while True:
            page = await store.changes(cursor, FEED_PAGE)
            for seq, record in page:
                yield wire.change_to_pb(self.service.region, seq, record)
                cursor = seq
            if len(page) < FEED_PAGE:
                if not request.follow or self.closing:
                    return
                await asyncio.sleep(self.feed_poll_seconds)

    async def WatchChangeBatches(
        self,
        request: pb.WatchChangesRequest,
        context: grpc.aio.ServicerContext[pb.WatchChangesRequest, pb.ChangeBatch],
    ) -> AsyncIterator[pb.ChangeBatch]:
        await self._feed_reader(context, request)
        size = min(request.max_batch or FEED_BATCH, MAX_FEED_BATCH)
        store = self.service.store
        region = self.service.region

        desk = self.service.objections

        async def read(after: int) -> tuple[list[FeedRow], int, datetime | None, frozenset[str]]:
            page = await store.feed(after, size)
            # Read after the page: a resolution commits its record version and the
            # case's closing together, so a version the page holds is never sent with
            # a set that still counts its case as open.
            disputes = await desk.disputed() if desk is not None else frozenset()
            return page, await store.head_seq(), await store.data_as_of(), disputes

        cursor = request.after_seq
        # The first read is always answered, even with nothing new, and so is the first
        # read that finds the follower in step; after that, an idle feed sends a
        # heartbeat (an empty batch, caught up) every feed_heartbeat_seconds. The set of
        # records under objection goes with the first batch and again whenever it changed.
        said_caught_up = False
        said_disputes: frozenset[str] | None = None
        heartbeat_due = 0.0
        pending = asyncio.ensure_future(read(cursor))
        try:
            while True:
                page, head, as_of, disputes = await pending
                if page:
                    cursor = page[-1][0]
                # In step when nothing was stored after the page, even while it was read.
                caught_up = len(page) < size and head <= cursor
                if not caught_up:
                    pending = asyncio.ensure_future(read(cursor))  # read ahead while this one is sent
                news = disputes if disputes != said_disputes else None
                if page or news is not None or not said_caught_up or time.monotonic() >= heartbeat_due:
                    yield feed_batch_to_pb(
                        region, page, caught_up=caught_up, head_seq=head, data_as_of=as_of, disputes=news
                    )
                    said_caught_up = caught_up
                    said_disputes = disputes
                    heartbeat_due = time.monotonic() + self.feed_heartbeat_seconds
                if caught_up:
                    if not request.follow or self.closing:
                        return
                    await asyncio.sleep(self.feed_poll_seconds)
                    pending = asyncio.ensure_future(read(cursor))
        finally:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending

    async def QueryReplica(
        self,
        request: pb.QueryReplicaRequest,
        context: grpc.aio.ServicerContext[pb.QueryReplicaRequest, pb.SubjectResult],
    ) -> pb.SubjectResult:
        query = request.query
        await self._asserted(
            context, query.subject_id.strip().upper(), Action.NODE_QUERY, f" replica-of={request.origin[:20]}"
        )
        result, replica = await self.service.query_replica(
            request.origin,
            query.subject_id,
            wire.KIND_FROM_PB.get(query.subject_kind),
            wire.options_from_pb(query.options),
            purpose=query.purpose,
        )
        # Evaluated under the origin's catalogue as the replica holds it: that is the
        # coverage the caller must hold for the "no record" pairs to be left out.
        omit = replica.catalogue is not None and wire.caller_knows(query.known_coverage, replica.catalogue, result)
        return wire.replica_result_to_pb(
            result,
            served_by=self.service.region,
            replica_as_of=replica.synced_at,
            last_seq=replica.last_seq,
            omit_no_record=omit,
        )

    async def CheckJointDiscipline(
        self,
        request: pb.JointDisciplineRequest,
        context: grpc.aio.ServicerContext[pb.JointDisciplineRequest, pb.JointDisciplineResponse],
    ) -> pb.JointDisciplineResponse:
        await self._asserted(context, request.subject_id.strip().upper(), Action.NODE_QUERY, " joint-discipline")
        on_date = wire.date_from_pb(request.on_date, "on_date") if request.HasField("on_date") else None
        answer = await self.service.joint_discipline(
            request.subject_id,
            wire.KIND_FROM_PB.get(request.subject_kind),
            wire.scopes_from_pb(request.scopes, "scopes"),
            on_date,
            purpose=request.purpose,
        )
        return wire.discipline_to_pb(self.service.region, answer)

    # Objections and credit repair

    def _desk(self) -> ObjectionDesk:
        if self.service.objections is None:
            raise FailedPrecondition("本节点未开通异议办理 (this node does not handle objections)")
        return self.service.objections

    async def _authority(self, context: Any, action: Action, note: str) -> str:
        """The authority a call is made for (role agency or admin), as its assertion names it.

        Raises:
            PermissionDenied: the assertion names another role.
        """
        asserted = await self._asserted(context, BATCH, action, note)
        if asserted is None:
            return "unasserted"
        if not policy.is_authority(asserted.role):
            raise PermissionDenied("仅认定机关或管理员可办理 (only an authority may list or decide every case)")
        return asserted.user

    async def _reader(self, context: Any, subject_id: str, note: str) -> str | None:
        """The subject a read is limited to, or None for an authority's read."""
        subject = subject_id.strip().upper()
        if subject:
            await self._asserted(context, subject, Action.OBJECTION_VIEWED, note)
            return subject
        await self._authority(context, Action.OBJECTION_VIEWED, note)
        return None

    async def FileObjection(
        self,
        request: pb.FileObjectionRequest,
        context: grpc.aio.ServicerContext[pb.FileObjectionRequest, pb.Objection],
    ) -> pb.Objection:
        subject = request.subject_id.strip().upper()
        kind = wire.CASE_KIND_FROM_PB.get(request.kind)
        asserted = await self._asserted(
            context, subject, Action.OBJECTION_FILED, f" record={request.record_id[:64]} kind={kind}"
        )
        if kind is None:
            raise InvalidInput.for_field("kind", "请选择异议或信用修复 (kind is OBJECTION or CREDIT_REPAIR)")
        attachment = None
        if request.HasField("attachment"):
            attachment = check_attachment(request.attachment.filename, request.attachment.data)
        case = await self._desk().file(
            subject_id=subject,
            record_id=request.record_id,
            kind=kind,
            reason=request.reason,
            filed_by=asserted.user if asserted is not None else "unasserted",
            attachment=attachment,
        )
        log.info("case_filed", number=case.number, record=case.record_id, kind=case.kind.value)
        return wire.case_to_pb(case)

    async def ListObjections(
        self,
        request: pb.ListObjectionsRequest,
        context: grpc.aio.ServicerContext[pb.ListObjectionsRequest, pb.ListObjectionsResponse],
    ) -> pb.ListObjectionsResponse:
        subject = await self._reader(context, request.subject_id, " list")
        cases = await self._desk().list(
            subject_id=subject,
            state=wire.CASE_STATE_FROM_PB.get(request.state),
            kind=wire.CASE_KIND_FROM_PB.get(request.kind),
            limit=request.limit or 100,
            before=request.before,
        )
        return pb.ListObjectionsResponse(objections=[wire.case_to_pb(case) for case in cases])

    async def GetObjection(
        self,
        request: pb.GetObjectionRequest,
        context: grpc.aio.ServicerContext[pb.GetObjectionRequest, pb.Objection],
    ) -> pb.Objection:
        subject = await self._reader(context, request.subject_id, f" case={request.number[:40]}")
        case = await self._desk().get(request.number, subject_id=subject, with_attachment=request.with_attachment)
        return wire.case_to_pb(case)

    async def ResolveObjection(
        self,
        request: pb.ResolveObjectionRequest,
        context: grpc.aio.ServicerContext[pb.ResolveObjectionRequest, pb.Objection],
    ) -> pb.Objection:
        resolution = wire.RESOLUTION_FROM_PB.get(request.resolution)
        by = await self._authority(context, Action.OBJECTION_RESOLVED, f" case={request.number[:40]} as={resolution}")
        if resolution is None:
            raise InvalidInput.for_field("resolution", "请选择处理结论 (resolution is required)")
        case = await self._desk().resolve(
            request.number,
            resolution,
            note=request.note,
            resolved_by=by,
            correction=wire.correction_from_pb(request.correction, request.HasField("correction")),
        )
        log.info("case_resolved", number=case.number, resolution=resolution.value, version=case.new_version)
        return wire.case_to_pb(case)

    async def RepairRecord(
        self,
        request: pb.RepairRecordRequest,
        context: grpc.aio.ServicerContext[pb.RepairRecordRequest, pb.Objection],
    ) -> pb.Objection:
        by = await self._authority(context, Action.CREDIT_REPAIRED, f" record={request.record_id[:64]}")
        case = await self._desk().repair(request.record_id, note=request.note, resolved_by=by)
        log.info("credit_repaired", number=case.number, record=case.record_id, version=case.new_version)
        return wire.case_to_pb(case)
