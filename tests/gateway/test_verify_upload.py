"""A report handed in as it comes — the printed PDF, the JWS, JSON holding it — is checked
by one reader (gateway/reports/verify.py) for the API, the portal and ``jjj verify``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from credit.signing import Keyring, VerificationError
from gateway.reports.pdf import render
from gateway.reports.verify import read_upload, signed_document, verify_address
from tests.gateway.conftest import TODAY, issue_on
from tests.gateway.sealing import ORGANISATION, federation


async def _issued(api, running):  # type: ignore[no-untyped-def]
    issue_on(running, TODAY)
    token = await api.login("records-co", "demo-records-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={"years": 3})
    assert status == 201, body
    url = verify_address(running.url, body["verification_code"])
    pdf = await asyncio.to_thread(render, body["report"], body["jws"], verify_url=url, seal=federation().seal)
    return body, pdf


async def test_a_bank_posts_the_printed_report_to_the_api(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    body, pdf = await _issued(api, running)
    status, verdict, _ = await api.call("POST", "/api/v1/verify", data=pdf, headers={"Content-Type": "application/pdf"})
    assert status == 200 and verdict["genuine"] and verdict["status"] == "valid"
    assert verdict["summary"]["report_no"] == body["report_no"]
    assert verdict["sealed_by"] == verdict["summary"]["issuer_name"] == ORGANISATION

    middle = len(pdf) // 2  # one bit changed (the security tests tamper with PDFs in earnest)
    changed = pdf[:middle] + bytes([pdf[middle] ^ 0x01]) + pdf[middle + 1 :]
    status, verdict, _ = await api.call(
        "POST", "/api/v1/verify", data=changed, headers={"Content-Type": "application/pdf"}
    )
    assert status == 200 and not verdict["genuine"] and verdict["status"] == "not_genuine"
    assert "sealed_by" not in verdict


async def test_every_form_reads_back_to_the_same_document(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    body, pdf = await _issued(api, running)
    keyring: Keyring = running.service.keyring
    trust = federation().trust
    for form in (pdf, body["jws"].encode(), json.dumps({"jws": body["jws"]}).encode()):
        assert signed_document(form, keyring, trust=trust) == body["report"]
    assert read_upload(pdf, keyring, trust=trust).sealed_by == ORGANISATION
    with pytest.raises(VerificationError, match="CA"):
        signed_document(pdf, keyring, trust=None)  # no CA, no PDF verified
    assert read_upload(json.dumps(body["report"]).encode(), keyring, trust=trust).bare == body["report"]
    with pytest.raises(VerificationError, match="registry"):
        signed_document(json.dumps(body["report"]).encode(), keyring, trust=trust)
    for junk in (b"\xff\xfe", b"{not json", b"[1, 2]", b"a.b.c"):
        with pytest.raises(VerificationError):
            signed_document(junk, keyring, trust=trust)
    # The portal's bare-document path: genuine only when exactly what was signed.
    assert (await running.service.verify_upload(json.dumps(body["report"]).encode())).genuine
    tampered = {**body["report"], "verdict": "clean"}
    assert not (await running.service.verify_upload(json.dumps(tampered).encode())).genuine


async def test_jjj_verify_reads_json_holding_the_report(gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    body, _pdf = await _issued(api, running)
    (tmp_path / "jwks.json").write_text(json.dumps(running.service.keyring.jwks()), encoding="utf-8")
    (tmp_path / "report.json").write_text(json.dumps({"jws": body["jws"]}), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "jjj", "verify", str(tmp_path / "report.json"), "--jwks", str(tmp_path / "jwks.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"GENUINE: report {body['report_no']}" in done.stdout
