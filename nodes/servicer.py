"""The ``credit.v1.RegionalNode`` servicer: decode, delegate to the service, encode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog

from nodes import convert
from nodes.assertions import BATCH, AssertionVerifier, OnBehalfOf
from nodes.service import NodeService
from protos.credit.v1 import node_pb2 as pb
from protos.credit.v1 import node_pb2_grpc

FEED_PAGE = 1000
log = structlog.get_logger("jjj.node")


class RegionalNodeServicer(node_pb2_grpc.RegionalNodeServicer):  # type: ignore[misc]  # generated base, untyped
    def __init__(
        self, *, service: NodeService, assertions: AssertionVerifier | None = None, feed_poll_seconds: float = 0.5
    ) -> None:
        self.service = service
        self.assertions = assertions
        self.feed_poll_seconds = feed_poll_seconds

    def _asserted(self, context: Any, subject: str) -> OnBehalfOf | None:
        if self.assertions is None:
            return None
        asserted = self.assertions.verify(context.invocation_metadata() or (), subject=subject)
        log.info("query_on_behalf_of", user=asserted.user, subject=asserted.subject, purpose=asserted.purpose)
        return asserted

    async def GetCatalogue(
        self, request: pb.GetCatalogueRequest, context: grpc.aio.ServicerContext[pb.GetCatalogueRequest, pb.Catalogue]
    ) -> pb.Catalogue:
        catalogue, as_of = await self.service.catalogue_as_of()
        return convert.catalogue_to_pb(catalogue, as_of)

    async def QuerySubject(
        self,
        request: pb.QuerySubjectRequest,
        context: grpc.aio.ServicerContext[pb.QuerySubjectRequest, pb.SubjectResult],
    ) -> pb.SubjectResult:
        self._asserted(context, request.subject_id.strip().upper())
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
        self._asserted(context, BATCH)
        batch = await self.service.check(
            request.subject_ids, convert.options_from_pb(request.options), purpose=request.purpose
        )
        return convert.batch_to_pb(self.service.region, batch)

    async def WatchChanges(
        self,
        request: pb.WatchChangesRequest,
        context: grpc.aio.ServicerContext[pb.WatchChangesRequest, pb.RecordChange],
    ) -> AsyncIterator[pb.RecordChange]:
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
