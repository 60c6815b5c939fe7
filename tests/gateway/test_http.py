"""The gateway over HTTP against three real nodes: one login, one signed three-region report."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from jwcrypto import jwk as jw_jwk
from jwcrypto import jws as jw_jws

from credit.regions import Region
from credit.signing import SigningKey
from gateway.access.keys import KeyStore
from gateway.api.http import SERVICE, SESSIONS
from nodes.seed import DEMO_SUBJECTS
from tests.gateway.conftest import TODAY, issue_on

SUBJECTS = {demo.key: demo.id for demo in DEMO_SUBJECTS}


def b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_login_once_get_a_report_and_verify_it_anywhere(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    issue_on(running, TODAY)
    token = await api.login("records-co", "demo-records-2024")
    status, body, reply = await api.call("POST", "/api/v1/reports", token, json={"years": 3, "profile": "tianjin-2023"})
    assert status == 201, body
    assert reply.headers["Location"] == f"/api/v1/reports/{body['report_no']}"
    report = body["report"]
    assert report["subject"]["id"] == SUBJECTS["records"]
    assert body["verdict"] == "has_records"
    assert {r["region"]: r["status"] for r in report["regions"]} == {r.value: "answered" for r in Region}
    assert all(r["catalogue_version"] for r in report["regions"])
    assert all(r["data_as_of"] for r in report["regions"] if r["region"] != "hebei")  # Hebei holds no demo data

    # An independent JOSE library verifies it with the published key.
    status, jwks, _ = await api.call("GET", "/.well-known/jwks.json")
    checker = jw_jws.JWS()
    checker.deserialize(body["jws"])
    checker.verify(jw_jwk.JWK(**jwks["keys"][0]))
    assert json.loads(checker.payload) == report

    # Public verification: by the JWS and by the code.
    status, verdict, _ = await api.call("POST", "/api/v1/verify", data=body["jws"])
    assert status == 200 and verdict["genuine"] and verdict["status"] == "valid"
    status, by_code, _ = await api.call("GET", f"/api/v1/verify/{body['verification_code'].lower()}")
    assert status == 200 and by_code["summary"]["report_no"] == body["report_no"]

    status, again, _ = await api.call("GET", f"/api/v1/reports/{body['report_no']}", token)
    assert status == 200 and again["jws"] == body["jws"]


async def test_a_clean_subject_is_clean_and_a_stopped_node_makes_it_incomplete(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, nodes = gateway
    issue_on(running, TODAY)
    token = await api.login("clean-co", "demo-clean-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={})
    assert status == 201 and body["verdict"] == "clean"

    await nodes[Region.HEBEI].node.stop(0)
    status, body, _ = await api.call("POST", "/api/v1/reports", token, json={})
    assert status == 201
    assert body["verdict"] == "incomplete"
    hebei = next(r for r in body["report"]["regions"] if r["region"] == "hebei")
    assert hebei["status"] == "unavailable" and hebei["reason"]
    cells = [c for line in body["report"]["lines"] for c in line["cells"] if c["region"] == "hebei"]
    assert not any(c["outcome"] == "no_record" for c in cells)


async def test_someone_elses_report_is_refused(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    token = await api.login("clean-co", "demo-clean-2024")
    status, body, reply = await api.call("POST", "/api/v1/reports", token, json={"subject": SUBJECTS["records"]})
    assert status == 403 and reply.content_type == "application/problem+json"
    assert "own subject" in body["detail"]
    bank = await api.login("bank", "demo-bank-2024")
    status, body, _ = await api.call("POST", "/api/v1/reports", bank, json={"subject": SUBJECTS["clean"]})
    assert status == 403 and "authorisation" in body["detail"]
    owner = await api.login("records-co", "demo-records-2024")
    _, issued, _ = await api.call("POST", "/api/v1/reports", owner, json={})
    status, _, _ = await api.call("GET", f"/api/v1/reports/{issued['report_no']}", token)
    assert status == 403


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"subject": "91120116MA05JBXQ07"}, 400, "subject"),
        ({"profile": "shanghai-2020"}, 400, "profile"),
        ({"years": 4}, 400, "years"),
        ({"years": "three"}, 400, "years"),
        ({"application_date": "2025-02-30"}, 400, "application_date"),
        ({"application_date": "2021-06-01"}, 400, "application_date"),
    ],
)
async def test_bad_report_requests_are_problems(gateway, payload: dict[str, Any], status: int, field: str) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    token = await api.login("admin", "demo-admin-2024")
    payload = {"subject": SUBJECTS["clean"], **payload}
    got, body, reply = await api.call("POST", "/api/v1/reports", token, json=payload)
    assert got == status and reply.content_type == "application/problem+json"
    assert body["status"] == status and body["detail"]
    if "invalid-params" in body:
        assert body["invalid-params"][0]["name"] == field


async def test_bad_bodies_tokens_and_reports(gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    status, body, reply = await api.call(
        "POST", "/api/v1/login", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and reply.content_type == "application/problem+json"
    status, _, reply = await api.call("POST", "/api/v1/reports", json={})
    assert status == 401 and "Bearer" in reply.headers["WWW-Authenticate"]

    # A token signed by a key this gateway does not trust, an expired one, alg none.
    stranger = SigningKey.generate()
    now = datetime.now(UTC)
    claims = {
        "iss": "x",
        "sub": "admin",
        "aud": "jjj-gateway",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "role": "admin",
    }
    forged = jwt.encode(claims, stranger.private, algorithm="EdDSA", headers={"kid": stranger.kid})
    expired_claims = {**claims, "iat": now - timedelta(hours=2), "exp": now - timedelta(hours=1)}
    own = KeyStore(Path(running.settings.keys_dir)).current()
    expired = jwt.encode(expired_claims, own.private, algorithm="EdDSA", headers={"kid": own.kid})
    unsigned = ".".join(
        [
            base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode(),
            base64.urlsafe_b64encode(json.dumps({"sub": "admin", "role": "admin"}).encode()).rstrip(b"=").decode(),
            "",
        ]
    )
    for token, needle in ((forged, "unknown key"), (expired, "expired"), (unsigned, "not accepted")):
        status, body, _ = await api.call("POST", "/api/v1/reports", token, json={"subject": SUBJECTS["clean"]})
        assert status == 401 and needle in body["detail"], body

    # Tampered, truncated and foreign reports are not genuine; bogus codes are refused.
    admin = await api.login("admin", "demo-admin-2024")
    _, issued, _ = await api.call("POST", "/api/v1/reports", admin, json={"subject": SUBJECTS["clean"]})
    header, payload, signature = issued["jws"].split(".")
    doc = json.loads(b64d(payload))
    doc["verdict"] = "clean" if doc["verdict"] != "clean" else "has_records"
    import rfc8785

    tampered = ".".join([header, base64.urlsafe_b64encode(rfc8785.dumps(doc)).rstrip(b"=").decode(), signature])
    for bad in (tampered, issued["jws"][:-20], json.dumps({"jws": "a.b"})):
        ctype = "application/json" if bad.startswith("{") else "text/plain"
        status, body, _ = await api.call("POST", "/api/v1/verify", data=bad, headers={"Content-Type": ctype})
        assert status == 200 and body["genuine"] is False and body["reason"]
    status, body, reply = await api.call("GET", "/api/v1/verify/0000-0000-0000-0000-1")
    assert status in (400, 404)
    status, body, _ = await api.call("GET", "/api/v1/verify/SHORT")
    assert status == 400 and "17" in body["detail"]


async def test_login_is_throttled(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    for _ in range(5):
        status, _body, _ = await api.call("POST", "/api/v1/login", json={"username": "bank", "password": "wrong"})
        assert status == 401
    status, _body, reply = await api.call(
        "POST", "/api/v1/login", json={"username": "bank", "password": "demo-bank-2024"}
    )
    assert status == 429 and int(reply.headers["Retry-After"]) > 0
    status, _, _ = await api.call("POST", "/api/v1/login", json={"username": "nobody", "password": "x"})
    assert status == 401


async def test_the_grpc_front_door(gateway) -> None:  # type: ignore[no-untyped-def]
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from protos.credit.v1 import gateway_pb2 as gpb
    from protos.credit.v1 import gateway_pb2_grpc

    _, running, _ = gateway
    async with grpc.aio.insecure_channel(running.grpc_address) as channel:
        stub = gateway_pb2_grpc.ReportGatewayStub(channel)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        session = await stub.Login(gpb.LoginRequest(username="li-hua", password="demo-person-2024"))
        auth = (("authorization", f"Bearer {session.token}"),)
        issue_on(running, TODAY)
        issued = await stub.IssueReport(gpb.IssueReportRequest(years=5), metadata=auth)
        assert issued.verdict == "has_records" and json.loads(issued.report_json)["window"]["years"] == 5
        checked = await stub.VerifyReport(gpb.VerifyReportRequest(jws=issued.jws))
        assert checked.genuine and checked.status == "valid"
        by_code = await stub.VerifyCode(gpb.VerifyCodeRequest(code=issued.verification_code))
        assert json.loads(by_code.summary_json)["report_no"] == issued.report_no
        again = await stub.GetReport(gpb.GetReportRequest(report_no=issued.report_no), metadata=auth)
        assert again.jws == issued.jws

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.IssueReport(gpb.IssueReportRequest(), metadata=None)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.IssueReport(gpb.IssueReportRequest(subject_id=SUBJECTS["clean"]), metadata=auth)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.IssueReport(gpb.IssueReportRequest(years=4), metadata=auth)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "3 or 5" in caught.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.VerifyCode(gpb.VerifyCodeRequest(code="nope"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_health_metrics_openapi(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    assert (await api.call("GET", "/healthz"))[0] == 200
    status, spec, _ = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1") and "/api/v1/reports" in spec["paths"]
    # Every route the gateway serves is described, with its methods.
    for route in running.runner.app.router.routes():
        path = route.resource.canonical
        is_api = path.startswith("/api/") or path in ("/.well-known/jwks.json", "/healthz", "/metrics")
        if is_api and route.method != "HEAD" and path != "/api/v1/openapi.json":
            assert route.method.lower() in spec["paths"].get(path, {}), (route.method, path)
    await api.call("GET", "/nope")
    status, text, _ = await api.call("GET", "/metrics")
    assert "jjj_gateway_http_requests_total" in text


async def test_a_key_rotation_is_picked_up_without_a_restart(gateway) -> None:  # type: ignore[no-untyped-def]
    from gateway.server import _watch_keys

    api, running, _ = gateway
    admin = await api.login("admin", "demo-admin-2024")
    _, before, _ = await api.call("POST", "/api/v1/reports", admin, json={"subject": SUBJECTS["clean"]})
    store = KeyStore(Path(running.settings.keys_dir))
    new = store.rotate()
    service = running.runner.app[SERVICE]
    watch = asyncio.create_task(_watch_keys(store, service, running.runner.app[SESSIONS], every=0.05))
    for _ in range(100):
        if service.signing_key.kid == new.kid:
            break
        await asyncio.sleep(0.05)
    watch.cancel()
    _, jwks, _ = await api.call("GET", "/.well-known/jwks.json")
    assert {k["kid"] for k in jwks["keys"]} >= {new.kid, json.loads(b64d(before["jws"].split(".")[0]))["kid"]}
    _, after, _ = await api.call("POST", "/api/v1/reports", admin, json={"subject": SUBJECTS["clean"]})
    assert json.loads(b64d(after["jws"].split(".")[0]))["kid"] == new.kid
    for issued in (before, after):
        _status, result, _ = await api.call("POST", "/api/v1/verify", data=issued["jws"])
        assert result["genuine"], result
    # The old session, signed by the old key, still works.
    assert (await api.call("GET", f"/api/v1/reports/{before['report_no']}", admin))[0] == 200


async def test_superseded_and_revoked_reports_say_so(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    token = await api.login("clean-co", "demo-clean-2024")
    _, issued, _ = await api.call("POST", "/api/v1/reports", token, json={})
    for status in ("superseded", "revoked"):
        await running.registry.set_status(issued["report_no"], status)
        _, by_code, _ = await api.call("GET", f"/api/v1/verify/{issued['verification_code']}")
        assert by_code["status"] == status and by_code["summary"]["status"] == status
        _, by_jws, _ = await api.call("POST", "/api/v1/verify", data=issued["jws"])
        assert by_jws["genuine"] and by_jws["status"] == status


async def test_one_address_cannot_try_many_accounts(gateway) -> None:  # type: ignore[no-untyped-def]
    api, _, _ = gateway
    for i in range(20):
        status, _body, _ = await api.call("POST", "/api/v1/login", json={"username": f"user{i}", "password": "guess"})
        assert status == 401
    status, body, reply = await api.call(
        "POST", "/api/v1/login", json={"username": "admin", "password": "demo-admin-2024"}
    )
    assert status == 429 and "from here" in body["detail"] and int(reply.headers["Retry-After"]) > 0


def test_the_address_throttle_forgets_after_its_window(tmp_path: Path) -> None:
    from gateway.registry import Registry

    registry = Registry.open(f"sqlite:///{tmp_path / 'g.db'}")
    window = timedelta(seconds=60)
    start = datetime(2025, 6, 16, tzinfo=UTC)

    async def run() -> None:
        for _ in range(3):
            taken, _ = await registry.take_attempt("address:10.0.0.1", now=start, window=window, limit=3)
            assert taken is not None
        refused, wait = await registry.take_attempt("address:10.0.0.1", now=start, window=window, limit=3)
        assert refused is None and 0 < wait <= 61
        other, _ = await registry.take_attempt("address:10.0.0.2", now=start, window=window, limit=3)
        assert other is not None
        later, _ = await registry.take_attempt(
            "address:10.0.0.1", now=start + timedelta(seconds=61), window=window, limit=3
        )
        assert later is not None

    try:
        asyncio.run(run())
    finally:
        registry.close()
