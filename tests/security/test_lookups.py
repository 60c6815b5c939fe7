"""Public verification-code lookups are limited per address, and refusals are audited."""

from __future__ import annotations

from typing import Any

import pytest

from credit.codes import new_verification_code
from credit.errors import TooManyAttempts
from gateway.reports.service import LOOKUPS_PER_MINUTE


async def test_lookups_are_limited_per_address_and_refusals_audited(gateway: Any) -> None:
    api, running, _ = gateway
    assert running.service is not None
    code = new_verification_code()  # well formed, registered nowhere
    statuses = []
    for _ in range(LOOKUPS_PER_MINUTE + 3):
        status, _, _ = await api.call("GET", f"/api/v1/verify/{code}")
        statuses.append(status)
    assert statuses[:LOOKUPS_PER_MINUTE] == [404] * LOOKUPS_PER_MINUTE
    assert statuses[LOOKUPS_PER_MINUTE:] == [429] * 3
    await running.registry.writes.flush()
    refused = [e for e in running.service.audit.find(actor="public", limit=500) if "code refused" in e.detail]
    assert len(refused) == 3 and "too many lookups" in refused[0].detail


async def test_the_limit_is_a_setting(tmp_path: Any) -> None:
    from gateway.reports.service import ReportService

    class Nothing:
        async def record(self, event: Any) -> None:
            pass

    # Only the limit matters here: the lookup is refused before the registry is asked.
    service = ReportService(
        fanout=None, registry=None, signing_key=None, keyring=None, issuer="t", audit=Nothing(),  # type: ignore[arg-type]
        lookups_per_minute=2,
    )  # fmt: skip
    code = new_verification_code()
    for _ in range(2):
        assert service.lookups.take("192.0.2.1")
    with pytest.raises(TooManyAttempts):
        await service.verify_code(code, address="192.0.2.1")
    assert service.lookups.take("192.0.2.2")  # another address has its own count


async def test_a_malformed_code_is_refused_and_audited(gateway: Any) -> None:
    api, running, _ = gateway
    assert running.service is not None
    status, body, _ = await api.call("GET", "/api/v1/verify/not-a-code")
    assert status == 400, body
    await running.registry.writes.flush()
    refused = [e for e in running.service.audit.find(actor="public", limit=50) if "code refused" in e.detail]
    assert len(refused) == 1


async def test_grant_codes_are_limited_per_address_and_refusals_audited(gateway: Any) -> None:
    from credit.codes import new_grant_code
    from gateway.access.grants import CODE_LOOKUPS_PER_MINUTE

    api, running, _ = gateway
    assert running.service is not None
    statuses = []
    for _ in range(CODE_LOOKUPS_PER_MINUTE + 2):
        status, _, _ = await api.call("GET", f"/api/v1/grants/{new_grant_code()}/report")
        statuses.append(status)
    assert statuses[:CODE_LOOKUPS_PER_MINUTE] == [404] * CODE_LOOKUPS_PER_MINUTE
    assert statuses[CODE_LOOKUPS_PER_MINUTE:] == [429] * 2
    await running.registry.writes.flush()
    details = [e.detail for e in running.service.audit.find(limit=500) if e.action == "refused"]
    assert sum("grant redemption" in d for d in details) == CODE_LOOKUPS_PER_MINUTE + 2


async def test_a_malformed_grant_code_is_refused_with_an_audit_entry(gateway: Any) -> None:
    api, running, _ = gateway
    assert running.service is not None
    status, _, _ = await api.call("GET", "/api/v1/grants/not-a-code/report")
    assert status == 400
    await running.registry.writes.flush()
    details = [e.detail for e in running.service.audit.find(limit=50) if e.action == "refused"]
    assert any("grant redemption" in d for d in details)
