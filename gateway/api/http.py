"""The HTTP front door (aiohttp): JSON API, verification, JWKS, health and metrics.

Errors leave as ``application/problem+json`` (RFC 9457) from one middleware; an
unexpected exception is logged with its traceback and answered with a generic 500.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import BodyPartReader, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from credit import policy
from credit.audit import Entry, checkpoint_document
from credit.cases import CaseKind, CaseState, Resolution
from credit.clock import iso_z
from credit.errors import (
    CreditError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    TooManyAttempts,
    Unauthenticated,
)
from credit.policy import Principal
from credit.regions import Region
from gateway.access.auth import Sessions, login, logout
from gateway.access.grants import GrantService, GrantTerms, Redeemed
from gateway.access.history import History
from gateway.api import inputs
from gateway.api.cases import attachment_response, case_body, correction_from_body
from gateway.api.downloads import csv_response, xlsx_response
from gateway.api.openapi import OPENAPI
from gateway.batch.jobs import BatchService, parse_subject_list
from gateway.batch.lists import MAX_NAME
from gateway.batch.tables import signed_summary
from gateway.objections.service import ObjectionService
from gateway.registry import Registry
from gateway.reports.service import APPLICATION_DATE_IS_TODAY, IssuedReport, ReportService, Verification
from gateway.reports.verify import verify_address

log = structlog.get_logger("jjj.gateway")

REQUESTS = Counter("jjj_gateway_http_requests_total", "HTTP requests", ["route", "status"])
LATENCY = Histogram(
    "jjj_gateway_http_seconds",
    "HTTP request time",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# The requests each process answered: with several workers (jjj gateway --workers), one
# series per running worker (label ``pid``), which shows how the kernel spreads the
# connections over them; the counters above add all workers up.
PROCESS_REQUESTS = Gauge(
    "jjj_gateway_process_http_requests",
    "HTTP requests this process answered since it started",
    multiprocess_mode="liveall",
)

SERVICE: web.AppKey[ReportService] = web.AppKey("service", ReportService)
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)
REGISTRY: web.AppKey[Registry] = web.AppKey("registry", Registry)
GRANTS: web.AppKey[GrantService] = web.AppKey("grants", GrantService)
BATCHES: web.AppKey[BatchService] = web.AppKey("batches", BatchService)
OBJECTIONS: web.AppKey[ObjectionService] = web.AppKey("objections", ObjectionService)
HISTORY: web.AppKey[History] = web.AppKey("history", History)
METRICS_DIR: web.AppKey[str] = web.AppKey("metrics_dir", str)
# What an unknown address outside the machine paths answers with, when a portal is mounted.
NOT_FOUND_PAGE: web.AppKey[Handler] = web.AppKey("not_found_page")
MACHINE_PATHS = ("/api/", "/.well-known/", "/metrics", "/healthz")
MAX_OBJECTION_BYTES = 6 * 1024 * 1024  # a 4 MiB attachment, base64-encoded, and the rest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, title: str, detail: str, *, extra: dict[str, Any] | None = None) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **(extra or {})}
    # A detail may echo input (a path, a name): what UTF-8 cannot carry is replaced.
    text = inputs.safe_text(json.dumps(body, ensure_ascii=False))
    return web.Response(status=status, text=text, content_type="application/problem+json")


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    started = time.perf_counter()
    try:
        response = await handler(request)
    except CreditError as exc:
        extra: dict[str, Any] = {"instance": request.path}
        if isinstance(exc, InvalidInput) and exc.violations:
            extra["invalid-params"] = [{"name": v.field, "reason": v.description} for v in exc.violations]
        response = problem(exc.http_status, exc.title, exc.detail, extra=extra)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthenticated):
            response.headers["WWW-Authenticate"] = 'Bearer realm="jjj"'
    except web.HTTPException as exc:
        page_for_people = request.app.get(NOT_FOUND_PAGE)
        if exc.status == 404 and page_for_people is not None and not request.path.startswith(MACHINE_PATHS):
            response = await page_for_people(request)  # a person's browser: a page, with a way back
        else:
            response = problem(exc.status, exc.reason, exc.text or exc.reason)
    except Exception:
        log.exception("http_failed", path=request.path)
        response = problem(500, "Internal error", "内部错误，请稍后再试 (internal error; please try again later)")
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    response.headers["X-Request-Id"] = request_id
    REQUESTS.labels(route, str(response.status)).inc()
    PROCESS_REQUESTS.inc()
    LATENCY.labels(route).observe(time.perf_counter() - started)
    return response


async def _json(request: web.Request) -> dict[str, Any]:
    body = inputs.loads(await request.read())
    if not isinstance(body, dict):
        raise InvalidInput.for_field("body", "请求体应为 JSON 对象 (the body must be a JSON object)")
    return body


def _field(body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = body.get(name, default)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise InvalidInput.for_field(name, f"must be a {kind.__name__}")
    return value


def principal(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("请先登录 (log in first: Authorization: Bearer <token>)")
    return request.app[SESSIONS].verify(token.strip())


def _report_response(issued: IssuedReport, *, status: int = 200, extra: dict[str, Any] | None = None) -> web.Response:
    doc = issued.document
    head = {
        "report_no": doc["report_no"],
        "verification_code": doc["verification_code"],
        "verdict": doc["verdict"],
        "status": issued.status,
        **(extra or {}),
    }
    # The report is already canonical JSON (UTF-8), and the JWS is base64url and dots
    # (nothing to escape): embed both as bytes rather than decode and encode tens of
    # kilobytes again.
    report = issued.canonical or json.dumps(doc, ensure_ascii=False).encode()
    parts = (json.dumps(head, ensure_ascii=False)[:-1].encode(), b', "jws": "', issued.jws.encode("ascii"))
    body = b"".join((*parts, b'", "report": ', report, b"}"))
    return web.Response(status=status, body=body, content_type="application/json", charset="utf-8")


def _verification_body(result: Verification) -> dict[str, Any]:
    return {
        "genuine": result.genuine,
        "status": result.status,
        "reason": result.reason or None,
        "summary": result.summary,
    } | ({"sealed_by": result.sealed_by} if result.sealed_by else {})


async def post_login(request: web.Request) -> web.Response:
    body = await _json(request)
    username, password = _field(body, "username", str), _field(body, "password", str)
    if not username or not password:
        raise InvalidInput.for_field("username", "username and password are required")
    token, lifetime = await login(
        request.app[REGISTRY],
        request.app[SESSIONS],
        username,
        password,
        address=request.remote or "unknown",
        audit=request.app[SERVICE].audit,
    )
    return web.json_response({"token": token, "token_type": "Bearer", "expires_in": lifetime})


async def post_logout(request: web.Request) -> web.Response:
    principal(request)
    token = request.headers["Authorization"].partition(" ")[2].strip()
    await logout(request.app[REGISTRY], request.app[SESSIONS], token, audit=request.app[SERVICE].audit)
    return web.Response(status=204)


async def post_report(request: web.Request) -> web.Response:
    who = principal(request)
    body = await _json(request)
    years = _field(body, "years", int, 0)
    if "application_date" in body:
        raise InvalidInput.for_field("application_date", APPLICATION_DATE_IS_TODAY)
    issued = await request.app[SERVICE].issue(
        who,
        subject_id=_field(body, "subject", str, "") or "",
        years=years,
        profile_id=_field(body, "profile", str, "") or "",
        purpose=_field(body, "purpose", str, "") or "",
    )
    response = _report_response(issued, status=201)
    response.headers["Location"] = f"/api/v1/reports/{issued.document['report_no']}"
    return response


async def get_report(request: web.Request) -> web.Response:
    issued = await request.app[SERVICE].get(principal(request), request.match_info["report_no"])
    return _report_response(issued)


async def get_verify_code(request: web.Request) -> web.Response:
    result = await request.app[SERVICE].verify_code(request.match_info["code"], address=request.remote or "unknown")
    return web.json_response(_verification_body(result), status=200 if result.genuine else 404)


async def post_verify(request: web.Request) -> web.Response:
    data = await request.read()
    service = request.app[SERVICE]
    if request.content_type == "application/pdf" or data.startswith(b"%PDF"):
        # The printed report: its QR code must lead to this site's verify page.
        public = request.app[GRANTS].public_url
        result = await service.verify_upload(
            data, verify_url_for=lambda doc: verify_address(public, str(doc.get("verification_code", "")))
        )
        return web.json_response(_verification_body(result))
    if request.content_type == "application/json":
        body = inputs.loads(data)
        text = str(body.get("jws", "")) if isinstance(body, dict) else ""
    else:
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise InvalidInput.for_field("body", "请求体不是 UTF-8 编码 (the body is not UTF-8)") from None
    if not text:
        raise InvalidInput.for_field("jws", 'send the signed report (compact JWS) as the body or as {"jws": …}')
    result = await service.verify_report(text)
    return web.json_response(_verification_body(result))


async def get_jwks(request: web.Request) -> web.Response:
    response = web.json_response(request.app[SERVICE].keyring.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


async def get_health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_metrics(request: web.Request) -> web.Response:
    if shared := request.app[METRICS_DIR]:
        # Every worker's metrics, from the files they keep (prometheus_client's
        # multiprocess mode): whichever worker answers, the scrape sees them all.
        workers = CollectorRegistry()
        MultiProcessCollector(workers, path=shared)  # type: ignore[no-untyped-call]
        return web.Response(body=generate_latest(workers), headers={"Content-Type": CONTENT_TYPE_LATEST})
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def _optional_principal(request: web.Request) -> Principal | None:
    return principal(request) if request.headers.get("Authorization") else None


async def post_grant_preview(request: web.Request) -> web.Response:
    who = principal(request)
    body = await _json(request)
    terms = GrantTerms.parse(body)
    preview = await request.app[GRANTS].preview(who, terms, subject_id=_field(body, "subject", str, "") or "")
    organisation = preview.organisation
    return web.json_response(
        {
            "preview": preview.token,
            "terms": dataclasses.asdict(preview.terms),
            "grantee_org": {"code": organisation.code, "name": organisation.name} if organisation else None,
            "verdict": preview.draft["verdict"],
            "report": preview.draft,
        }
    )


async def post_grant(request: web.Request) -> web.Response:
    who = principal(request)
    body = await _json(request)
    created = await request.app[GRANTS].create(
        who, preview=_field(body, "preview", str, "") or "", confirm=body.get("confirm") is True
    )
    organisation = created.organisation
    return web.json_response(
        {
            "grant": created.grant.public(),
            "code": created.code,
            "url": created.url,
            "qr_png": base64.b64encode(created.qr_png).decode("ascii"),
            "grantee_org": {"code": organisation.code, "name": organisation.name} if organisation else None,
            "changed": created.changed,
        },
        status=201,
    )


async def get_grants(request: web.Request) -> web.Response:
    grants = await request.app[GRANTS].mine(principal(request))
    return web.json_response({"grants": [grant.public() for grant in grants]})


async def post_grant_revoke(request: web.Request) -> web.Response:
    grant = await request.app[GRANTS].revoke(principal(request), request.match_info["grant_id"])
    return web.json_response({"grant": grant.public()})


def _redeemed_response(redeemed: Redeemed) -> web.Response:
    grant = redeemed.grant
    extra: dict[str, Any] = {
        "grant": {
            "purpose": grant.purpose,
            "uses_left": grant.max_uses - grant.uses,
            "expires_at": grant.public()["expires_at"],
        },
        "redemption_id": redeemed.redemption_id or None,
    }
    response = _report_response(redeemed.report, extra=extra)
    response.headers["Cache-Control"] = "no-store"
    if redeemed.redemption_id:
        # Read it again there, as often as needed, without using the grant again.
        response.headers["Content-Location"] = f"/api/v1/redemptions/{redeemed.redemption_id}"
    return response


async def get_grant_report(request: web.Request) -> web.Response:
    redeemed = await request.app[GRANTS].redeem(
        request.match_info["code"], _optional_principal(request), address=request.remote or ""
    )
    return _redeemed_response(redeemed)


async def get_redemption(request: web.Request) -> web.Response:
    redeemed = await request.app[GRANTS].redemption(request.match_info["redemption_id"], principal(request))
    return _redeemed_response(redeemed)


def _entry_body(entry: Entry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": iso_z(entry.at),
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "subject": entry.subject or None,
        "purpose": entry.purpose or None,
        "outcome": entry.outcome,
        "detail": entry.detail or None,
    }


def _int_query(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput.for_field(name, "must be an integer") from None
    if not low <= value <= high:
        raise InvalidInput.for_field(name, f"must be between {low} and {high}")
    return value


async def get_audit_mine(request: web.Request) -> web.Response:
    who = principal(request)
    limit = _int_query(request, "limit", 100, 1, 1000) or 100
    before = _int_query(request, "before", None, 1, 2**62)
    entries = await request.app[HISTORY].mine(who, before=before, limit=limit)
    return web.json_response({"entries": [_entry_body(entry) for entry in entries]})


async def get_audit(request: web.Request) -> web.Response:
    who = principal(request)
    limit = _int_query(request, "limit", 100, 1, 1000) or 100
    before = _int_query(request, "before", None, 1, 2**62)
    subject, actor = request.query.get("subject"), request.query.get("actor")
    entries = await request.app[HISTORY].everything(who, subject=subject, actor=actor, before=before, limit=limit)
    return web.json_response({"entries": [_entry_body(entry) for entry in entries]})


MAX_LIST_BYTES = 48 * 1024 * 1024  # a million identifiers with room to spare


async def _body(request: web.Request, limit: int, *, field: str = "subjects", what: str = "名单") -> bytes:
    # Read past the application's small default body limit, for this route only.
    data = bytearray()
    async for piece in request.content.iter_chunked(65536):
        data += piece
        if len(data) > limit:
            raise PayloadTooLarge.for_field(
                field, f"{what}超过 {limit // 1024 // 1024} MB (the {field} is too large: at most {limit:,} bytes)"
            )
    return bytes(data)


_LIST_TYPES = ("text/csv", "text/plain", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


async def post_batch(request: web.Request) -> web.Response:
    who = principal(request)
    data = await _body(request, MAX_LIST_BYTES)
    names: list[str] | None
    if request.content_type in _LIST_TYPES:
        listed = parse_subject_list(data)
        subjects, names = listed.entries, listed.names
        purpose, years, profile = request.query.get("purpose", ""), request.query.get("years", "0"), ""
        profile = request.query.get("profile", "")
        try:
            years_value = int(years)
        except ValueError:
            raise InvalidInput.for_field("years", "must be an integer") from None
    else:
        body = inputs.loads(data)
        if not isinstance(body, dict) or not isinstance(body.get("subjects"), list):
            raise InvalidInput.for_field("subjects", 'send {"purpose": …, "subjects": [identifiers]} or a CSV list')
        subjects = body["subjects"]
        purpose = _field(body, "purpose", str, "") or ""
        years_value = _field(body, "years", int, 0) or 0
        profile = _field(body, "profile", str, "") or ""
        names = _field(body, "names", list, None)
        if names is not None and not all(isinstance(name, str) and len(name) <= MAX_NAME for name in names):
            raise InvalidInput.for_field("names", f"names are strings of at most {MAX_NAME} characters")
    status = await request.app[BATCHES].submit(
        who, subjects, purpose=purpose, years=years_value, profile_id=profile, names=names
    )
    response = web.json_response(status.public(), status=202)
    response.headers["Location"] = f"/api/v1/batches/{status.job_id}"
    return response


async def get_batch(request: web.Request) -> web.Response:
    status = await request.app[BATCHES].status(principal(request), request.match_info["job_id"])
    return web.json_response(status.public())


async def get_batch_csv(request: web.Request) -> web.StreamResponse:
    batches = request.app[BATCHES]
    return await csv_response(request, batches, await batches.status(principal(request), request.match_info["job_id"]))


async def get_batch_xlsx(request: web.Request) -> web.StreamResponse:
    batches = request.app[BATCHES]
    return await xlsx_response(batches, await batches.status(principal(request), request.match_info["job_id"]))


async def get_batch_summary(request: web.Request) -> web.Response:
    batches = request.app[BATCHES]
    summary = await signed_summary(batches, await batches.status(principal(request), request.match_info["job_id"]))
    return web.json_response({"summary": summary.document, "jws": summary.jws})


def _choice(enum_type: Any, value: Any, name: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)
        raise InvalidInput.for_field(name, f"应为 {allowed} 之一 (one of {allowed})") from None


async def _objection_form(request: web.Request) -> tuple[dict[str, Any], tuple[str, bytes] | None]:
    """The fields of a filed case and its attachment, from JSON (attachment as
    ``{"filename", "content_base64"}``) or multipart/form-data (a file part ``attachment``)."""
    if request.content_type == "multipart/form-data":
        fields: dict[str, Any] = {}
        attachment = None
        reader = await request.multipart()
        total = 0
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidInput.for_field("body", "不支持嵌套的表单 (nested multipart is not supported)")
            data = bytearray()
            while chunk := await part.read_chunk(65536):
                data += chunk
                total += len(chunk)
                if total > MAX_OBJECTION_BYTES:
                    raise PayloadTooLarge.for_field("attachment", "附件不能超过 4 MB (the attachment is too large)")
            if part.name == "attachment" and part.filename:
                if data:
                    attachment = (part.filename, bytes(data))
            elif part.name:
                fields[part.name] = data.decode("utf-8", errors="replace")
        return fields, attachment
    raw = await _body(request, MAX_OBJECTION_BYTES, field="attachment", what="附件") if request.can_read_body else b""
    body = inputs.loads(raw) if raw else {}
    if not isinstance(body, dict):
        raise InvalidInput.for_field("body", "请求体应为 JSON 对象 (the body must be a JSON object)")
    given = _field(body, "attachment", dict)
    if given is None:
        return body, None
    try:
        decoded = base64.b64decode(str(given.get("content_base64", "")), validate=True)
    except ValueError:
        raise InvalidInput.for_field("attachment.content_base64", "不是有效的 Base64 (not valid base64)") from None
    return body, (str(given.get("filename", "")), decoded)


async def post_objection(request: web.Request) -> web.Response:
    who = principal(request)
    fields, attachment = await _objection_form(request)
    for name in ("report_no", "record_id", "reason"):
        if not isinstance(fields.get(name), str):
            raise InvalidInput.for_field(name, "必填 (required, a string)")
    case = await request.app[OBJECTIONS].file(
        who,
        report_no=fields["report_no"],
        record_id=fields["record_id"],
        kind=_choice(CaseKind, fields.get("kind") or "objection", "kind"),
        reason=fields["reason"],
        attachment=attachment,
    )
    response = web.json_response(case_body(case), status=201)
    response.headers["Location"] = f"/api/v1/objections/{case.number}"
    return response


async def get_objections(request: web.Request) -> web.Response:
    who = principal(request)
    service = request.app[OBJECTIONS]
    if policy.decides_cases(who):
        region = Region.parse(request.query.get("region", ""), field="region")
        state = request.query.get("state")
        kind = request.query.get("kind")
        cases = await service.list(
            who,
            region,
            state=_choice(CaseState, state, "state") if state else None,
            kind=_choice(CaseKind, kind, "kind") if kind else None,
            limit=_int_query(request, "limit", 100, 1, 1000) or 100,
            before=request.query.get("before", ""),
        )
        return web.json_response({"region": region.value, "objections": [case_body(c) for c in cases]})
    cases, missing = await service.mine(who)
    return web.json_response(
        {
            "objections": [case_body(c) for c in cases],
            "unavailable": {region.value: reason for region, reason in missing.items()},
        }
    )


async def get_objection(request: web.Request) -> web.Response:
    case = await request.app[OBJECTIONS].get(principal(request), request.match_info["number"])
    return web.json_response(case_body(case))


async def get_objection_attachment(request: web.Request) -> web.Response:
    case = await request.app[OBJECTIONS].get(principal(request), request.match_info["number"], with_attachment=True)
    return attachment_response(case)


async def post_objection_resolve(request: web.Request) -> web.Response:
    who = principal(request)
    body = await _json(request)
    case = await request.app[OBJECTIONS].resolve(
        who,
        request.match_info["number"],
        _choice(Resolution, _field(body, "resolution", str, ""), "resolution"),
        note=_field(body, "note", str, "") or "",
        correction=correction_from_body(body.get("correction")),
    )
    return web.json_response(case_body(case))


async def post_repair(request: web.Request) -> web.Response:
    who = principal(request)
    body = await _json(request)
    case = await request.app[OBJECTIONS].repair(
        who,
        Region.parse(_field(body, "region", str, "") or "", field="region"),
        _field(body, "record_id", str, "") or "",
        note=_field(body, "note", str, "") or "",
    )
    response = web.json_response(case_body(case), status=201)
    response.headers["Location"] = f"/api/v1/objections/{case.number}"
    return response


async def get_audit_checkpoint(request: web.Request) -> web.Response:
    """The latest signed checkpoint of the audit log, for peers to keep (public)."""
    service = request.app[SERVICE]
    checkpoint = await request.app[REGISTRY].read(service.audit.latest_checkpoint)
    if checkpoint is None:
        raise NotFound("审计日志尚无检查点 (the audit log has no checkpoint yet)")
    response = web.json_response(checkpoint_document(checkpoint, service.issuer))
    response.headers["Cache-Control"] = "no-store"
    return response


def build_app(
    *,
    service: ReportService,
    sessions: Sessions,
    registry: Registry,
    grants: GrantService,
    batches: BatchService | None = None,
    objections: ObjectionService | None = None,
    metrics_dir: str = "",
) -> web.Application:
    """The HTTP API. ``metrics_dir``: where the workers of ``jjj gateway --workers`` keep
    their metrics (empty: one process, whose own metrics ``/metrics`` shows)."""
    app = web.Application(middlewares=[errors_and_metrics], client_max_size=1024 * 1024)
    app[METRICS_DIR] = metrics_dir
    app[SERVICE] = service
    app[SESSIONS] = sessions
    app[REGISTRY] = registry
    # Logouts and account changes end sessions in the database every process shares.
    sessions.watch_ended(registry.ended_since)
    app[GRANTS] = grants
    app[HISTORY] = History(service.audit, registry)
    if batches is not None:
        app[BATCHES] = batches
        app.router.add_post("/api/v1/batches", post_batch)
        app.router.add_get("/api/v1/batches/{job_id}", get_batch)
        app.router.add_get("/api/v1/batches/{job_id}/table.csv", get_batch_csv)
        app.router.add_get("/api/v1/batches/{job_id}/table.xlsx", get_batch_xlsx)
        app.router.add_get("/api/v1/batches/{job_id}/summary", get_batch_summary)
    if objections is not None:
        app[OBJECTIONS] = objections
        app.router.add_post("/api/v1/objections", post_objection)
        app.router.add_get("/api/v1/objections", get_objections)
        app.router.add_get("/api/v1/objections/{number}", get_objection)
        app.router.add_get("/api/v1/objections/{number}/attachment", get_objection_attachment)
        app.router.add_post("/api/v1/objections/{number}/resolve", post_objection_resolve)
        app.router.add_post("/api/v1/repairs", post_repair)
    app.router.add_post("/api/v1/login", post_login)
    app.router.add_post("/api/v1/logout", post_logout)
    app.router.add_post("/api/v1/reports", post_report)
    app.router.add_get("/api/v1/reports/{report_no}", get_report)
    app.router.add_get("/api/v1/verify/{code}", get_verify_code)
    app.router.add_post("/api/v1/verify", post_verify)
    app.router.add_post("/api/v1/grants/preview", post_grant_preview)
    app.router.add_post("/api/v1/grants", post_grant)
    app.router.add_get("/api/v1/grants", get_grants)
    app.router.add_post("/api/v1/grants/{grant_id}/revoke", post_grant_revoke)
    app.router.add_get("/api/v1/grants/{code}/report", get_grant_report)
    app.router.add_get("/api/v1/redemptions/{redemption_id}", get_redemption)
    app.router.add_get("/api/v1/audit/mine", get_audit_mine)
    app.router.add_get("/api/v1/audit", get_audit)
    app.router.add_get("/.well-known/jwks.json", get_jwks)
    app.router.add_get("/healthz", get_health)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/api/v1/openapi.json", get_openapi)
    app.router.add_get("/api/v1/audit/checkpoint", get_audit_checkpoint)
    return app
