"""A report means what it says: the application date is the day of issue, and a verifier
sees what the report covers and whether it is still within its validity period."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from credit.clock import beijing_text
from nodes.seed import DEMO_SUBJECTS
from protos.credit.v1 import gateway_pb2 as gpb
from protos.credit.v1 import gateway_pb2_grpc
from tests.gateway.conftest import TODAY, issue_on

SUBJECTS = {demo.key: demo.id for demo in DEMO_SUBJECTS}


@pytest.mark.parametrize("chosen", ["2021-06-01", "2199-01-01", TODAY.isoformat(), ""])
async def test_no_caller_chooses_the_application_date(gateway: Any, chosen: str) -> None:
    """The attack: records-co asked for a window before its penalties and got `clean`."""
    api, running, _ = gateway
    issue_on(running, TODAY)
    token = await api.login("records-co", "demo-records-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={"application_date": chosen})
    assert status == 400, body
    assert "application_date" in json.dumps(body, ensure_ascii=False)
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={})
    assert status == 201
    assert body["verdict"] == "has_records"
    assert body["report"]["window"]["application_date"] == TODAY.isoformat()


async def test_the_application_date_is_the_day_of_issue_in_china(gateway: Any) -> None:
    api, running, _ = gateway
    assert running.service is not None
    # 17:30 UTC on the 15th is 01:30 on the 16th in Beijing.
    running.service.clock = lambda: datetime(2025, 6, 15, 17, 30, tzinfo=UTC)
    token = await api.login("clean-co", "demo-clean-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={})
    assert status == 201
    window = body["report"]["window"]
    assert window["application_date"] == "2025-06-16"
    assert window["start"] < window["cutoff"] < "2025-06-16"


async def test_the_grpc_api_refuses_a_chosen_date(gateway: Any) -> None:
    _, running, _ = gateway
    issue_on(running, TODAY)
    async with grpc.aio.insecure_channel(running.grpc_address) as channel:
        stub = gateway_pb2_grpc.ReportGatewayStub(channel)
        session = await stub.Login(gpb.LoginRequest(username="records-co", password="demo-records-2024"))
        auth = (("authorization", f"Bearer {session.token}"),)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.IssueReport(gpb.IssueReportRequest(application_date="2021-06-01"), metadata=auth)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "application_date" in (caught.value.details() or "")


async def test_verification_shows_what_the_report_covers_and_its_validity(gateway: Any) -> None:
    api, running, _ = gateway
    assert running.service is not None
    issue_on(running, TODAY)
    token = await api.login("records-co", "demo-records-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={})
    assert status == 201
    report = body["report"]

    status, by_code, _ = await api.call("GET", f"/api/v1/verify/{body['verification_code']}")
    assert status == 200 and by_code["genuine"]
    summary = by_code["summary"]
    assert summary["subject_id"] == SUBJECTS["records"]
    assert summary["subject_name"] == report["subject"]["name"]
    assert summary["window"] == {k: report["window"][k] for k in ("application_date", "years", "start", "cutoff")}
    assert summary["profile"] == "tianjin-2023@1"
    assert summary["verdict"] == "has_records"
    assert summary["valid_until"] == (TODAY + timedelta(days=30)).isoformat()
    assert summary["past_validity"] is False

    status, by_jws, _ = await api.call("POST", "/api/v1/verify", json={"jws": body["jws"]})
    assert status == 200 and by_jws["summary"]["window"] == summary["window"]

    # Forty days on, the same report is still genuine but no longer current.
    issue_on(running, TODAY + timedelta(days=40))
    status, later, _ = await api.call("GET", f"/api/v1/verify/{body['verification_code']}")
    assert later["genuine"] and later["summary"]["past_validity"] is True

    status, page, _ = await api.call("GET", f"/verify?code={body['verification_code']}")
    assert status == 200
    # Pages print days and times in Beijing time, in the Chinese date format.
    assert beijing_text(report["window"]["start"]) in page and beijing_text(report["window"]["cutoff"]) in page
    assert "已超过有效期" in page and "有效期至" in page


def test_jjj_verify_prints_the_window_and_validity(tmp_path: Path) -> None:
    from credit.document import FORMAT
    from credit.signing import SigningKey, public_jwk, sign

    key = SigningKey.generate()
    issued = datetime.now(UTC) - timedelta(days=90)
    document = {
        "format": FORMAT,
        "report_no": "JJJ-1",
        "issuer": "jjj-gateway",
        "issued_at": issued.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "profile": {"id": "tianjin-2023", "version": 1},
        "subject": {"id": SUBJECTS["clean"], "kind": "enterprise", "name": "天津某某有限公司"},
        "window": {"application_date": "2025-06-16", "years": 3, "start": "2022-06-06", "cutoff": "2025-06-05"},
        "verdict": "clean",
    }
    (tmp_path / "r.jws").write_text(sign(document, key), encoding="utf-8")
    jwks = {"keys": [public_jwk(key.private.public_key())]}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "jjj", "verify", str(tmp_path / "r.jws"), "--jwks", str(tmp_path / "jwks.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "window 2022-06-06 to 2025-06-05" in done.stdout and "天津某某有限公司" in done.stdout
    assert "PAST ITS VALIDITY" in done.stdout
