"""The ``credit.v1.RegionalNode`` servicer: decode, delegate to the service, encode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog

from credit.audit import Action, Event, Outcome
from credit.errors import PermissionDenied, Unauthenticated
from nodes import convert
from nodes.assertions import BATCH, AssertionVerifier, OnBehalfOf
from nodes.auditlog import AuditLog
from nodes.service import NodeService
from nodes.tls import peer_identity
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc

FEED_PAGE = 1000
log = structlog.get_logger("jjj.node")


# Who may call what, by the identity in the caller's certificate (under mTLS).
GATEWAYS = ("gateway:",)
MEMBERS = ("gateway:", "node:")


class RegionalNodeServicer(node_pb2_grpc.RegionalNodeServicer):  # type: ignore[misc]  # generated base, untyped
    def __init__(
        self,
        *,
        service: NodeService,
        assertions: AssertionVerifier | None = None,
        feed_poll_seconds: float = 0.5,
        audit: AuditLog | None = None,
        require_identity: bool = False,
    ) -> None:
        self.service = service
        self.assertions = assertions
        self.feed_poll_seconds = feed_poll_seconds
        self.audit = audit
        self.require_identity = require_identity

    def _caller(self, context: Any, allowed: tuple[str, ...]) -> str:
        identity = peer_identity(context) if self.require_identity else None
        if self.require_identity and not (identity and identity.startswith(allowed)):
            raise PermissionDenied(f"调用方 {identity or '(unknown)'} 无权调用 (caller not allowed: {identity})")
        return identity or ""

    async def _asserted(self, context: Any, subject: str, action: Action) -> OnBehalfOf | None:
        caller = self._caller(context, GATEWAYS)
        if self.assertions is None:
            return None
        try:
            asserted = self.assertions.verify(context.invocation_metadata() or (), subject=subject)
        except (Unauthenticated, PermissionDenied) as exc:
            if self.audit is not None:
                await self.audit.record(
                    Event(
                        caller or "unknown",
                        "",
                        Action.REFUSED,
                        "" if subject == BATCH else subject[:18],
                        outcome=Outcome.REFUSED,
                        detail=exc.detail[:500],
                    )
                )
            raise
        log.info("query_on_behalf_of", user=asserted.user, subject=asserted.subject, purpose=asserted.purpose)
        if self.audit is not None:
            await self.audit.record(
                Event(
                    asserted.user,
                    asserted.role,
                    action,
                    "" if asserted.subject == BATCH else asserted.subject,
                    asserted.purpose[:200],
                    detail=f"jti={asserted.token_id} iss={asserted.issuer} via={caller or '-'}",
                )
            )
        return asserted

    async def GetCatalogue(
        self, request: pb.GetCatalogueRequest, context: grpc.aio.ServicerContext[pb.GetCatalogueRequest, pb.Catalogue]
    ) -> pb.Catalogue:
        self._caller(context, MEMBERS)
        catalogue, as_of = await self.service.catalogue_as_of()
        return convert.catalogue_to_pb(catalogue, as_of)

    async def QuerySubject(
        self,
        request: pb.QuerySubjectRequest,
        context: grpc.aio.ServicerContext[pb.QuerySubjectRequest, pb.SubjectResult],
    ) -> pb.SubjectResult:
        await self._asserted(context, request.subject_id.strip().upper(), Action.NODE_QUERY)
        result = await self.service.query(
            request.subject_id,
            convert.KIND_FROM_PB.get(request.subject_kind),
            convert.options_from_pb(request.options),
            purpose=request.purpose,
        )
        return convert.result_to_pb(result)

    async def CheckSubjects(
        self,
        request: pb.CheckSubjectsRequest,
        context: grpc.aio.ServicerContext[pb.CheckSubjectsRequest, pb.CheckSubjectsResponse],
    ) -> pb.CheckSubjectsResponse:
        await self._asserted(context, BATCH, Action.NODE_BATCH)
        batch = await self.service.check(
            request.subject_ids, convert.options_from_pb(request.options), purpose=request.purpose
        )
        return convert.batch_to_pb(self.service.region, batch)

    async def WatchChanges(
        self,
        request: pb.WatchChangesRequest,
        context: grpc.aio.ServicerContext[pb.WatchChangesRequest, pb.RecordChange],
    ) -> AsyncIterator[pb.RecordChange]:
        self._caller(context, MEMBERS)
        cursor = request.after_seq
        store = self.service.store
        while True:
            page = await store.changes(cursor, FEED_PAGE)
            for seq, record in page:
                yield convert.change_to_pb(self.service.region, seq, record)
                cursor = seq
            if len(page) < FEED_PAGE:
                if not request.follow:
                    return
                await asyncio.sleep(self.feed_poll_seconds)
