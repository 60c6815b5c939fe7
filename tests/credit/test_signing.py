"""Signed reports verify with code that is not ours (jwcrypto, openssl) and fail when altered."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto import jwk as jw_jwk
from jwcrypto import jws as jw_jws
from jwcrypto.common import JWException

from credit.document import FORMAT
from credit.signing import Keyring, SigningKey, TokenType, VerificationError, canonical, sign, sign_claims, verify

DOCUMENT = {
    "format": FORMAT,
    "report_no": "JJJ-20251122-7K3M9QXR2D",
    "subject": {"id": "91350100M000100Y43", "name": "天津测试科技有限公司"},
    "verdict": "clean",
    "amount": 12.5,
    "lines": [{"domain": "market_regulation", "cells": [{"region": "tianjin", "outcome": "no_record"}]}],
}


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_payload_is_rfc8785_canonical_json(key: SigningKey) -> None:
    token = sign(DOCUMENT, key)
    header, payload, _ = token.split(".")
    assert _b64d(payload) == canonical(DOCUMENT)
    assert _b64d(payload).startswith(b'{"amount":12.5,"format":')  # sorted keys, no spaces
    assert json.loads(_b64d(header)) == {"alg": "Ed25519", "kid": key.kid, "typ": "jjj-report+jws"}


def test_an_independent_jose_library_verifies_and_rejects_tampering(key: SigningKey) -> None:
    token = sign(DOCUMENT, key)
    published = Keyring([key.private.public_key()]).jwks()["keys"][0]
    checker = jw_jws.JWS()
    checker.deserialize(token)
    checker.verify(jw_jwk.JWK(**published))
    assert json.loads(checker.payload) == DOCUMENT

    header, payload, signature = token.split(".")
    altered = json.loads(_b64d(payload))
    altered["verdict"] = "has_records"
    forged = ".".join([header, base64.urlsafe_b64encode(canonical(altered)).rstrip(b"=").decode(), signature])
    checker = jw_jws.JWS()
    checker.deserialize(forged)
    with pytest.raises(JWException):
        checker.verify(jw_jwk.JWK(**published))


def _openssl_verify(token: str, jwk: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[bytes]:
    # The published key as a PEM: the fixed Ed25519 SubjectPublicKeyInfo prefix and x.
    der = bytes.fromhex("302a300506032b6570032100") + _b64d(jwk["x"])
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der) + b"\n-----END PUBLIC KEY-----\n"
    header, payload, signature = token.split(".")
    (tmp / "key.pem").write_bytes(pem)
    (tmp / "signed").write_bytes(f"{header}.{payload}".encode())
    (tmp / "sig").write_bytes(_b64d(signature))
    return subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "key.pem", "-rawin", "-in", "signed", "-sigfile", "sig"],
        cwd=tmp,
        capture_output=True,
        check=False,
    )


def test_openssl_verifies_and_rejects_any_changed_byte(key: SigningKey, tmp_path: Path) -> None:
    token = sign(DOCUMENT, key)
    published = Keyring([key.private.public_key()]).jwks()["keys"][0]
    good = _openssl_verify(token, published, tmp_path)
    assert good.returncode == 0, good.stderr
    assert b"Signature Verified Successfully" in good.stdout

    header, payload, signature = token.split(".")
    raw = bytearray(_b64d(payload))
    raw[len(raw) // 2] ^= 0x01
    tampered = ".".join([header, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode(), signature])
    bad = _openssl_verify(tampered, published, tmp_path)
    assert bad.returncode != 0


def test_our_verify_accepts_genuine_and_names_each_failure(key: SigningKey) -> None:
    keyring = Keyring([key.private.public_key()])
    token = sign(DOCUMENT, key)
    assert verify(token, keyring) == DOCUMENT

    header, payload, signature = token.split(".")
    cases = {
        "truncated": token[:-10],
        "two parts": f"{header}.{payload}",
        "tampered": ".".join([header, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), signature]),
        "alg none": ".".join(
            [base64.urlsafe_b64encode(b'{"alg":"none","kid":"x"}').rstrip(b"=").decode(), payload, ""]
        ),
        "unknown key": sign(DOCUMENT, SigningKey.generate()),
        "payload swapped": ".".join(
            [header, base64.urlsafe_b64encode(json.dumps(DOCUMENT).encode()).rstrip(b"=").decode(), signature]
        ),
    }
    reasons = {}
    for name, bad in cases.items():
        with pytest.raises(VerificationError) as caught:
            verify(bad, keyring)
        reasons[name] = caught.value.detail
    assert "Ed25519" in reasons["alg none"]
    assert "unknown signing key" in reasons["unknown key"]
    assert "altered" in reasons["tampered"] or "malformed" in reasons["tampered"]


def test_rotation_keeps_old_reports_verifiable() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    keyring = Keyring([old.private.public_key(), new.private.public_key()])
    assert verify(sign(DOCUMENT, old), keyring) == verify(sign(DOCUMENT, new), keyring)
    assert len(keyring.jwks()["keys"]) == 2
    assert Keyring.from_jwks(keyring.jwks()).get(old.kid) is not None


def test_jwks_round_trip_and_bad_documents() -> None:
    key = SigningKey.generate()
    jwks = Keyring([key.private.public_key()]).jwks()
    assert jwks["keys"][0]["kid"] == key.kid
    assert jwks["keys"][0]["kty"] == "OKP" and "d" not in jwks["keys"][0]
    with pytest.raises(VerificationError):
        Keyring.from_jwks({"no": "keys"})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_the_fast_canonical_path_is_byte_equal_to_rfc8785(document: dict[str, object]) -> None:
    assert canonical(document) == rfc8785.dumps(document)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
        st.text(alphabet=st.characters(codec="utf-8")),
        max_size=8,
    )
)
def test_strings_and_keys_of_any_script(document: dict[str, str]) -> None:
    assert canonical(document) == rfc8785.dumps(document)


def test_integers_beyond_the_json_safe_range_are_refused_like_rfc8785() -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical({"n": 2**53})


_SIGNED_ONCE = {"key": SigningKey.generate()}


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_changing_any_byte_makes_an_independent_library_reject(data: st.DataObject) -> None:
    key = _SIGNED_ONCE["key"]
    token = sign(DOCUMENT, key)
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."))
    if token[position] == replacement:
        return
    altered = token[:position] + replacement + token[position + 1 :]
    published = Keyring([key.private.public_key()]).jwks()["keys"][0]
    checker = jw_jws.JWS()
    try:
        checker.deserialize(altered)
        checker.verify(jw_jwk.JWK(**published))
    except (JWException, ValueError, UnicodeDecodeError):
        accepted_elsewhere = False
    else:
        accepted_elsewhere = True
    try:
        verify(altered, Keyring([key.private.public_key()]))
    except VerificationError:
        accepted_here = False
    else:
        accepted_here = True
    # Any alteration of what the parts decode to is rejected by both. An alteration that
    # decodes to the same bytes (unused low bits of a last base64url character) changes
    # the signing input, which RFC 7515 takes as sent: we reject it too, unless it is in
    # the signature itself; a lenient library may accept it.
    if _decoded(altered) != _decoded(token):
        assert not accepted_here and not accepted_elsewhere
    elif accepted_here:
        assert altered.split(".")[:2] == token.split(".")[:2]


def _decoded(token: str) -> tuple[bytes, ...] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return tuple(_b64d(part) for part in parts)
    except ValueError:
        return None


claim_values = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text() | st.lists(st.text(), max_size=3)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.sampled_from([UTC, None])
)


@settings(max_examples=300, deadline=None)
@given(
    claims=st.dictionaries(st.text(max_size=8), claim_values, max_size=8),
    times=st.dictionaries(st.sampled_from(["iat", "exp", "nbf"]), moments | st.integers(0, 2**40)),
    issuer=st.none() | st.text(),
    typ=st.sampled_from(list(TokenType)),
)
def test_claims_are_signed_as_pyjwt_signs_them(
    claims: dict[str, object], times: dict[str, object], issuer: str | None, typ: TokenType
) -> None:
    key = _SIGNED_ONCE["key"]
    claims = {**claims, **times} | ({"iss": issuer} if issuer is not None else {})
    token = sign_claims(claims, key, typ)
    assert token == jwt.encode(claims, key.private, algorithm="Ed25519", headers={"kid": key.kid, "typ": typ.value})


def test_a_claim_pyjwt_refuses_is_refused() -> None:
    key = _SIGNED_ONCE["key"]
    with pytest.raises(TypeError):
        sign_claims({"iss": 5}, key, TokenType.SESSION)
    with pytest.raises(TypeError):
        sign_claims({"sub": object()}, key, TokenType.SESSION)


def test_signed_claims_verify_with_pyjwt_and_jwcrypto() -> None:
    key = _SIGNED_ONCE["key"]
    now = datetime.now(UTC)
    claims = {"iss": "jjj", "sub": "张三", "aud": ["a", "b"], "iat": now, "exp": now + timedelta(minutes=1)}
    token = sign_claims(claims, key, TokenType.ON_BEHALF_OF)
    decoded = jwt.decode(token, key.private.public_key(), algorithms=["Ed25519"], audience="a")
    assert decoded["sub"] == "张三" and decoded["exp"] == int((now + timedelta(minutes=1)).timestamp())
    checker = jw_jws.JWS()
    checker.deserialize(token)
    checker.verify(jw_jwk.JWK(**Keyring([key.private.public_key()]).jwks()["keys"][0]))
    assert json.loads(checker.payload)["sub"] == "张三"
