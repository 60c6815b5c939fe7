"""The API's answers held to its OpenAPI document (``gateway.api.openapi.OPENAPI``).

Every answer the tests get from ``Api.call`` or ``Api.fetch`` (tests/gateway/conftest.py)
under ``/api/``, or from another path the document lists, goes through
:func:`check_answer`. openapi-core (response validation) checks that the document has
the path, the operation and the status, that it lists the answer's media type, that the
body fits that media type's schema and that the required headers are there; members of
an object that its schema does not name are refused (``additionalProperties`` is false
unless the schema says otherwise). On top of that, an answer with a body needs a schema
for its status and media type, and an answer without one needs a status documented
without content. A test that gets an answer the document does not describe fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types.util import json_loads, plain_loads
from openapi_core.templating.media_types.finders import MediaTypeFinder
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.finders import ResponseFinder
from yarl import URL

from gateway.api.openapi import OPENAPI


def _octets(value: bytes, **parameters: str) -> str:
    """A download as JSON Schema sees it: a string (of octets, one character each)."""
    return value.decode("latin-1")


_BINARY = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)


def contract(document: Mapping[str, Any]) -> OpenAPI:
    """The validator of an OpenAPI document, configured as the checks need it."""
    return OpenAPI.from_dict(
        dict(document),
        config=Config(
            extra_media_type_deserializers={
                "application/problem+json": json_loads,
                "text/csv": plain_loads,
                **dict.fromkeys(_BINARY, _octets),
            },
            additional_properties_default_policy="forbid",
        ),
    )


SPEC = contract(OPENAPI)


class ContractBroken(AssertionError):
    """An answer of the API that its OpenAPI document does not describe."""


@dataclass
class SentRequest:
    """What was asked, in the shape of openapi-core's ``Request`` protocol (which may
    write the path's parameters into ``parameters``)."""

    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    content_type: str = ""
    body: bytes | None = None


@dataclass(frozen=True)
class Answer:
    """What came back, in the shape of openapi-core's ``Response`` protocol."""

    status_code: int
    content_type: str
    data: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


def sent(method: str, url: URL | str, headers: Mapping[str, str] | None = None) -> SentRequest:
    url = URL(url)
    request_headers = CIMultiDict(headers or {})
    return SentRequest(
        host_url=f"{url.scheme}://{url.raw_authority}",
        path=url.raw_path,
        method=method.lower(),
        parameters=RequestParameters(query=url.query, header=request_headers),
        content_type=request_headers.get("Content-Type", "").lower(),
    )


def answer(status: int, data: bytes, headers: Mapping[str, str]) -> Answer:
    return Answer(status, CIMultiDict(headers).get("Content-Type", "").lower(), data, headers)


def _documented(spec: OpenAPI, request: SentRequest, response: Answer) -> list[str]:
    """What openapi-core leaves unchecked: a body needs a schema, no body needs no content."""
    operation = APICallPathFinder(spec.spec).find(request.method, request.host_url + request.path).operation
    documented = ResponseFinder(operation / "responses").find(str(response.status_code))
    if not response.data:
        return [] if "content" not in documented else ["the answer has no body, the document gives it one"]
    if "content" not in documented:
        return ["the answer has a body, the document gives it no content"]
    media = MediaTypeFinder(documented / "content").find(response.content_type)
    return [] if "schema" in media.media_type else [f"{media.mime_type} has no schema in the document"]


def check(request: SentRequest, response: Answer, spec: OpenAPI = SPEC) -> None:
    """Raises: ContractBroken: the document does not describe ``response`` to ``request``."""
    errors = list(spec.iter_response_errors(request, response))
    problems = [_named(error) for error in errors]
    problems += [f"  {cause}" for error in errors for cause in _causes(error)]
    if not errors:
        problems = _documented(spec, request, response)
    if problems:
        head = f"{request.method.upper()} {request.path} → {response.status_code} {response.content_type or '-'}"
        body = f"body: {response.data[:600]!r}"
        raise ContractBroken("\n  ".join([f"{head}: the OpenAPI document disagrees", *problems, body]))


def _named(error: Exception, limit: int = 300) -> str:
    """The error in one line of at most ``limit`` characters (a schema error quotes the body)."""
    text = str(error)
    name = type(error).__name__
    text = text if text.startswith(name) else f"{name}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _causes(error: BaseException) -> list[str]:
    """The schema errors behind an openapi-core error (it wraps them twice)."""
    found: list[str] = []
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for schema_error in getattr(current, "schema_errors", ()) or ():
            where = "/".join(str(p) for p in schema_error.absolute_path) or "(body)"
            found.append(f"{where}: {schema_error.message}")
        if current.__cause__ is not None:
            pending.append(current.__cause__)
        if current.__context__ is not None:
            pending.append(current.__context__)
    return found


def check_answer(
    method: str,
    url: URL | str,
    request_headers: Mapping[str, str],
    status: int,
    headers: Mapping[str, str],
    data: bytes,
) -> None:
    """Check one answer of the API: anything under ``/api/``, and the other paths the
    document lists (the portal's pages are not the API's and pass)."""
    path = URL(url).path
    if path.startswith("/api/") or path in OPENAPI["paths"]:
        check(sent(method, url, request_headers), answer(status, data, headers))
