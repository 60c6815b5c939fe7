"""The OpenAPI 3.1 description of the HTTP API, served at /api/v1/openapi.json.

It lists every status each operation answers, errors included (``application/problem+json``,
RFC 9457), with a schema for every body. The tests hold every answer they get to it
(tests/gateway/contract.py): a status, a media type or an object member it does not
describe fails them.
"""

from __future__ import annotations

from typing import Any

from credit.cases import CaseKind, Resolution
from credit.catalogue import Scope
from credit.document import FORMAT as REPORT_FORMAT
from credit.regions import Region
from credit.report import Verdict
from credit.signing import BATCH_SUMMARY_FORMAT

# The enums are the core's own: the document cannot name a value the code does not have.
_REGIONS = [region.value for region in Region]
_SCOPES = [scope.value for scope in Scope]
_VERDICTS = [verdict.value for verdict in Verdict]
_REPORT_STATUSES = ["valid", "superseded", "revoked"]
_CASE_KINDS = [kind.value for kind in CaseKind]
_RESOLUTIONS = [resolution.value for resolution in Resolution]

_STRING = {"type": "string"}
_INTEGER = {"type": "integer"}
_BOOLEAN = {"type": "boolean"}
_DATE = {"type": "string", "format": "date"}
_DATE_TIME = {"type": "string", "format": "date-time"}
_OPTIONAL_STRING = {"type": ["string", "null"]}
_OPTIONAL_DATE = {"type": ["string", "null"], "format": "date"}
_OPTIONAL_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _per_region(value: dict[str, Any], **more: Any) -> dict[str, Any]:
    """An object keyed by region names, each holding ``value``."""
    return {"type": "object", "propertyNames": {"enum": _REGIONS}, "additionalProperties": value, **more}


def _nullable(name: str) -> dict[str, Any]:
    return {"anyOf": [_ref(name), {"type": "null"}]}


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = (), **more: Any) -> dict[str, Any]:
    """An object with these members, all present unless named ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        **more,
    }


def _json(schema: dict[str, Any], description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema or _STRING}


_LOCATION = _header("Where the created resource is read")

_PROBLEMS = {
    400: "The request is malformed or a field is invalid (invalid-params names it)",
    401: "No session, or not a valid one",
    403: "The session's account may not do this",
    404: "No such resource (or not one of the caller's)",
    409: "The resource is not in a state that allows this",
    413: "The body is too large",
    429: "Too many attempts: retry after the number of seconds in Retry-After",
    500: "Internal error",
    503: "A regional node that must answer cannot be reached",
}


def _problem(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": f"{_PROBLEMS[status]} (problem, RFC 9457)",
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": _header('The scheme to use: Bearer realm="jjj"')}
    if status == 429:
        response["headers"] = {"Retry-After": _header("Seconds to wait", {"type": "integer", "minimum": 0})}
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    """Problem answers for these statuses, and 500, which any operation may answer."""
    return {str(status): _problem(status) for status in (*statuses, 500)}


_REPORT = _json(_ref("IssuedReport"), "A signed report")
_VERIFICATION = _json(_ref("Verification"), "Verification result")
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_CASE = _json(_ref("Case"), "The case")
_CREATED_CASE = _json(_ref("Case"), "The case", Location=_LOCATION)
_AUDIT = _json(_object({"entries": {"type": "array", "items": _ref("AuditEntry")}}), "Audit entries, newest first")
_CASE_NUMBER = {
    "name": "number",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^(BJ|TJ|HE)-(YY|XF)-[0-9]{1,12}$"},
}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": _STRING}


def _binary(media_type: str) -> dict[str, Any]:
    """A download: the body is the file's bytes."""
    return {"schema": {"type": "string", "contentMediaType": media_type}}


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# The members of a report as the API returns it, shared by the answers that add to them.
_ISSUED = {
    "report_no": _STRING,
    "verification_code": _STRING,
    "verdict": {"enum": _VERDICTS},
    "status": {"enum": _REPORT_STATUSES},
    "jws": {"type": "string", "description": "the report, signed: compact JWS (alg Ed25519, typ jjj-report+jws)"},
    "report": _ref("Report"),
}

_RECORD_IN_REPORT = _object(
    {
        "decision_no": _STRING,
        "authority": _STRING,
        "decided_on": _DATE,
        "category": _STRING,
        "content": _STRING,
        "procedure": {"enum": ["general", "simplified", "n/a"]},
        "status": {"enum": ["in_force", "repaired", "revoked"]},
        "publicity_until": _OPTIONAL_DATE,
        "removed_on": _OPTIONAL_DATE,
        "record_id": _STRING,
        "version": _INTEGER,
        "objection": {"const": "open", "description": "present while an objection to the record is open"},
    },
    optional=("objection",),
)

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Beijing–Tianjin–Hebei credit report gateway",
        "version": "1.0.0",
        "description": "Log in once, get one signed three-region public credit report, verify any report.",
    },
    "paths": {
        "/api/v1/login": {
            "post": {
                "summary": "Log in; returns a session token (an Ed25519-signed JWT, typ jjj-session+jwt)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Login")}},
                },
                "responses": {"200": _json(_ref("Session"), "Session"), **_errors(400, 401, 413, 429)},
            }
        },
        "/api/v1/logout": {
            "post": {
                "summary": "End this session: its token no longer counts, in any gateway process",
                "security": _BEARER,
                "responses": {"204": {"description": "Logged out"}, **_errors(401)},
            }
        },
        "/api/v1/reports": {
            "post": {
                "summary": "Issue a three-region report for a subject",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ReportRequest")}},
                },
                "responses": {
                    "201": _json(_ref("IssuedReport"), "The signed report, registered", Location=_LOCATION),
                    **_errors(400, 401, 403, 413),
                },
            }
        },
        "/api/v1/reports/{report_no}": {
            "get": {
                "summary": "A registered report",
                "security": _BEARER,
                "parameters": [{"name": "report_no", "in": "path", "required": True, "schema": _STRING}],
                "responses": {"200": _REPORT, **_errors(401, 403, 404)},
            }
        },
        "/api/v1/verify/{code}": {
            "get": {
                "summary": "Look a report up by its verification code (public)",
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": _STRING}],
                "responses": {
                    "200": _VERIFICATION,
                    "404": _json(_ref("Verification"), "No report has this code (genuine: false)"),
                    **_errors(400, 429),
                },
            }
        },
        "/api/v1/verify": {
            "post": {
                "summary": "Verify a signed report or a printed one (public)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/plain": {"schema": {"type": "string", "description": "compact JWS"}},
                        "application/pdf": {
                            "schema": {
                                "type": "string",
                                "format": "binary",
                                "description": "the printed report: its PDF signature (PAdES) and its attached "
                                "signed report are both checked",
                            }
                        },
                        "application/json": {
                            "schema": {"type": "object", "properties": {"jws": {"type": "string"}}, "required": ["jws"]}
                        },
                    },
                },
                "responses": {"200": _VERIFICATION, **_errors(400, 413)},
            }
        },
        "/api/v1/grants/preview": {
            "post": {
                "summary": "Preview a grant: what the grantee will see, and a token to confirm it",
                "description": "The report is asked for and merged but not issued: the preview's document has no "
                "number, no verification code and no signature, and nothing is registered. A fixed grant's report "
                "is issued when the grant is created; a fresh grant's at each redemption.",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("GrantTerms")}},
                },
                "responses": {
                    "200": _json(_ref("GrantPreview"), "What the grantee will see (not issued), and the preview token"),
                    **_errors(400, 401, 403, 413),
                },
            }
        },
        "/api/v1/grants": {
            "post": {
                "summary": "Create a grant from a confirmed preview; the code is returned this once",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"preview": {"type": "string"}, "confirm": {"const": True}},
                                "required": ["preview", "confirm"],
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(
                        _ref("CreatedGrant"), "The grant, its authorisation code, link and QR code (PNG, base64)"
                    ),
                    **_errors(400, 401, 403, 409, 413),
                },
            },
            "get": {
                "summary": "The subject's grants",
                "security": _BEARER,
                "responses": {
                    "200": _json(_object({"grants": {"type": "array", "items": _ref("Grant")}}), "Grants"),
                    **_errors(401, 403),
                },
            },
        },
        "/api/v1/grants/{grant_id}/revoke": {
            "post": {
                "summary": "Revoke a grant",
                "security": _BEARER,
                "parameters": [{"name": "grant_id", "in": "path", "required": True, "schema": _STRING}],
                "responses": {
                    "200": _json(_object({"grant": _ref("Grant")}), "The revoked grant"),
                    **_errors(401, 404),
                },
            }
        },
        "/api/v1/grants/{code}/report": {
            "get": {
                "summary": "Redeem an authorisation code: the granted report (one use)",
                "description": "A grant made out to an account needs that account's session (Bearer); one made "
                "out to an organisation, the session of any of its accounts at this gateway. Each call uses the "
                "grant once; a signed-in redeemer's answer names the redemption (redemption_id, and its address in "
                "Content-Location), which gives the same report again without another use.",
                "security": [{}, *_BEARER],
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": _STRING}],
                "responses": {
                    "200": _json(_ref("RedeemedGrant"), "The granted report, and what is left of the grant"),
                    **_errors(400, 401, 403, 404, 429),
                },
            }
        },
        "/api/v1/redemptions/{redemption_id}": {
            "get": {
                "summary": "A redemption again: the report a grant gave, without using the grant",
                "description": "For the redeeming account, or any account of the organisation the grant was made "
                "out to, while the grant is neither revoked nor expired. The report's number also opens it at "
                "GET /api/v1/reports/{report_no} for them.",
                "security": _BEARER,
                "parameters": [{"name": "redemption_id", "in": "path", "required": True, "schema": _STRING}],
                "responses": {
                    "200": _json(
                        _ref("RedeemedGrant"),
                        "The report the redemption gave, and what is left of the grant",
                        **{"Content-Location": _header("This redemption's address")},
                    ),
                    **_errors(401, 403, 404),
                },
            }
        },
        "/api/v1/audit/mine": {
            "get": {
                "summary": "Who accessed the subject's reports, newest first",
                "security": _BEARER,
                "parameters": [
                    {"name": "before", "in": "query", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}},
                ],
                "responses": {"200": _AUDIT, **_errors(400, 401, 403)},
            }
        },
        "/api/v1/audit": {
            "get": {
                "summary": "The whole audit log (administrators)",
                "security": _BEARER,
                "parameters": [
                    {"name": name, "in": "query", "schema": {"type": kind}}
                    for name, kind in (
                        ("subject", "string"),
                        ("actor", "string"),
                        ("before", "integer"),
                        ("limit", "integer"),
                    )
                ],
                "responses": {"200": _AUDIT, **_errors(400, 401, 403)},
            }
        },
        "/api/v1/audit/checkpoint": {
            "get": {
                "summary": "The latest signed checkpoint of the audit log (public), for peer instances to keep",
                "responses": {
                    "200": _json(
                        _object(
                            {
                                "issuer": _STRING,
                                "seq": _INTEGER,
                                "hash": _STRING,
                                "at": _DATE_TIME,
                                "kid": _STRING,
                                "jws": _STRING,
                            }
                        ),
                        "What the checkpoint seals and its compact JWS (typ jjj-audit-checkpoint+jws)",
                    ),
                    **_errors(404),
                },
            }
        },
        "/api/v1/batches": {
            "post": {
                "summary": "Submit a batch check (agency officers): up to 1,000,000 subjects and a purpose",
                "security": _BEARER,
                "parameters": [
                    {"name": "purpose", "in": "query", "schema": {"type": "string"}, "description": "with a CSV body"},
                    {"name": "years", "in": "query", "schema": {"type": "integer"}},
                    {"name": "profile", "in": "query", "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("BatchRequest")},
                        "text/csv": {
                            "schema": {
                                "type": "string",
                                "description": (
                                    "a list: UTF-8 (with or without BOM) or GB18030; the identifiers in the column "
                                    "headed 统一社会信用代码 / 身份证号 (else the first), names in one headed "
                                    "名称 / 企业名称 / 主体名称 / 姓名"
                                ),
                            }
                        },
                        _XLSX: {
                            "schema": {
                                "type": "string",
                                "contentMediaType": _XLSX,
                                "description": "the same list as an XLSX workbook (its first sheet)",
                            }
                        },
                    },
                },
                "responses": {
                    "202": _json(_ref("BatchJob"), "The job, running; poll its Location", Location=_LOCATION),
                    **_errors(400, 401, 403, 413),
                },
            }
        },
        "/api/v1/batches/{job_id}": {
            "get": {
                "summary": "A batch job's progress per region",
                "security": _BEARER,
                "parameters": [_JOB_ID],
                "responses": {"200": _json(_ref("BatchJob"), "Job status"), **_errors(401, 404)},
            }
        },
        "/api/v1/batches/{job_id}/table.csv": {
            "get": {
                "summary": "The check statistics table (协助核查情况统计表), CSV",
                "security": _BEARER,
                "parameters": [_JOB_ID],
                "responses": {
                    "200": {
                        "description": "CSV, UTF-8 with BOM",
                        "content": {"text/csv": {"schema": {"type": "string", "pattern": "^\ufeff"}}},
                    },
                    **_errors(401, 404),
                },
            }
        },
        "/api/v1/batches/{job_id}/table.xlsx": {
            "get": {
                "summary": "The check statistics table, XLSX",
                "security": _BEARER,
                "parameters": [_JOB_ID],
                "responses": {
                    "200": {"description": "XLSX workbook", "content": {_XLSX: _binary(_XLSX)}},
                    **_errors(401, 404),
                },
            }
        },
        "/api/v1/batches/{job_id}/summary": {
            "get": {
                "summary": "The signed summary of a finished job (counts, the table's SHA-256)",
                "security": _BEARER,
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _json(
                        _object(
                            {
                                "summary": _ref("BatchSummary"),
                                "jws": {
                                    "type": "string",
                                    "description": "the summary, signed (typ jjj-batch-summary+jws)",
                                },
                            }
                        ),
                        "The summary, readable and signed",
                    ),
                    "409": _problem(409) | {"description": "The job is still running (problem, RFC 9457)"},
                    **_errors(401, 404),
                },
            }
        },
        "/api/v1/objections": {
            "post": {
                "summary": "File an objection (异议) or a credit repair application (信用修复) against a record "
                "of one of the subject's own reports; it goes to the node that owns the record",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("ObjectionRequest")},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "report_no": {"type": "string"},
                                    "record_id": {"type": "string"},
                                    "kind": {"enum": _CASE_KINDS},
                                    "reason": {"type": "string"},
                                    "attachment": {"type": "string", "format": "binary"},
                                },
                                "required": ["report_no", "record_id", "reason"],
                            }
                        },
                    },
                },
                "responses": {"201": _CREATED_CASE, **_errors(400, 401, 403, 404, 409, 413, 503)},
            },
            "get": {
                "summary": "A subject's cases in every region; for agency officers and admins, one region's cases",
                "security": _BEARER,
                "parameters": [
                    {"name": "region", "in": "query", "schema": {"type": "string"}, "description": "authorities"},
                    {"name": "state", "in": "query", "schema": {"enum": ["open", "closed"]}},
                    {"name": "kind", "in": "query", "schema": {"enum": _CASE_KINDS}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    {"name": "before", "in": "query", "schema": {"type": "string"}, "description": "a case number"},
                ],
                "responses": {
                    "200": _json(
                        {
                            "oneOf": [
                                _object(
                                    {
                                        "objections": {"type": "array", "items": _ref("Case")},
                                        "unavailable": _per_region(
                                            _STRING, description="the regions that did not answer, and why"
                                        ),
                                    },
                                    description="A subject's cases, from every region that answered",
                                ),
                                _object(
                                    {
                                        "region": {"enum": _REGIONS},
                                        "objections": {"type": "array", "items": _ref("Case")},
                                    },
                                    description="One region's cases, for an authority",
                                ),
                            ]
                        },
                        "Cases, newest first",
                    ),
                    **_errors(400, 401, 403, 503),
                },
            },
        },
        "/api/v1/objections/{number}": {
            "get": {
                "summary": "One case (the subject's own, or any for an authority)",
                "security": _BEARER,
                "parameters": [_CASE_NUMBER],
                "responses": {"200": _CASE, **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/api/v1/objections/{number}/attachment": {
            "get": {
                "summary": "The case's attachment (PDF, PNG or JPEG)",
                "security": _BEARER,
                "parameters": [_CASE_NUMBER],
                "responses": {
                    "200": {
                        "description": "The file, as a download (Content-Disposition: attachment)",
                        "content": {kind: _binary(kind) for kind in ("application/pdf", "image/png", "image/jpeg")},
                    },
                    **_errors(400, 401, 403, 404, 503),
                },
            }
        },
        "/api/v1/objections/{number}/resolve": {
            "post": {
                "summary": "Decide an open case (agency officers, admins); every outcome but a refusal stores the "
                "record's next version, which marks earlier reports with the record superseded",
                "security": _BEARER,
                "parameters": [_CASE_NUMBER],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Resolution")}},
                },
                "responses": {"200": _CASE, **_errors(400, 401, 403, 404, 409, 413, 503)},
            }
        },
        "/api/v1/repairs": {
            "post": {
                "summary": "Apply a credit repair to a record directly (agency officers, admins)",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "region": {"type": "string"},
                                    "record_id": {"type": "string"},
                                    "note": {"type": "string", "description": "the repair decision's reference"},
                                },
                                "required": ["region", "record_id", "note"],
                            }
                        }
                    },
                },
                "responses": {"201": _CREATED_CASE, **_errors(400, 401, 403, 404, 409, 413, 503)},
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": _json(
                        _object(
                            {
                                "openapi": {"const": "3.1.0"},
                                "info": {"type": "object", "additionalProperties": True},
                                "paths": {"type": "object", "additionalProperties": True},
                                "components": {"type": "object", "additionalProperties": True},
                            },
                        ),
                        "OpenAPI 3.1",
                    ),
                    **_errors(),
                },
            }
        },
        "/.well-known/jwks.json": {
            "get": {
                "summary": "The gateway's public signing keys",
                "responses": {
                    "200": _json(_object({"keys": {"type": "array", "items": _ref("Jwk")}}), "JWKS (RFC 7517)"),
                    **_errors(),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "responses": {"200": _json(_object({"status": {"const": "ok"}}), "ok"), **_errors()},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {"description": "text exposition", "content": {"text/plain": {"schema": _STRING}}},
                    **_errors(),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": {
            "ObjectionRequest": {
                "type": "object",
                "properties": {
                    "report_no": {"type": "string"},
                    "record_id": {"type": "string"},
                    "kind": {"enum": _CASE_KINDS, "default": "objection"},
                    "reason": {"type": "string", "maxLength": 2000},
                    "attachment": {
                        "type": "object",
                        "properties": {"filename": {"type": "string"}, "content_base64": {"type": "string"}},
                        "description": "a PDF, PNG or JPEG of at most 4 MiB",
                    },
                },
                "required": ["report_no", "record_id", "reason"],
            },
            "Resolution": {
                "type": "object",
                "properties": {
                    "resolution": {"enum": _RESOLUTIONS},
                    "note": {"type": "string", "maxLength": 2000},
                    "correction": {
                        "type": "object",
                        "description": "corrected only: the fields that change (dates as YYYY-MM-DD)",
                        "properties": {
                            k: {"type": "string"}
                            for k in (
                                "category",
                                "content",
                                "decision_no",
                                "decided_on",
                                "publicity_until",
                                "removed_on",
                            )
                        },
                    },
                },
                "required": ["resolution", "note"],
            },
            "Case": _object(
                {
                    "number": {"type": "string", "examples": ["BJ-YY-00000012"]},
                    "region": {"enum": _REGIONS},
                    "region_name": _STRING,
                    "kind": {"enum": _CASE_KINDS},
                    "kind_name": _STRING,
                    "state": {"enum": ["open", "closed"]},
                    "state_name": _STRING,
                    "record_id": _STRING,
                    "record_version": _INTEGER,
                    "subject_id": _STRING,
                    "reason": _STRING,
                    "attachment": _nullable("CaseAttachment"),
                    "filed_by": _STRING,
                    "filed_at": _DATE_TIME,
                    "resolution": {"enum": [*_RESOLUTIONS, None]},
                    "resolution_name": _OPTIONAL_STRING,
                    "resolution_note": _OPTIONAL_STRING,
                    "resolved_by": _OPTIONAL_STRING,
                    "resolved_at": _OPTIONAL_DATE_TIME,
                    "new_version": {"type": ["integer", "null"]},
                    "record": {
                        "anyOf": [_ref("CaseRecord"), {"type": "null"}],
                        "description": "the record's current version",
                    },
                }
            ),
            "CaseAttachment": _object(
                {
                    "filename": _STRING,
                    "content_type": {"enum": ["application/pdf", "image/png", "image/jpeg"]},
                    "size": _INTEGER,
                    "sha256": _STRING,
                }
            ),
            "CaseRecord": _object(
                {
                    "decision_no": _STRING,
                    "authority": _STRING,
                    "decided_on": _DATE,
                    "domain": _STRING,
                    "scope": {"enum": _SCOPES},
                    "category": _STRING,
                    "content": _STRING,
                    "status": {"enum": ["in_force", "repaired", "revoked"]},
                    "version": _INTEGER,
                    "under_objection": _BOOLEAN,
                }
            ),
            "Problem": _object(
                {
                    "type": _STRING,
                    "title": _STRING,
                    "status": _INTEGER,
                    "detail": _STRING,
                    "instance": {"type": "string", "description": "the request path"},
                    "invalid-params": {
                        "type": "array",
                        "items": _object({"name": _STRING, "reason": _STRING}),
                    },
                },
                optional=("instance", "invalid-params"),
            ),
            "Login": {
                "type": "object",
                "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                "required": ["username", "password"],
            },
            "Session": _object({"token": _STRING, "token_type": {"const": "Bearer"}, "expires_in": _INTEGER}),
            "ReportRequest": {
                "type": "object",
                "properties": {
                    "subject": {
                        "type": "string",
                        "description": "unified social credit code or resident ID number; default: your own",
                    },
                    "years": {"enum": [3, 5]},
                    "profile": {"type": "string", "examples": ["tianjin-2023", "national-2025"]},
                    "purpose": {"type": "string", "maxLength": 200},
                },
                "description": "The application date is the day of issue (China Standard Time): it cannot be given.",
            },
            "IssuedReport": _object(_ISSUED),
            "GrantPreview": _object(
                {
                    "preview": {"type": "string", "description": "the token that confirms the grant (POST /grants)"},
                    "verdict": {"enum": _VERDICTS},
                    "report": {
                        **_ref("Report"),
                        "description": "the document as it would be issued now: its report_no and "
                        "verification_code are empty, and it is neither signed nor registered",
                    },
                    "grantee_org": _nullable("Organisation"),
                    "terms": _object(
                        {
                            "purpose": _STRING,
                            "grantee": _OPTIONAL_STRING,
                            "grantee_org": _OPTIONAL_STRING,
                            "days": _INTEGER,
                            "max_uses": _INTEGER,
                            "mode": {"enum": ["fixed", "fresh"]},
                            "years": _INTEGER,
                            "profile": _STRING,
                        }
                    ),
                }
            ),
            "RedeemedGrant": _object(
                {
                    **_ISSUED,
                    "grant": _object({"purpose": _STRING, "uses_left": _INTEGER, "expires_at": _DATE_TIME}),
                    "redemption_id": {
                        "type": ["string", "null"],
                        "description": "reads this report again without using the grant "
                        "(GET /api/v1/redemptions/{redemption_id}); null for an anonymous redeemer",
                    },
                }
            ),
            "Organisation": _object(
                {"code": {"type": "string", "description": "unified social credit code"}, "name": _STRING}
            ),
            "Report": _object(
                {
                    "format": {"const": REPORT_FORMAT},
                    "title": _STRING,
                    "report_no": _STRING,
                    "verification_code": _STRING,
                    "issuer": {"type": "string", "description": "the issuing instance (the JWS iss)"},
                    "issuer_name": {"type": "string", "description": "the issuing organisation people read (签发机构)"},
                    "issuer_contact": {
                        "type": "string",
                        "description": "its operator's contact details (may be empty)",
                    },
                    "issued_at": _DATE_TIME,
                    "profile": _object(
                        {"id": _STRING, "version": _INTEGER, "name": _STRING},
                        optional=("name",),
                        description="the rules the report was made under; name: Chinese name and edition",
                    ),
                    "subject": _ref("ReportSubject"),
                    "window": _object(
                        {
                            "application_date": _DATE,
                            "years": _INTEGER,
                            "start": _DATE,
                            "cutoff": _DATE,
                            "calendar_exact": _BOOLEAN,
                        }
                    ),
                    "regions": {"type": "array", "items": _ref("ReportRegion")},
                    "lines": {"type": "array", "items": _ref("ReportLine")},
                    "verdict": {"enum": _VERDICTS},
                    "notes": {"type": "array", "items": _STRING},
                },
                optional=("issuer_name", "issuer_contact"),
                description="The signed document (what the JWS carries); reports issued before issuer_name, "
                "issuer_contact and profile.name existed lack them",
            ),
            "ReportSubject": _object(
                {
                    "id": _STRING,
                    "kind": {"enum": ["enterprise", "person"]},
                    "name": {
                        "type": "string",
                        "description": "the register's name for the subject, else the name its records carry; "
                        "empty when neither knows it",
                    },
                    "register": {
                        "anyOf": [_ref("Registration"), {"type": "null"}],
                        "description": "the subject's entry in the register of market entities (市场主体登记信息) "
                        "of the region its code belongs to, else of another region that knows it; null when no "
                        "register shows it (register_note says why). Absent from reports issued before registers "
                        "were consulted",
                    },
                    "register_note": {
                        "type": "string",
                        "description": "with a null register: why, in words (not found in the three regions' "
                        "registers, some registers not reachable, or a natural person, whom these registers do "
                        "not cover)",
                    },
                },
                optional=("register", "register_note"),
            ),
            "Registration": _object(
                {
                    "name": _STRING,
                    "legal_representative": {"type": "string", "description": "法定代表人 / 负责人 / 经营者"},
                    "address": {"type": "string", "description": "住所 / 经营场所"},
                    "authority": {"type": "string", "description": "登记机关"},
                    "established_on": _OPTIONAL_DATE,
                    "status": {"type": "string", "description": "登记状态 as the register publishes it"},
                    "region": {"enum": _REGIONS, "description": "the region whose register holds the entry"},
                    "region_name": _STRING,
                }
            ),
            "ReportRegion": _object(
                {
                    "region": {"enum": _REGIONS},
                    "name": _STRING,
                    "status": {"enum": ["answered", "unavailable"]},
                    "catalogue_version": _OPTIONAL_STRING,
                    "data_as_of": _OPTIONAL_DATE_TIME,
                    "reason": _OPTIONAL_STRING,
                    "source": {"enum": ["node", "replica"]},
                    "served_by": {"enum": _REGIONS, "description": "replica only: the region whose node answered"},
                    "served_by_name": _STRING,
                    "replica_as_of": _OPTIONAL_DATE_TIME,
                },
                optional=("served_by", "served_by_name", "replica_as_of"),
            ),
            "ReportLine": _object(
                {
                    "domain": _STRING,
                    "domain_name": _STRING,
                    "scope": {"enum": _SCOPES},
                    "scope_name": _STRING,
                    "cells": {"type": "array", "items": _ref("ReportCell")},
                }
            ),
            "ReportCell": _object(
                {
                    "region": {"enum": _REGIONS},
                    "outcome": {"enum": ["no_record", "records", "not_covered", "unavailable"]},
                    "records": {"type": "array", "items": _RECORD_IN_REPORT},
                    "excluded": {"type": "integer", "description": "records outside the window or the rules"},
                    "reason": _STRING,
                },
                optional=("records", "excluded", "reason"),
            ),
            "BatchRequest": {
                "type": "object",
                "properties": {
                    "purpose": {"type": "string", "maxLength": 200, "examples": ["评优评先", "招标投标资格审查"]},
                    "subjects": {
                        "type": "array",
                        "items": {"type": "string"},
                        "maxItems": 1000000,
                        "description": "one row of the table each, in order: a blank one is a blank row, a repeat is "
                        "marked as such and checked once",
                    },
                    "names": {
                        "type": "array",
                        "items": {"type": "string", "maxLength": 200},
                        "description": "the name the list gives beside each subject (名单所列名称), one per subject",
                    },
                    "years": {"enum": [3, 5]},
                    "profile": {"type": "string"},
                },
                "required": ["purpose", "subjects"],
            },
            "BatchJob": _object(
                {
                    "job_id": _STRING,
                    "purpose": _STRING,
                    "created_by": _STRING,
                    "status": {"enum": ["running", "done", "failed"]},
                    "total": _INTEGER,
                    "progress": _per_region(
                        _object({"chunks_done": _INTEGER, "chunks": _INTEGER, "subjects_done": _INTEGER})
                    ),
                    "created_at": _DATE_TIME,
                    "finished_at": _OPTIONAL_DATE_TIME,
                    "profile": _STRING,
                    "years": _INTEGER,
                }
            ),
            "BatchSummary": _object(
                {
                    "format": {"const": BATCH_SUMMARY_FORMAT},
                    "title": _STRING,
                    "job_id": _STRING,
                    "purpose": _STRING,
                    "requested_by": _STRING,
                    "profile": _STRING,
                    "years": _INTEGER,
                    "created_at": _DATE_TIME,
                    "finished_at": _OPTIONAL_DATE_TIME,
                    "status": {"enum": ["running", "done", "failed"]},
                    "counts": _object(
                        {
                            "subjects": _INTEGER,
                            "rejected": _INTEGER,
                            "with_records": _INTEGER,
                            "clear": _INTEGER,
                            "incomplete": _INTEGER,
                            "duplicates": _INTEGER,
                            "empty": _INTEGER,
                        },
                        description="rows of the list (subjects) and of each kind; the kinds add up to subjects",
                    ),
                    "regions": _per_region(
                        _object({"with_records": _INTEGER, "no_record": _INTEGER, "unavailable": _INTEGER})
                    ),
                    "table_csv_sha256": _STRING,
                    "issuer": _STRING,
                }
            ),
            "GrantTerms": {
                "type": "object",
                "properties": {
                    "purpose": {"type": "string", "maxLength": 200, "examples": ["招标投标", "融资信贷"]},
                    "grantee": {"type": "string", "description": "the account that alone may redeem it"},
                    "grantee_org": {
                        "type": "string",
                        "description": "the unified social credit code of the organisation whose accounts (at this "
                        "gateway) may redeem it; not together with grantee",
                    },
                    "days": {"type": "integer", "minimum": 1, "maximum": 30},
                    "max_uses": {"type": "integer", "minimum": 1, "maximum": 100},
                    "mode": {"enum": ["fixed", "fresh"]},
                    "years": {"enum": [3, 5]},
                    "profile": {"type": "string"},
                },
                "required": ["purpose"],
            },
            "Grant": _object(
                {
                    "grant_id": _STRING,
                    "purpose": _STRING,
                    "grantee": _OPTIONAL_STRING,
                    "grantee_org": _OPTIONAL_STRING,
                    "mode": {"enum": ["fixed", "fresh"]},
                    "report_no": {
                        "type": ["string", "null"],
                        "description": "a fixed grant's report (issued when it was created); null for a fresh grant",
                    },
                    "max_uses": _INTEGER,
                    "uses": _INTEGER,
                    "created_at": _DATE_TIME,
                    "expires_at": _DATE_TIME,
                    "revoked_at": _OPTIONAL_DATE_TIME,
                    "state": {"enum": ["active", "revoked", "expired", "used_up"]},
                }
            ),
            "CreatedGrant": _object(
                {
                    "grant": _ref("Grant"),
                    "code": {"type": "string", "examples": ["SQ-7K3M-9QXR-2D8F-WH4T-A2B4-K"]},
                    "url": {"type": "string", "format": "uri"},
                    "qr_png": {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"},
                    "grantee_org": _nullable("Organisation"),
                    "changed": {
                        "type": "boolean",
                        "description": "the report issued on confirmation says something else than the preview did",
                    },
                }
            ),
            "AuditEntry": _object(
                {
                    "seq": _INTEGER,
                    "at": _DATE_TIME,
                    "actor": _STRING,
                    "role": _STRING,
                    "action": _STRING,
                    "subject": _OPTIONAL_STRING,
                    "purpose": _OPTIONAL_STRING,
                    "outcome": _STRING,
                    "detail": _OPTIONAL_STRING,
                }
            ),
            "Jwk": _object(
                {
                    "kty": {"const": "OKP"},
                    "crv": {"const": "Ed25519"},
                    "x": _STRING,
                    "kid": _STRING,
                    "alg": {"const": "Ed25519"},
                    "use": {"const": "sig"},
                }
            ),
            "Verification": _object(
                {
                    "genuine": _BOOLEAN,
                    "status": {"enum": [*_REPORT_STATUSES, "unknown", "not_genuine"]},
                    "reason": _OPTIONAL_STRING,
                    "summary": _nullable("VerifiedSummary"),
                    "sealed_by": {
                        "type": "string",
                        "description": "a printed report's: the organisation whose PDF signature (PAdES) it carries",
                    },
                },
                optional=("sealed_by",),
            ),
            "VerifiedSummary": _object(
                {
                    "report_no": _STRING,
                    "subject_id": _STRING,
                    "subject_name": _STRING,
                    "subject_kind": {"enum": ["enterprise", "person", ""]},
                    "register": {
                        "anyOf": [_ref("Registration"), {"type": "null"}],
                        "description": "the registration details the report certifies (see ReportSubject)",
                    },
                    "register_note": {
                        "type": "string",
                        "description": "why the report shows no registration; empty when it shows one, or for a "
                        "report issued before registers were consulted",
                    },
                    "profile": {"type": "string", "description": "id@version of the report profile"},
                    "profile_name": {"type": "string", "description": "the profile's Chinese name and edition"},
                    "title": _STRING,
                    "issuer_name": {"type": "string", "description": "the issuing organisation (签发机构)"},
                    "window": _object({"application_date": _DATE, "years": _INTEGER, "start": _DATE, "cutoff": _DATE}),
                    "verdict": {"enum": _VERDICTS},
                    "regions": {
                        "type": "array",
                        "items": _object(
                            {
                                "region": {"enum": _REGIONS},
                                "name": _STRING,
                                "status": {"enum": ["answered", "unavailable"]},
                                "data_as_of": _OPTIONAL_DATE_TIME,
                                "reason": _OPTIONAL_STRING,
                            }
                        ),
                    },
                    "issued_at": _DATE_TIME,
                    "valid_until": {
                        "type": "string",
                        "anyOf": [{"format": "date"}, {"const": ""}],
                        "description": "the last day the report stands in for a certificate (its profile's "
                        "validity); empty when the gateway no longer knows the profile",
                    },
                    "past_validity": _BOOLEAN,
                    "status": {"enum": _REPORT_STATUSES},
                }
            ),
        },
    },
}
