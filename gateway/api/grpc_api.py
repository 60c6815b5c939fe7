"""The gateway's gRPC front door (``credit.v1.ReportGateway``): decode, delegate, encode."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc

from credit.errors import FailedPrecondition, InvalidInput, Unauthenticated
from credit.policy import Principal
from gateway.access.auth import Sessions, login
from gateway.access.grants import GrantService
from gateway.batch.jobs import BatchService, JobStatus
from gateway.batch.tables import signed_summary, stream_csv
from gateway.registry import Registry
from gateway.reports.service import APPLICATION_DATE_IS_TODAY, IssuedReport, ReportService, Verification
from protos.credit.v1 import gateway_pb2 as pb
from protos.credit.v1 import gateway_pb2_grpc


def _issued(issued: IssuedReport) -> pb.IssuedReport:
    doc = issued.document
    return pb.IssuedReport(
        report_no=doc["report_no"],
        verification_code=doc["verification_code"],
        verdict=doc["verdict"],
        status=issued.status,
        report_json=issued.document_json or json.dumps(doc, ensure_ascii=False),
        jws=issued.jws,
    )


def _verification(result: Verification) -> pb.Verification:
    return pb.Verification(
        genuine=result.genuine,
        status=result.status,
        reason=result.reason,
        summary_json=json.dumps(result.summary, ensure_ascii=False) if result.summary else "",
    )


def peer_address(peer: str) -> str:
    """The client address of a gRPC peer ("ipv4:1.2.3.4:port", "ipv6:[::1]:port") as the
    HTTP front door sees it ("1.2.3.4", "::1"), so that both count against one address."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return kind or "unknown"
    host = rest.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


class ReportGatewayServicer(gateway_pb2_grpc.ReportGatewayServicer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        service: ReportService,
        sessions: Sessions,
        registry: Registry,
        grants: GrantService,
        batches: BatchService | None = None,
    ) -> None:
        self.service = service
        self.grants = grants
        self.batches = batches
        self.sessions = sessions
        self.registry = registry

    def _principal(self, context: Any) -> Principal:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                scheme, _, token = str(value).partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return self.sessions.verify(token.strip())
        raise Unauthenticated("请先登录 (log in first: authorization metadata 'Bearer <token>')")

    async def Login(self, request: pb.LoginRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.LoginResponse:
        if not request.username or not request.password:
            raise InvalidInput.for_field("username", "username and password are required")
        token, lifetime = await login(
            self.registry,
            self.sessions,
            request.username,
            request.password,
            address=peer_address(str(context.peer())),
            audit=self.service.audit,
        )
        return pb.LoginResponse(token=token, expires_in=lifetime)

    async def IssueReport(
        self, request: pb.IssueReportRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.IssuedReport:
        who = self._principal(context)
        if request.application_date:
            raise InvalidInput.for_field("application_date", APPLICATION_DATE_IS_TODAY)
        issued = await self.service.issue(
            who,
            subject_id=request.subject_id,
            years=request.years,
            profile_id=request.profile,
            purpose=request.purpose,
        )
        return _issued(issued)

    async def GetReport(
        self, request: pb.GetReportRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.IssuedReport:
        return _issued(await self.service.get(self._principal(context), request.report_no))

    async def VerifyCode(
        self, request: pb.VerifyCodeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Verification:
        return _verification(await self.service.verify_code(request.code, address=peer_address(str(context.peer()))))

    async def VerifyReport(
        self, request: pb.VerifyReportRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Verification:
        if not request.jws.strip():
            raise InvalidInput.for_field("jws", "the signed report (compact JWS) is required")
        return _verification(await self.service.verify_report(request.jws))

    async def RedeemGrant(
        self, request: pb.RedeemGrantRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RedeemedGrant:
        has_session = any(key == "authorization" for key, _ in context.invocation_metadata() or ())
        who = self._principal(context) if has_session else None
        redeemed = await self.grants.redeem(request.code, who, address=peer_address(str(context.peer())))
        grant = redeemed.grant
        return pb.RedeemedGrant(
            report=_issued(redeemed.report),
            purpose=grant.purpose,
            uses_left=grant.max_uses - grant.uses,
            expires_at=grant.public()["expires_at"],
        )

    def _batches(self) -> BatchService:
        if self.batches is None:
            raise FailedPrecondition("batch checks are not enabled on this gateway")
        return self.batches

    async def _batch_status(self, status: JobStatus) -> pb.BatchStatus:
        out = pb.BatchStatus(job_id=status.job_id, status=status.status, total=status.total)
        for region, done in status.done.items():
            out.progress.add(region=region, chunks_done=done, chunks=status.chunks)
        if status.status == "done":
            summary = await signed_summary(self._batches(), status)
            out.summary_json = json.dumps(summary.document, ensure_ascii=False)
            out.summary_jws = summary.jws
        return out

    async def SubmitBatch(
        self, request: pb.SubmitBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.BatchStatus:
        status = await self._batches().submit(
            self._principal(context),
            list(request.subject_ids),
            purpose=request.purpose,
            years=request.years,
            profile_id=request.profile,
        )
        return await self._batch_status(status)

    async def GetBatch(
        self, request: pb.GetBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.BatchStatus:
        return await self._batch_status(await self._batches().status(self._principal(context), request.job_id))

    async def GetBatchTable(
        self, request: pb.GetBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.BatchTablePiece]:
        batches = self._batches()
        status = await batches.status(self._principal(context), request.job_id)
        async for piece in stream_csv(batches.rows(status.job_id)):
            yield pb.BatchTablePiece(csv=piece)
