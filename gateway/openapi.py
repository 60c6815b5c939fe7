"""The OpenAPI 3.1 description of the HTTP API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

_PROBLEM = {
    "description": "Problem (RFC 9457)",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
_REPORT = {
    "description": "A signed report",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IssuedReport"}}},
}
_VERIFICATION = {
    "description": "Verification result",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Verification"}}},
}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_CASE = {
    "description": "The case",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Case"}}},
}
_CASE_NUMBER = {
    "name": "number",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^(BJ|TJ|HE)-(YY|XF)-[0-9]+$"},
}

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
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Login"}}},
                },
                "responses": {
                    "200": {
                        "description": "Session",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}},
                    },
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "429": _PROBLEM,
                },
            }
        },
        "/api/v1/logout": {
            "post": {
                "summary": "End this session: its token no longer counts, in any gateway process",
                "security": _BEARER,
                "responses": {"204": {"description": "Logged out"}, "401": _PROBLEM},
            }
        },
        "/api/v1/reports": {
            "post": {
                "summary": "Issue a three-region report for a subject",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReportRequest"}}},
                },
                "responses": {"201": _REPORT, "400": _PROBLEM, "401": _PROBLEM, "403": _PROBLEM},
            }
        },
        "/api/v1/reports/{report_no}": {
            "get": {
                "summary": "A registered report",
                "security": _BEARER,
                "parameters": [{"name": "report_no", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _REPORT, "401": _PROBLEM, "403": _PROBLEM, "404": _PROBLEM},
            }
        },
        "/api/v1/verify/{code}": {
            "get": {
                "summary": "Look a report up by its verification code (public)",
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _VERIFICATION, "400": _PROBLEM, "404": _VERIFICATION},
            }
        },
        "/api/v1/verify": {
            "post": {
                "summary": "Verify a signed report (public)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/plain": {"schema": {"type": "string", "description": "compact JWS"}},
                        "application/json": {
                            "schema": {"type": "object", "properties": {"jws": {"type": "string"}}, "required": ["jws"]}
                        },
                    },
                },
                "responses": {"200": _VERIFICATION, "400": _PROBLEM},
            }
        },
        "/api/v1/grants/preview": {
            "post": {
                "summary": "Preview a grant: the report the grantee will see, and a token to confirm it",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GrantTerms"}}},
                },
                "responses": {"200": _REPORT, "400": _PROBLEM, "401": _PROBLEM, "403": _PROBLEM},
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
                    "201": {
                        "description": "The grant, its authorisation code, link and QR code (PNG, base64)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatedGrant"}}},
                    },
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "412": _PROBLEM,
                },
            },
            "get": {
                "summary": "The subject's grants",
                "security": _BEARER,
                "responses": {"200": {"description": "Grants"}, "401": _PROBLEM, "403": _PROBLEM},
            },
        },
        "/api/v1/grants/{grant_id}/revoke": {
            "post": {
                "summary": "Revoke a grant",
                "security": _BEARER,
                "parameters": [{"name": "grant_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The revoked grant"}, "401": _PROBLEM, "404": _PROBLEM},
            }
        },
        "/api/v1/grants/{code}/report": {
            "get": {
                "summary": "Redeem an authorisation code: the granted report (one use)",
                "description": "A grant naming a grantee needs that account's session (Bearer).",
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _REPORT, "400": _PROBLEM, "403": _PROBLEM, "404": _PROBLEM},
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
                "responses": {"200": {"description": "Audit entries"}, "401": _PROBLEM, "403": _PROBLEM},
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
                "responses": {"200": {"description": "Audit entries"}, "401": _PROBLEM, "403": _PROBLEM},
            }
        },
        "/api/v1/audit/checkpoint": {
            "get": {
                "summary": "The latest signed checkpoint of the audit log (public), for peer instances to keep",
                "responses": {
                    "200": {
                        "description": "What the checkpoint seals and its compact JWS (typ jjj-audit-checkpoint+jws)",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "issuer": {"type": "string"},
                                        "seq": {"type": "integer"},
                                        "hash": {"type": "string"},
                                        "at": {"type": "string", "format": "date-time"},
                                        "kid": {"type": "string"},
                                        "jws": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "404": _PROBLEM,
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
                        "application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}},
                        "text/csv": {"schema": {"type": "string", "description": "identifiers in the first column"}},
                    },
                },
                "responses": {
                    "202": {"description": "The job, running; poll its Location"},
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "413": _PROBLEM,
                },
            }
        },
        "/api/v1/batches/{job_id}": {
            "get": {
                "summary": "A batch job's progress per region",
                "security": _BEARER,
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Job status"}, "401": _PROBLEM, "404": _PROBLEM},
            }
        },
        "/api/v1/batches/{job_id}/table.csv": {
            "get": {
                "summary": "The check statistics table (协助核查情况统计表), CSV",
                "security": _BEARER,
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "CSV, UTF-8 with BOM"}, "401": _PROBLEM, "404": _PROBLEM},
            }
        },
        "/api/v1/batches/{job_id}/table.xlsx": {
            "get": {
                "summary": "The check statistics table, XLSX",
                "security": _BEARER,
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "XLSX workbook"}, "401": _PROBLEM, "404": _PROBLEM},
            }
        },
        "/api/v1/batches/{job_id}/summary": {
            "get": {
                "summary": "The signed summary of a finished job (counts, the table's SHA-256)",
                "security": _BEARER,
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "{summary, jws}"},
                    "401": _PROBLEM,
                    "404": _PROBLEM,
                    "412": _PROBLEM,
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
                        "application/json": {"schema": {"$ref": "#/components/schemas/ObjectionRequest"}},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "report_no": {"type": "string"},
                                    "record_id": {"type": "string"},
                                    "kind": {"enum": ["objection", "credit_repair"]},
                                    "reason": {"type": "string"},
                                    "attachment": {"type": "string", "format": "binary"},
                                },
                                "required": ["report_no", "record_id", "reason"],
                            }
                        },
                    },
                },
                "responses": {
                    "201": _CASE,
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "404": _PROBLEM,
                    "409": _PROBLEM,
                    "413": _PROBLEM,
                    "503": _PROBLEM,
                },
            },
            "get": {
                "summary": "A subject's cases in every region; for agency officers and admins, one region's cases",
                "security": _BEARER,
                "parameters": [
                    {"name": "region", "in": "query", "schema": {"type": "string"}, "description": "authorities"},
                    {"name": "state", "in": "query", "schema": {"enum": ["open", "closed"]}},
                    {"name": "kind", "in": "query", "schema": {"enum": ["objection", "credit_repair"]}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    {"name": "before", "in": "query", "schema": {"type": "string"}, "description": "a case number"},
                ],
                "responses": {
                    "200": {"description": "{objections: [Case], unavailable: {region: reason}}"},
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "503": _PROBLEM,
                },
            },
        },
        "/api/v1/objections/{number}": {
            "get": {
                "summary": "One case (the subject's own, or any for an authority)",
                "security": _BEARER,
                "parameters": [_CASE_NUMBER],
                "responses": {"200": _CASE, "400": _PROBLEM, "401": _PROBLEM, "403": _PROBLEM, "404": _PROBLEM},
            }
        },
        "/api/v1/objections/{number}/attachment": {
            "get": {
                "summary": "The case's attachment (PDF, PNG or JPEG)",
                "security": _BEARER,
                "parameters": [_CASE_NUMBER],
                "responses": {"200": {"description": "The file"}, "401": _PROBLEM, "404": _PROBLEM},
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
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resolution"}}},
                },
                "responses": {
                    "200": _CASE,
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "404": _PROBLEM,
                    "409": _PROBLEM,
                },
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
                "responses": {
                    "201": _CASE,
                    "400": _PROBLEM,
                    "401": _PROBLEM,
                    "403": _PROBLEM,
                    "404": _PROBLEM,
                    "409": _PROBLEM,
                },
            }
        },
        "/.well-known/jwks.json": {
            "get": {"summary": "The gateway's public signing keys", "responses": {"200": {"description": "JWKS"}}}
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition"}}}
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
                    "kind": {"enum": ["objection", "credit_repair"], "default": "objection"},
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
                    "resolution": {"enum": ["upheld", "corrected", "revoked", "repaired", "refused"]},
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
            "Case": {
                "type": "object",
                "properties": {
                    "number": {"type": "string"},
                    "region": {"type": "string"},
                    "kind": {"enum": ["objection", "credit_repair"]},
                    "state": {"enum": ["open", "closed"]},
                    "record_id": {"type": "string"},
                    "record_version": {"type": "integer"},
                    "reason": {"type": "string"},
                    "attachment": {"type": ["object", "null"]},
                    "filed_at": {"type": "string", "format": "date-time"},
                    "resolution": {"type": ["string", "null"]},
                    "resolution_note": {"type": ["string", "null"]},
                    "resolved_at": {"type": ["string", "null"], "format": "date-time"},
                    "new_version": {"type": ["integer", "null"]},
                    "record": {"type": ["object", "null"], "description": "the record's current version"},
                },
            },
            "Problem": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "invalid-params": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
                        },
                    },
                },
            },
            "Login": {
                "type": "object",
                "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                "required": ["username", "password"],
            },
            "Session": {
                "type": "object",
                "properties": {
                    "token": {"type": "string"},
                    "token_type": {"const": "Bearer"},
                    "expires_in": {"type": "integer"},
                },
            },
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
            "IssuedReport": {
                "type": "object",
                "properties": {
                    "report_no": {"type": "string"},
                    "verification_code": {"type": "string"},
                    "verdict": {"enum": ["clean", "has_records", "incomplete"]},
                    "status": {"enum": ["valid", "superseded", "revoked"]},
                    "report": {"type": "object"},
                    "jws": {"type": "string"},
                },
            },
            "BatchRequest": {
                "type": "object",
                "properties": {
                    "purpose": {"type": "string", "maxLength": 200, "examples": ["评优评先", "招标投标资格审查"]},
                    "subjects": {"type": "array", "items": {"type": "string"}, "maxItems": 1000000},
                    "years": {"enum": [3, 5]},
                    "profile": {"type": "string"},
                },
                "required": ["purpose", "subjects"],
            },
            "GrantTerms": {
                "type": "object",
                "properties": {
                    "purpose": {"type": "string", "maxLength": 200, "examples": ["招标投标", "融资信贷"]},
                    "grantee": {"type": "string", "description": "the account that alone may redeem it"},
                    "days": {"type": "integer", "minimum": 1, "maximum": 30},
                    "max_uses": {"type": "integer", "minimum": 1, "maximum": 100},
                    "mode": {"enum": ["fixed", "fresh"]},
                    "years": {"enum": [3, 5]},
                    "profile": {"type": "string"},
                },
                "required": ["purpose"],
            },
            "CreatedGrant": {
                "type": "object",
                "properties": {
                    "grant": {"type": "object"},
                    "code": {"type": "string", "examples": ["SQ-7K3M-9QXR-2D8F-WH4T-A2B4-K"]},
                    "url": {"type": "string", "format": "uri"},
                    "qr_png": {"type": "string", "contentEncoding": "base64"},
                },
            },
            "Verification": {
                "type": "object",
                "properties": {
                    "genuine": {"type": "boolean"},
                    "status": {"enum": ["valid", "superseded", "revoked", "unknown", "not_genuine"]},
                    "reason": {"type": ["string", "null"]},
                    "summary": {"oneOf": [{"$ref": "#/components/schemas/VerifiedSummary"}, {"type": "null"}]},
                },
            },
            "VerifiedSummary": {
                "type": "object",
                "properties": {
                    "report_no": {"type": "string"},
                    "subject_id": {"type": "string"},
                    "subject_name": {"type": "string"},
                    "profile": {"type": "string", "description": "id@version of the report profile"},
                    "title": {"type": "string"},
                    "window": {
                        "type": "object",
                        "properties": {
                            "application_date": {"type": "string", "format": "date"},
                            "years": {"type": "integer"},
                            "start": {"type": "string", "format": "date"},
                            "cutoff": {"type": "string", "format": "date"},
                        },
                    },
                    "verdict": {"enum": ["clean", "has_records", "incomplete"]},
                    "issued_at": {"type": "string", "format": "date-time"},
                    "valid_until": {
                        "type": "string",
                        "format": "date",
                        "description": "the last day the report stands in for a certificate (its profile's validity)",
                    },
                    "past_validity": {"type": "boolean"},
                    "status": {"enum": ["valid", "superseded", "revoked"]},
                },
            },
        },
    },
}
