"""Every kind of token the gateway signs is typed (RFC 8725 explicit typing) and signed
``Ed25519`` (RFC 9864), and no kind is accepted as another; reports signed before typing
still verify; a named grant is for a user at one issuer."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from jwcrypto import jwk as jw_jwk
from jwcrypto import jws as jw_jws

from credit.audit import GENESIS, Action, Checkpoint, Event, chain, seal, verify_chain
from credit.document import FORMAT
from credit.errors import Unauthenticated
from credit.regions import Region
from credit.signing import (
    BATCH_SUMMARY_FORMAT,
    Keyring,
    SigningKey,
    TokenType,
    VerificationError,
    canonical,
    sign,
    verify,
)
from federation.assertions import METADATA_KEY, AssertionVerifier, on_behalf_of
from gateway.access.auth import Sessions
from gateway.access.grants import grantee_name, grantee_of
from gateway.access.keys import KeyStore
from gateway.api.http import SESSIONS
from gateway.registry import Account
from nodes.seed import DEMO_SUBJECTS
from tests.gateway.conftest import Api

KEY = SigningKey.generate()
RING = Keyring([KEY.private.public_key()])
SUBJECT = "91120116MA05JQ1X4C"
REPORT = {
    "format": FORMAT,
    "report_no": "JJJ-20250616-ABCDEFGHJK",
    "issuer": "gw",
    "subject": {"id": SUBJECT, "kind": "enterprise", "name": "天津测试科技有限公司"},
    "verdict": "clean",
}
SUMMARY = {"format": BATCH_SUMMARY_FORMAT, "job_id": "b_1", "counts": {"subjects": 1}, "issuer": "gw"}
SUBJECTS = {demo.key: demo.id for demo in DEMO_SUBJECTS}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _sessions() -> Sessions:
    return Sessions(issuer="gw", signing_key=KEY, keyring=RING, lifetime=timedelta(minutes=30))


def _old_style(payload: bytes, header: dict[str, Any]) -> str:
    # Signed the way tokens were before typing: alg EdDSA, typ JOSE (documents) or JWT.
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}"
    return f"{signing_input}.{_b64(KEY.private.sign(signing_input.encode()))}"


def _tokens() -> dict[TokenType, str]:
    """One token of each kind, made the way the gateway makes them (grant previews, which
    need a running gateway, are in the gateway tests below)."""
    entry = chain(GENESIS, 1, datetime.now(UTC), Event("clean-co", "enterprise", Action.LOGIN))
    account = Account("clean-co", "x", "enterprise", SUBJECT, "清洁公司")
    return {
        TokenType.REPORT: sign(REPORT, KEY),
        TokenType.BATCH_SUMMARY: sign(SUMMARY, KEY, typ=TokenType.BATCH_SUMMARY),
        TokenType.AUDIT_CHECKPOINT: seal(entry, KEY).jws,
        TokenType.SESSION: _sessions().issue(account)[0],
        TokenType.ON_BEHALF_OF: on_behalf_of(
            KEY, issuer="gw", user="clean-co", role="enterprise", subject=SUBJECT, purpose="招标投标"
        ),
    }


def test_every_kind_carries_its_type_and_the_ed25519_algorithm() -> None:
    for kind, token in _tokens().items():
        assert _header(token) == {"alg": "Ed25519", "kid": KEY.kid, "typ": kind.value}, kind
    assert RING.jwks()["keys"][0]["alg"] == "Ed25519"


def test_an_independent_jose_library_verifies_every_kind() -> None:
    published = jw_jwk.JWK(**RING.jwks()["keys"][0])
    for kind, token in _tokens().items():
        checker = jw_jws.JWS()
        checker.deserialize(token)
        checker.verify(published)
        assert checker.jose_header["typ"] == kind.value


@pytest.mark.parametrize("kind", [k for k in TokenType if k not in (TokenType.REPORT, TokenType.GRANT_PREVIEW)])
def test_no_other_kind_verifies_as_a_report(kind: TokenType) -> None:
    with pytest.raises(VerificationError, match="not a credit report"):
        verify(_tokens()[kind], RING)


def test_summaries_and_checkpoints_verify_only_as_themselves() -> None:
    tokens = _tokens()
    assert verify(tokens[TokenType.BATCH_SUMMARY], RING, typ=TokenType.BATCH_SUMMARY) == SUMMARY
    assert verify(tokens[TokenType.AUDIT_CHECKPOINT], RING, typ=TokenType.AUDIT_CHECKPOINT)["seq"] == 1
    for token, kind in (
        (tokens[TokenType.REPORT], TokenType.BATCH_SUMMARY),
        (tokens[TokenType.AUDIT_CHECKPOINT], TokenType.BATCH_SUMMARY),
        (tokens[TokenType.BATCH_SUMMARY], TokenType.AUDIT_CHECKPOINT),
        (tokens[TokenType.SESSION], TokenType.AUDIT_CHECKPOINT),
    ):
        with pytest.raises(VerificationError, match="not a"):
            verify(token, RING, typ=kind)
    # A document whose header says report but whose payload is not one is not a report.
    with pytest.raises(VerificationError, match="the signed payload is not a credit report"):
        verify(sign(SUMMARY, KEY), RING)


@pytest.mark.parametrize("kind", [k for k in TokenType if k not in (TokenType.SESSION, TokenType.GRANT_PREVIEW)])
def test_no_other_kind_is_a_session(kind: TokenType) -> None:
    with pytest.raises(Unauthenticated, match="not a session token"):
        _sessions().verify(_tokens()[kind])


@pytest.mark.parametrize("kind", [k for k in TokenType if k not in (TokenType.ON_BEHALF_OF, TokenType.GRANT_PREVIEW)])
def test_no_other_kind_is_an_on_behalf_of_assertion(kind: TokenType, tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps(RING.jwks()), encoding="utf-8")
    node = AssertionVerifier(tmp_path / "jwks.json", region=Region.TIANJIN)
    assert node.verify(((METADATA_KEY, _tokens()[TokenType.ON_BEHALF_OF]),), subject=SUBJECT).user == "clean-co"
    with pytest.raises(Unauthenticated, match="not an on-behalf-of assertion"):
        node.verify(((METADATA_KEY, _tokens()[kind]),), subject=SUBJECT)


def test_a_report_signed_before_typing_still_verifies() -> None:
    for header in ({"alg": "EdDSA", "kid": KEY.kid, "typ": "JOSE"}, {"alg": "EdDSA", "kid": KEY.kid}):
        old = _old_style(canonical(REPORT), header)
        assert verify(old, RING) == REPORT
        checker = jw_jws.JWS()
        checker.deserialize(old)
        checker.verify(jw_jwk.JWK(**RING.jwks()["keys"][0]))  # the key now published as Ed25519
    # The old form is recognised by its payload: an old summary is a summary, not a report.
    old_summary = _old_style(canonical(SUMMARY), {"alg": "EdDSA", "kid": KEY.kid, "typ": "JOSE"})
    assert verify(old_summary, RING, typ=TokenType.BATCH_SUMMARY) == SUMMARY
    with pytest.raises(VerificationError, match="not a credit report"):
        verify(old_summary, RING)
    # An old session (typ JWT) is no report either.
    old_session = _old_style(b'{"sub":"bank","aud":"jjj-gateway"}', {"alg": "EdDSA", "kid": KEY.kid, "typ": "JWT"})
    with pytest.raises(VerificationError, match="not a credit report"):
        verify(old_session, RING)


def test_an_audit_checkpoint_sealed_before_typing_still_verifies() -> None:
    entry = chain(GENESIS, 1, datetime.now(UTC), Event("clean-co", "enterprise", Action.LOGIN))
    sealed = {"seq": 1, "hash": entry.hash, "at": "2025-06-16T02:00:00Z"}
    old = _old_style(canonical(sealed), {"alg": "EdDSA", "kid": KEY.kid, "typ": "JOSE"})
    report = verify_chain([entry], [Checkpoint(1, entry.hash, datetime.now(UTC), old)], RING)
    assert report.intact and report.checkpoints == 1


def test_the_type_and_the_algorithm_go_together() -> None:
    # A typed token is signed Ed25519; the old name goes only with the old, untyped form.
    typed_eddsa = _old_style(canonical(REPORT), {"alg": "EdDSA", "kid": KEY.kid, "typ": "jjj-report+jws"})
    untyped_ed25519 = _old_style(canonical(REPORT), {"alg": "Ed25519", "kid": KEY.kid, "typ": "JOSE"})
    for token in (typed_eddsa, untyped_ed25519):
        with pytest.raises(VerificationError, match="does not go with"):
            verify(token, RING)


def test_a_session_of_the_old_form_is_honoured_during_the_upgrade() -> None:
    now = datetime.now(UTC)
    claims = {"iss": "gw", "sub": "bank", "aud": "jjj-gateway", "iat": now, "exp": now + timedelta(minutes=5)}
    old = jwt.encode(
        {**claims, "jti": "j", "role": "third_party"}, KEY.private, algorithm="EdDSA", headers={"kid": KEY.kid}
    )
    assert _header(old)["typ"] == "JWT"
    assert _sessions().verify(old).username == "bank"


def _jjj_verify(token: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "jwks.json").write_text(json.dumps(RING.jwks()), encoding="utf-8")
    (tmp_path / "token.jws").write_text(token, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "jjj", "verify", str(tmp_path / "token.jws"), "--jwks", str(tmp_path / "jwks.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_jjj_verify_calls_only_a_report_genuine(tmp_path: Path) -> None:
    tokens = _tokens()
    for kind in (TokenType.SESSION, TokenType.BATCH_SUMMARY, TokenType.AUDIT_CHECKPOINT):
        refused = _jjj_verify(tokens[kind], tmp_path)
        assert refused.returncode == 1 and "NOT GENUINE" in refused.stderr, kind
        assert "not a credit report" in refused.stderr, kind
    old = _old_style(canonical(REPORT), {"alg": "EdDSA", "kid": KEY.kid, "typ": "JOSE"})
    for token in (tokens[TokenType.REPORT], old):
        genuine = _jjj_verify(token, tmp_path)
        assert genuine.returncode == 0 and "GENUINE: report JJJ-20250616-ABCDEFGHJK" in genuine.stdout, genuine.stderr


async def _summary_jws(api: Api) -> str:
    officer = await api.login("agency", "demo-agency-2024")
    status, job, _ = await api.call(
        "POST", "/api/v1/batches", officer, json={"purpose": "评优评先资格审查", "subjects": [SUBJECTS["clean"]]}
    )
    assert status == 202, job
    for _ in range(600):
        status, body, _ = await api.call("GET", f"/api/v1/batches/{job['job_id']}", officer)
        if body["status"] == "done":
            break
        await asyncio.sleep(0.1)
    status, summary, _ = await api.call("GET", f"/api/v1/batches/{job['job_id']}/summary", officer)
    assert status == 200, summary
    return str(summary["jws"])


async def test_the_gateway_takes_no_kind_for_another(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    owner = await api.login("clean-co", "demo-clean-2024")
    status, issued, _ = await api.call("POST", "/api/v1/reports", owner, json={})
    assert status == 201
    status, preview, _ = await api.call(
        "POST", "/api/v1/grants/preview", owner, json={"purpose": "融资信贷", "days": 7, "max_uses": 1}
    )
    assert status == 200
    summary = await _summary_jws(api)
    expected = {
        issued["jws"]: "jjj-report+jws",
        owner: "jjj-session+jwt",
        preview["preview"]: "jjj-grant-preview+jwt",
        summary: "jjj-batch-summary+jws",
    }
    for token, typ in expected.items():
        assert {k: _header(token)[k] for k in ("alg", "typ")} == {"alg": "Ed25519", "typ": typ}
    status, jwks, _ = await api.call("GET", "/.well-known/jwks.json")
    assert {key["alg"] for key in jwks["keys"]} == {"Ed25519"}

    # Public verification calls only a report genuine.
    status, verdict, _ = await api.call("POST", "/api/v1/verify", data=issued["jws"])
    assert status == 200 and verdict["genuine"] and verdict["status"] == "valid"
    for token in (owner, preview["preview"], summary):
        status, verdict, _ = await api.call("POST", "/api/v1/verify", data=token)
        assert status == 200 and not verdict["genuine"] and verdict["status"] == "not_genuine", verdict
        assert "not a credit report" in verdict["reason"]

    # Only a session opens a session (a whole report is too long for a header line: a
    # small one signed with the gateway's key stands in for it).
    small_report = sign(REPORT, KeyStore(Path(running.settings.keys_dir)).current())
    for token in (small_report, preview["preview"], summary):
        status, body, _ = await api.call("GET", "/api/v1/grants", token)
        assert status == 401 and "not a session token" in body["detail"], body


async def test_a_named_grant_is_for_a_user_at_one_issuer(gateway) -> None:  # type: ignore[no-untyped-def]
    api, running, _ = gateway
    home = running.settings.issuer
    # A trusted peer instance with its own account called "bank".
    peer_key = SigningKey.generate()
    running.runner.app[SESSIONS].peers["jjj-gateway-tianjin"] = Keyring([peer_key.private.public_key()])
    peer = Sessions(
        issuer="jjj-gateway-tianjin",
        signing_key=peer_key,
        keyring=Keyring([peer_key.private.public_key()]),
        lifetime=timedelta(minutes=30),
    )
    peer_bank = peer.issue(Account("bank", "x", "third_party", None, "天津的银行"))[0]
    bank = await api.login("bank", "demo-bank-2024")
    owner = await api.login("clean-co", "demo-clean-2024")

    async def grant(grantee: str) -> dict[str, Any]:
        terms = {"purpose": "融资信贷", "days": 7, "max_uses": 2, "grantee": grantee}
        status, preview, _ = await api.call("POST", "/api/v1/grants/preview", owner, json=terms)
        assert status == 200, preview
        status, created, _ = await api.call(
            "POST", "/api/v1/grants", owner, json={"preview": preview["preview"], "confirm": True}
        )
        assert status == 201, created
        return dict(created)

    async def redeem(created: dict[str, Any], token: str) -> tuple[int, Any]:
        status, body, _ = await api.call("GET", f"/api/v1/grants/{created['code']}/report", token)
        return status, body

    here = await grant("bank")
    status, body = await redeem(here, peer_bank)
    assert status == 403 and "named grantee" in body["detail"]  # the same name at another instance
    assert (await redeem(here, bank))[0] == 200

    there = await grant("bank@jjj-gateway-tianjin")
    assert there["grant"]["grantee"] == "bank@jjj-gateway-tianjin"
    assert (await redeem(there, bank))[0] == 403
    assert (await redeem(there, peer_bank))[0] == 200

    # This instance's own issuer, spelt out, is the bare name.
    spelt = await grant(f"bank@{home}")
    assert spelt["grant"]["grantee"] == "bank"
    assert (await redeem(spelt, peer_bank))[0] == 403
    assert (await redeem(spelt, bank))[0] == 200

    status, body, _ = await api.call(
        "POST", "/api/v1/grants/preview", owner, json={"purpose": "融资信贷", "grantee": "bank@"}
    )
    assert status == 400 and body["invalid-params"][0]["name"] == "grantee"


def test_a_grantee_is_a_user_at_an_issuer() -> None:
    assert grantee_of("bank", "home") == ("bank", "home")
    assert grantee_of("bank@peer", "home") == ("bank", "peer")
    assert grantee_of("ops@bank@home", "home") == ("ops@bank", "home")  # split at the last @
    assert grantee_name("ops@bank", "home", "home") == "ops@bank@home"
    assert grantee_name("bank", "home", "home") == "bank"
    assert grantee_name("bank", "peer", "home") == "bank@peer"
