"""Authorisation grants and the audit log, against a real gateway over three real nodes."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import update

from credit.codes import ALPHABET, GRANT_BODY, luhn32_check
from credit.signing import SigningKey
from gateway.access.grant_store import grants
from infra.auditlog import AuditLog, entries
from infra.db import sync_engine
from protos.credit.v1 import gateway_pb2 as gpb
from protos.credit.v1 import gateway_pb2_grpc
from tests.gateway.conftest import Api

TERMS = {"purpose": "融资信贷", "days": 7, "max_uses": 2}


async def _grant(api: Api, token: str, **terms: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    status, preview, _ = await api.call("POST", "/api/v1/grants/preview", token, json={**TERMS, **terms})
    assert status == 200, preview
    status, created, _ = await api.call(
        "POST", "/api/v1/grants", token, json={"preview": preview["preview"], "confirm": True}
    )
    assert status == 201, created
    return preview, created


def _qr_text(png_base64: str) -> str:
    image = Image.open(io.BytesIO(base64.b64decode(png_base64)))
    found = zxingcpp.read_barcodes(image)
    assert found, "no QR code in the image"
    return str(found[0].text)


async def test_grant_lifecycle_preview_matches_redemption_and_limits_hold(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    owner = await api.login("clean-co", "demo-clean-2024")
    bank = await api.login("bank", "demo-bank-2024")
    preview, created = await _grant(api, owner)
    code = created["code"]
    assert code.startswith("SQ-") and created["grant"]["state"] == "active"
    assert _qr_text(created["qr_png"]) == created["url"] and created["url"].endswith(f"/g/{code}")

    # The grantee sees what the subject previewed, in the one report issued on confirmation.
    report_no = created["grant"]["report_no"]
    assert preview["report"]["report_no"] == "" and report_no.startswith("JJJ-")
    for uses_left in (1, 0):
        status, seen, _ = await api.call("GET", f"/api/v1/grants/{code}/report", bank)
        assert status == 200, seen
        assert seen["report_no"] == report_no
        for key in ("lines", "verdict", "subject", "window", "profile"):
            assert seen["report"][key] == preview["report"][key], key
        assert seen["grant"]["uses_left"] == uses_left and seen["grant"]["purpose"] == "融资信贷"
    status, refused, _ = await api.call("GET", f"/api/v1/grants/{code}/report", bank)
    assert status == 403 and "used up" in refused["detail"]

    status, listed, _ = await api.call("GET", "/api/v1/grants", owner)
    assert [g["state"] for g in listed["grants"]] == ["used_up"] and listed["grants"][0]["uses"] == 2
    # Codes are stored only as hashes: nothing the subject lists reveals one.
    assert code not in str(listed)

    # The subject sees who looked, and the refused attempt.
    status, history, _ = await api.call("GET", "/api/v1/audit/mine", owner)
    assert status == 200
    seen_by = [(e["actor"], e["action"], e["outcome"]) for e in history["entries"]]
    assert seen_by[:3] == [
        ("bank", "refused", "refused"),
        ("bank", "grant_redeemed", "ok"),
        ("bank", "grant_redeemed", "ok"),
    ]
    assert ("clean-co", "grant_created", "ok") in seen_by


async def test_named_revoked_expired_guessed_and_malformed_codes_are_refused(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    owner = await api.login("records-co", "demo-records-2024")
    bank = await api.login("bank", "demo-bank-2024")
    other = await api.login("li-hua", "demo-person-2024")
    _, named = await _grant(api, owner, grantee="bank")
    code = named["code"]
    status, body, _ = await api.call("GET", f"/api/v1/grants/{code}/report")
    assert status == 403 and "named grantee" in body["detail"]
    status, body, _ = await api.call("GET", f"/api/v1/grants/{code}/report", other)
    assert status == 403
    assert (await api.call("GET", f"/api/v1/grants/{code}/report", bank))[0] == 200

    # Someone else cannot revoke it; the subject can, and then it is refused as revoked.
    grant_id = named["grant"]["grant_id"]
    assert (await api.call("POST", f"/api/v1/grants/{grant_id}/revoke", other))[0] == 404
    status, revoked, _ = await api.call("POST", f"/api/v1/grants/{grant_id}/revoke", owner)
    assert status == 200 and revoked["grant"]["state"] == "revoked"
    status, body, _ = await api.call("GET", f"/api/v1/grants/{code}/report", bank)
    assert status == 403 and "revoked" in body["detail"]

    # Expired: the clock is moved by editing the row.
    _, lapsed = await _grant(api, owner)
    with running.registry.engine.begin() as conn:
        conn.execute(
            update(grants)
            .where(grants.c.grant_id == lapsed["grant"]["grant_id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    status, body, _ = await api.call("GET", f"/api/v1/grants/{lapsed['code']}/report", bank)
    assert status == 403 and "expired" in body["detail"]

    # A guessed code (well-formed, check character right) finds nothing; typos and a
    # verification code in its place are caught before any lookup.
    body_chars = "".join(ALPHABET[i % 32] for i in range(GRANT_BODY))
    guessed = "SQ" + body_chars + luhn32_check(body_chars)
    assert (await api.call("GET", f"/api/v1/grants/{guessed}/report", bank))[0] == 404
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    status, body, _ = await api.call("GET", f"/api/v1/grants/{typo}/report", bank)
    assert status == 400 and body["invalid-params"][0]["name"] == "code"
    status, body, _ = await api.call("GET", "/api/v1/grants/7K3M-9QXR-2D8F-WH4T-P/report", bank)
    assert status == 400 and "SQ" in body["detail"]


async def test_bad_grant_requests(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    owner = await api.login("clean-co", "demo-clean-2024")
    person = await api.login("li-hua", "demo-person-2024")
    bank = await api.login("bank", "demo-bank-2024")
    for terms, field in (
        ({"days": 31}, "days"),
        ({"days": 0}, "days"),
        ({"max_uses": 0}, "max_uses"),
        ({"purpose": ""}, "purpose"),
        ({"mode": "forever"}, "mode"),
        ({"years": 4}, "years"),
    ):
        status, body, _ = await api.call("POST", "/api/v1/grants/preview", owner, json={**TERMS, **terms})
        assert status == 400, (terms, body)
        assert body["invalid-params"][0]["name"] == field
    # A grant is for one's own subject only.
    status, body, _ = await api.call(
        "POST", "/api/v1/grants/preview", owner, json={**TERMS, "subject": "91110108MA01RXNE2H"}
    )
    assert status == 403 and "own subject" in body["detail"]
    # A third party cannot grant; a preview must be confirmed, genuine and one's own.
    assert (await api.call("POST", "/api/v1/grants/preview", bank, json=TERMS))[0] == 403
    status, preview, _ = await api.call("POST", "/api/v1/grants/preview", owner, json=TERMS)
    assert status == 200
    status, body, _ = await api.call("POST", "/api/v1/grants", owner, json={"preview": preview["preview"]})
    assert status == 400 and body["invalid-params"][0]["name"] == "confirm"
    status, body, _ = await api.call(
        "POST", "/api/v1/grants", person, json={"preview": preview["preview"], "confirm": True}
    )
    assert status == 403
    claims = jwt.decode(preview["preview"], options={"verify_signature": False})
    foreign = SigningKey.generate()
    forged = jwt.encode(claims, foreign.private, algorithm="EdDSA", headers={"kid": foreign.kid})
    status, body, _ = await api.call("POST", "/api/v1/grants", owner, json={"preview": forged, "confirm": True})
    assert status == 400 and body["invalid-params"][0]["name"] == "preview"
    status, listed, _ = await api.call("GET", "/api/v1/grants", owner)
    assert listed["grants"] == []  # nothing was created by any of these


async def test_a_fresh_grant_serves_a_new_report_with_the_previewed_content(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, nodes = gateway
    owner = await api.login("records-co", "demo-records-2024")
    bank = await api.login("bank", "demo-bank-2024")
    preview, created = await _grant(api, owner, mode="fresh", max_uses=1)
    assert created["grant"]["report_no"] is None  # a fresh grant issues its reports when used
    status, seen, _ = await api.call("GET", f"/api/v1/grants/{created['code']}/report", bank)
    assert status == 200
    assert seen["report_no"].startswith("JJJ-") and preview["report"]["report_no"] == ""
    for key in ("lines", "verdict", "subject", "window", "profile"):
        assert seen["report"][key] == preview["report"][key], key
    # The nodes were asked on the bank's behalf, and their own audit says so.
    for handle in nodes.values():
        await handle.node.servicer.settle()  # a node writes its entries behind its answers
        asked = AuditLog(handle.node.store.engine).find(actor="bank")
        assert [e.action for e in asked] == ["node_query"] and "授权查询" in asked[0].purpose


async def test_one_use_left_is_given_once_to_concurrent_redeemers(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    owner = await api.login("clean-co", "demo-clean-2024")
    _, created = await _grant(api, owner, max_uses=1)
    results = await asyncio.gather(*(api.call("GET", f"/api/v1/grants/{created['code']}/report") for _ in range(6)))
    assert sorted(status for status, _, _ in results) == [200, 403, 403, 403, 403, 403]


async def test_grants_over_grpc(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    owner = await api.login("clean-co", "demo-clean-2024")
    bank = await api.login("bank", "demo-bank-2024")
    _, created = await _grant(api, owner, grantee="bank", max_uses=1)
    async with grpc.aio.insecure_channel(running.grpc_address) as channel:
        stub = gateway_pb2_grpc.ReportGatewayStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RedeemGrant(gpb.RedeemGrantRequest(code=created["code"]))
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        redeemed = await stub.RedeemGrant(
            gpb.RedeemGrantRequest(code=created["code"]), metadata=(("authorization", f"Bearer {bank}"),)
        )
        assert redeemed.report.report_no == created["grant"]["report_no"] and redeemed.uses_left == 0
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.RedeemGrant(gpb.RedeemGrantRequest(code="SQ-nonsense"))
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_the_audit_log_records_every_access_and_detects_tampering(gateway, tmp_path) -> None:  # type: ignore[no-untyped-def]
    api, running, nodes = gateway
    owner = await api.login("clean-co", "demo-clean-2024")
    admin = await api.login("admin", "demo-admin-2024")
    status, _, _ = await api.call("POST", "/api/v1/login", json={"username": "clean-co", "password": "wrong-password"})
    assert status == 401
    status, report, _ = await api.call("POST", "/api/v1/reports", owner, json={"years": 3})
    assert status == 201
    assert (await api.call("GET", f"/api/v1/verify/{report['verification_code']}"))[0] == 200
    assert (await api.call("POST", "/api/v1/reports", owner, json={"subject": "91350100M000100Y43"}))[0] == 403

    assert (await api.call("GET", "/api/v1/audit", owner))[0] == 403
    status, everything, _ = await api.call("GET", "/api/v1/audit", admin)
    assert status == 200
    actions = [(e["actor"], e["action"], e["outcome"]) for e in everything["entries"]]
    for expected in (
        ("clean-co", "login_failed", "refused"),
        ("clean-co", "report_issued", "ok"),
        ("public", "verified", "ok"),
        ("clean-co", "refused", "refused"),
    ):
        assert expected in actions, expected
    # The public verification log keeps the report's hash, never who it is about.
    verified = next(e for e in everything["entries"] if e["action"] == "verified")
    assert verified["subject"] is None and "sha256=" in verified["detail"]
    assert report["report"]["subject"]["id"] not in str(verified)

    # Each node kept its own audit of the assertion it served.
    for handle in nodes.values():
        await handle.node.servicer.settle()  # a node writes its entries behind its answers
        node_log = AuditLog(handle.node.store.engine).find(actor="clean-co")
        assert any(e.action == "node_query" and e.subject == report["report"]["subject"]["id"] for e in node_log)

    await running.registry.writes.flush()
    jwks = tmp_path / "jwks.json"
    status, published, _ = await api.call("GET", "/.well-known/jwks.json")
    jwks.write_text(json.dumps(published), encoding="utf-8")
    url = running.settings.db_url
    assert (await running.service.audit.seal()) is not None
    checked = _audit_verify(url, jwks)
    assert checked.returncode == 0 and "INTACT" in checked.stdout, checked.stderr

    engine = sync_engine(url)
    with engine.begin() as conn:
        conn.execute(update(entries).where(entries.c.seq == 3).values(actor="nobody"))
    engine.dispose()
    checked = _audit_verify(url, jwks)
    assert checked.returncode == 1 and "BROKEN at entry 3" in checked.stderr


def _audit_verify(url: str, jwks: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jjj", "audit", "verify", "--db", url, "--jwks", str(jwks)],
        capture_output=True,
        text=True,
        timeout=60,
    )
