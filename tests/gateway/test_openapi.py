"""The OpenAPI document is valid OpenAPI 3.1, complete in what it promises, and the check
that holds every API answer of the tests to it (tests/gateway/contract.py) refuses what
the document does not describe."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from gateway.api.openapi import OPENAPI
from tests.gateway.conftest import Api
from tests.gateway.contract import ContractBroken, answer, check, check_answer, contract, sent

BASE = "http://127.0.0.1:8080"
SESSION = {"token": "eyJ.x.y", "token_type": "Bearer", "expires_in": 3600}
PROBLEM = {"type": "about:blank", "title": "Unauthenticated", "status": 401, "detail": "log in first"}
JSON = "application/json; charset=utf-8"
PROBLEM_JSON = "application/problem+json; charset=utf-8"
CHALLENGE = 'Bearer realm="jjj"'


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in OPENAPI["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(OPENAPI, cls=OpenAPIV31SpecValidator)


@pytest.mark.parametrize(("path", "method", "operation"), _operations(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_answer_of_every_operation_is_described(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    assert "default" not in responses, "a catch-all response would let an undocumented status through"
    assert "500" in responses, "any operation may answer 500"
    if {"bearer": []} in operation.get("security", []):
        assert "401" in responses
    for status, response in responses.items():
        for media_type, content in response.get("content", {}).items():
            assert "schema" in content, (status, media_type)
        if int(status) >= 400 and not (path == "/api/v1/verify/{code}" and status == "404"):
            assert list(response["content"]) == ["application/problem+json"], status


def test_a_described_answer_passes() -> None:
    login = sent("POST", f"{BASE}/api/v1/login")
    check(login, answer(200, json.dumps(SESSION).encode(), {"Content-Type": JSON}))
    check(
        login, answer(401, json.dumps(PROBLEM).encode(), {"Content-Type": PROBLEM_JSON, "WWW-Authenticate": CHALLENGE})
    )
    check(sent("POST", f"{BASE}/api/v1/logout"), answer(204, b"", {}))
    # A page of the portal is not the API's: nothing to check.
    check_answer("GET", f"{BASE}/verify", {}, 200, {"Content-Type": "text/html"}, b"<html></html>")


@pytest.mark.parametrize(
    ("method", "path", "status", "headers", "body", "why"),
    [
        (
            "POST",
            "/api/v1/login",
            200,
            {"Content-Type": JSON},
            {**SESSION, "token_type": "Basic"},
            "'Bearer' was expected",
        ),
        ("POST", "/api/v1/login", 200, {"Content-Type": JSON}, {"token_type": "Bearer"}, "'token' is a required"),
        ("POST", "/api/v1/login", 200, {"Content-Type": JSON}, {**SESSION, "refresh": "r"}, "'refresh' was unexpected"),
        ("POST", "/api/v1/login", 200, {"Content-Type": JSON}, {**SESSION, "expires_in": "1h"}, "is not of type"),
        ("POST", "/api/v1/login", 418, {"Content-Type": PROBLEM_JSON}, PROBLEM, "Unknown response http status: 418"),
        ("POST", "/api/v1/login", 401, {"Content-Type": "text/html"}, "<p>no</p>", "mimetype not found: text/html"),
        ("POST", "/api/v1/login", 401, {"Content-Type": PROBLEM_JSON}, PROBLEM, "WWW-Authenticate"),
        ("POST", "/api/v1/reports", 201, {"Content-Type": JSON}, {}, "Location"),
        ("POST", "/api/v1/logout", 204, {"Content-Type": JSON}, {}, "the document gives it no content"),
        ("GET", "/healthz", 200, {"Content-Type": JSON}, None, "MissingData"),
        ("GET", "/api/v1/nope", 404, {"Content-Type": PROBLEM_JSON}, PROBLEM, "Path not found"),
        ("DELETE", "/api/v1/grants", 405, {"Content-Type": PROBLEM_JSON}, PROBLEM, "Operation delete not found"),
    ],
)
def test_the_check_refuses_what_the_document_does_not_describe(
    method: str, path: str, status: int, headers: dict[str, str], body: Any, why: str
) -> None:
    data = b"" if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
    with pytest.raises(ContractBroken, match=why):
        check_answer(method, BASE + path, {}, status, headers, data)


def test_a_status_documented_without_a_schema_is_refused() -> None:
    """openapi-core passes any body where the document gives no schema; the check does not."""
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/a": {
                "get": {
                    "responses": {
                        "200": {"description": "something"},
                        "201": {"description": "JSON of some kind", "content": {"application/json": {}}},
                    }
                }
            }
        },
    }
    spec = contract(document)
    request = sent("GET", f"{BASE}/a")
    assert list(spec.iter_response_errors(request, answer(200, b"{}", {"Content-Type": JSON}))) == []
    with pytest.raises(ContractBroken, match="the document gives it no content"):
        check(request, answer(200, b"{}", {"Content-Type": JSON}), spec)
    with pytest.raises(ContractBroken, match="application/json has no schema"):
        check(request, answer(201, b"{}", {"Content-Type": JSON}), spec)


async def test_the_api_helper_checks_every_answer(gateway: Any) -> None:
    api: Api = gateway[0]
    status, served, _ = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200 and served == json.loads(json.dumps(OPENAPI))
    # The gateway answers an unknown API path with a problem; the document has no such path.
    with pytest.raises(ContractBroken, match="Path not found"):
        await api.call("GET", "/api/v1/nope")
    with pytest.raises(ContractBroken, match="Path not found"):
        await api.fetch("GET", "/api/v1/nope")
