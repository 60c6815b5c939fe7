"""A node refuses a query without a valid on-behalf-of assertion from the gateway: forged,
long-lived, replayed or over-broad assertions included."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credit.errors import PermissionDenied, Unauthenticated
from credit.regions import Region
from credit.signing import ACCEPTED_ALGORITHMS, Keyring, SigningKey, TokenType, VerificationError, token_header
from federation.assertions import (
    LEEWAY,
    MAX_LIFETIME,
    METADATA_KEY,
    AssertionVerifier,
    audience,
    on_behalf_of,
)
from protos.credit.v1 import node_pb2 as pb
from tests.conftest import NodeHandle, StartNode
from tests.nodes.builders import ACME, OTHER

GATEWAY = SigningKey.generate()


@pytest.fixture
async def guarded(tmp_path: Path, start_node_at: StartNode) -> NodeHandle:
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(Keyring([GATEWAY.private.public_key()]).jwks()), encoding="utf-8")
    return await start_node_at(Region.TIANJIN, f"sqlite:///{tmp_path}/n.db", gateway_jwks=str(jwks))


def assertion(
    subject: str = ACME,
    *,
    key: SigningKey = GATEWAY,
    regions: tuple[Region, ...] = tuple(Region),
    role: str = "enterprise",
) -> str:
    return on_behalf_of(
        key, issuer="gw", user="clean-co", role=role, subject=subject, purpose="招标投标", regions=regions
    )


async def ask(node: NodeHandle, token: str | None, subject: str = ACME) -> pb.SubjectResult:
    metadata = ((METADATA_KEY, token),) if token else None
    return await node.stub.QuerySubject(pb.QuerySubjectRequest(subject_id=subject), metadata=metadata)


async def test_a_valid_assertion_is_served(guarded: NodeHandle) -> None:
    result = await ask(guarded, assertion())
    assert result.subject_id == ACME
    batch = await guarded.stub.CheckSubjects(
        pb.CheckSubjectsRequest(subject_ids=[ACME, OTHER]), metadata=((METADATA_KEY, assertion("*", role="agency")),)
    )
    assert len(batch.checks) == 2


def expired_token() -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": "gw", "sub": "x", "aud": ["jjj-node:tianjin"], "iat": now - timedelta(minutes=5),
        "exp": now - timedelta(minutes=4), "jti": "j", "subject": ACME,
    }  # fmt: skip
    return jwt.encode(claims, GATEWAY.private, algorithm="EdDSA", headers={"kid": GATEWAY.kid})


@pytest.mark.parametrize(
    ("make_token", "code", "needle"),
    [
        (lambda: None, grpc.StatusCode.UNAUTHENTICATED, "no on-behalf-of assertion"),
        (lambda: "not-a-jwt", grpc.StatusCode.UNAUTHENTICATED, "malformed"),
        (lambda: assertion(key=SigningKey.generate()), grpc.StatusCode.UNAUTHENTICATED, "does not trust"),
        (expired_token, grpc.StatusCode.UNAUTHENTICATED, "expired"),
        (lambda: assertion(OTHER), grpc.StatusCode.PERMISSION_DENIED, "another subject"),
        (lambda: assertion(regions=(Region.BEIJING,)), grpc.StatusCode.PERMISSION_DENIED, "not for tianjin"),
        (lambda: assertion("*"), grpc.StatusCode.PERMISSION_DENIED, "another subject"),
    ],
)
async def test_queries_without_a_valid_assertion_are_refused(
    guarded: NodeHandle, make_token: Callable[[], str | None], code: grpc.StatusCode, needle: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(guarded, make_token())
    assert caught.value.code() == code
    assert needle in caught.value.details()


async def test_a_batch_needs_a_batch_assertion(guarded: NodeHandle) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await guarded.stub.CheckSubjects(
            pb.CheckSubjectsRequest(subject_ids=[ACME]), metadata=((METADATA_KEY, assertion()),)
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_node_without_gateway_keys_refuses_to_start(tmp_path: Path, start_node_at: StartNode) -> None:
    from credit.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        await start_node_at(Region.HEBEI, f"sqlite:///{tmp_path}/h.db", allow_unasserted=False)
    assert "--gateway-jwks" in caught.value.detail


def _signed(claims: dict[str, object]) -> str:
    return jwt.encode(claims, GATEWAY.private, algorithm="EdDSA", headers={"kid": GATEWAY.kid})


async def test_a_long_lived_or_future_assertion_is_refused(guarded: NodeHandle) -> None:
    now = datetime.now(UTC)
    base = {"iss": "gw", "sub": "clean-co", "aud": "jjj-node:tianjin", "jti": "x", "role": "enterprise",
            "subject": ACME, "purpose": "p"}  # fmt: skip
    long_lived = _signed({**base, "iat": now, "exp": now + timedelta(days=365)})
    future = _signed({**base, "iat": now + timedelta(minutes=10), "exp": now + timedelta(minutes=11)})
    for token, needle in ((long_lived, "at most 120 s"), (future, "not yet valid")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ask(guarded, token)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED and needle in (caught.value.details() or "")


async def test_a_subject_role_cannot_assert_a_batch(guarded: NodeHandle) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await guarded.stub.CheckSubjects(
            pb.CheckSubjectsRequest(subject_ids=[ACME]), metadata=((METADATA_KEY, assertion("*")),)
        )
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED and "agency or admin" in (
        caught.value.details() or ""
    )


async def test_an_assertion_is_good_for_one_call(guarded: NodeHandle) -> None:
    token = assertion()
    await ask(guarded, token)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(guarded, token)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED and "used before" in (caught.value.details() or "")


def _reference(verifier: AssertionVerifier, token: str, subject: str = ACME) -> str:
    """What the verifier decided before it checked assertions itself (PyJWT), as the
    name of the error it raised, or "ok"."""
    try:
        header = token_header(token, TokenType.ON_BEHALF_OF, legacy=True)
        key = verifier._keyring.get(str(header.get("kid", "")))
        if key is None:
            return "Unauthenticated"
        claims = jwt.decode(
            token,
            key,
            algorithms=ACCEPTED_ALGORITHMS,
            audience=audience(Region.TIANJIN),
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
        )
    except jwt.exceptions.InvalidAudienceError:
        return "PermissionDenied"
    except (jwt.PyJWTError, VerificationError):
        return "Unauthenticated"
    if not isinstance(claims["iat"], int | float) or not isinstance(claims["exp"], int | float):
        return "Unauthenticated"
    if claims["exp"] - claims["iat"] > MAX_LIFETIME:
        return "Unauthenticated"
    return "ok" if claims.get("subject") == subject else "PermissionDenied"


def _tampered(token: str, part: int, change: Callable[[bytes], bytes]) -> str:
    pieces = token.split(".")
    raw = base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4))
    pieces[part] = base64.urlsafe_b64encode(change(raw)).rstrip(b"=").decode()
    return ".".join(pieces)


def _crafted() -> dict[str, str]:
    now = int(time.time())
    good = {"iss": "gw", "sub": "u", "aud": ["jjj-node:tianjin"], "iat": now, "exp": now + 60, "jti": "",
            "role": "enterprise", "subject": ACME, "purpose": "p"}  # fmt: skip
    typed = {"kid": GATEWAY.kid, "typ": TokenType.ON_BEHALF_OF.value}

    def raw(header: dict[str, object], payload: bytes) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        signing_input = f"{b64(json.dumps({'alg': 'Ed25519', **header}).encode())}.{b64(payload)}"
        return f"{signing_input}.{b64(GATEWAY.private.sign(signing_input.encode()))}"

    def signed(claims: dict[str, object], headers: dict[str, object] = typed) -> str:
        return raw(headers, json.dumps(claims).encode())

    cases: dict[str, str] = {
        "valid": signed(good),
        "legacy form": signed(good, {"alg": "EdDSA", "kid": GATEWAY.kid, "typ": "JWT"}),
        "legacy name, typed": signed(good, {**typed, "alg": "EdDSA"}),
        "untyped": signed(good, {"kid": GATEWAY.kid}),
        "by PyJWT": jwt.encode(good, GATEWAY.private, algorithm="Ed25519", headers=typed),
        "aud as a string": signed({**good, "aud": "jjj-node:tianjin"}),
        "aud elsewhere": signed({**good, "aud": ["jjj-node:beijing"]}),
        "aud with a number": signed({**good, "aud": ["jjj-node:tianjin", 7]}),
        "aud a number": signed({**good, "aud": 7}),
        "expired": signed({**good, "iat": now - 200, "exp": now - 100}),
        "expired within leeway": signed({**good, "iat": now - 100, "exp": now - 10}),
        "issued in the future": signed({**good, "iat": now + 600, "exp": now + 660}),
        "issued within leeway": signed({**good, "iat": now + 10, "exp": now + 60}),
        "not before the future": signed({**good, "nbf": now + 600}),
        "iat as text": signed({**good, "iat": str(now)}),
        "exp as text": signed({**good, "exp": str(now + 60)}),
        "iat true": signed({**good, "iat": True}),
        "lives too long": signed({**good, "exp": now + 3600}),
        "sub a number": signed({**good, "sub": 5}),
        "jti a number": signed({**good, "jti": 5}),
        "another subject": signed({**good, "subject": OTHER}),
        "claims a list": raw(typed, b"[1,2]"),
        "claims not JSON": raw(typed, b"{nope"),
        "crit header": raw({**typed, "crit": ["exp"], "exp": 1}, json.dumps(good).encode()),
        "kid a number": raw({**typed, "kid": 5}, json.dumps(good).encode()),
        "another key": jwt.encode(good, SigningKey.generate().private, algorithm="Ed25519", headers=typed),
        "none": jwt.encode(good, None, algorithm="none", headers=typed),
        "HS256": jwt.encode(good, "secret-of-at-least-32-bytes-long!!", algorithm="HS256", headers=typed),
        "two parts": ".".join(signed(good).split(".")[:2]),
        "padded": signed(good) + "==",
        "not base64": signed(good).replace(".", ".*", 1),
    }
    for name in ("exp", "iat", "sub", "aud", "iss", "jti"):
        cases[f"no {name}"] = signed({k: v for k, v in good.items() if k != name})
        cases[f"null {name}"] = signed({**good, name: None})
    cases["payload changed"] = _tampered(cases["valid"], 1, lambda raw: raw.replace(b'"u"', b'"v"'))
    cases["signature changed"] = _tampered(cases["valid"], 2, lambda raw: bytes([raw[0] ^ 1]) + raw[1:])
    cases["signature cut"] = _tampered(cases["valid"], 2, lambda raw: raw[:-1])
    return cases


def test_assertions_are_checked_as_the_jose_library_checked_them(tmp_path: Path) -> None:
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(Keyring([GATEWAY.private.public_key()]).jwks()), encoding="utf-8")
    decided = {}
    for name, token in _crafted().items():
        # Each case its own verifier and assertion id: a replay is a case of its own.
        verifier = AssertionVerifier(jwks, region=Region.TIANJIN)
        expected = _reference(AssertionVerifier(jwks, region=Region.TIANJIN), token)
        try:
            verifier.verify(((METADATA_KEY, token),), subject=ACME)
            got = "ok"
        except (Unauthenticated, PermissionDenied) as exc:
            got = type(exc).__name__
        decided[name] = (got, expected)
    # The one difference: base64url padding, which RFC 7515 leaves out and no gateway
    # writes, is now refused with the other malformed encodings.
    stricter = {"padded": "Unauthenticated"}
    assert {name: got for name, (got, _) in decided.items()} == {
        name: stricter.get(name, expected) for name, (_, expected) in decided.items()
    }
    assert decided["padded"][1] == "ok"
    assert decided["valid"][0] == decided["legacy form"][0] == decided["by PyJWT"][0] == "ok"
    assert decided["expired within leeway"][0] == decided["issued within leeway"][0] == "ok"


# Claims and headers as a gateway, a careless one or a forger might write them: every
# registered claim absent, null, well-formed or of another type; times away from the
# boundaries (now ± LEEWAY, MAX_LIFETIME apart), so that the clock cannot tip a case.
_OFFSETS = (-1000, -200, -100, -10, 0, 10, 60, 100, 200, 600, 3600)
_ABSENT = object()


def _time_claim(now: int) -> st.SearchStrategy[object]:
    at = st.sampled_from(_OFFSETS).map(lambda offset: now + offset)
    return st.one_of(
        at,
        at.map(float),
        at.map(lambda value: value + 0.5),
        at.map(str),
        st.sampled_from([_ABSENT, None, True, False, "soon", [now], float("nan"), float("inf"), -float("inf")]),
        st.sampled_from([10**30, -(10**30)]),
    )


def _text_claim() -> st.SearchStrategy[object]:
    return st.sampled_from([_ABSENT, None, "u", "", 5, ["u"], {"u": 1}])


_AUDIENCES = st.sampled_from(
    [
        _ABSENT,
        None,
        "jjj-node:tianjin",
        "jjj-node:beijing",
        "",
        ["jjj-node:tianjin"],
        ["jjj-node:beijing", "jjj-node:tianjin"],
        ["jjj-node:beijing"],
        [],
        ["jjj-node:tianjin", 7],
        7,
        0,
        {"jjj-node:tianjin": 1},
        {},
    ]
)


@st.composite
def _assertions(draw: st.DrawFn) -> str:
    # A well-formed assertion with a few of its parts changed (most often one or two),
    # so that each check is reached with the others passing.
    now = int(time.time())
    good: dict[str, object] = {"iss": "gw", "sub": "u", "jti": "j", "aud": ["jjj-node:tianjin"], "iat": now,
                               "exp": now + 60, "nbf": _ABSENT, "subject": ACME, "role": "enterprise"}  # fmt: skip
    changes: dict[str, st.SearchStrategy[object]] = {
        "iss": _text_claim(),
        "sub": _text_claim(),
        "jti": _text_claim(),
        "aud": _AUDIENCES,
        "iat": _time_claim(now),
        "exp": _time_claim(now),
        "nbf": _time_claim(now),
        "subject": st.sampled_from([OTHER, _ABSENT]),
        "role": st.sampled_from([_ABSENT, 3]),
    }
    changed = draw(st.sets(st.sampled_from(sorted(changes)), max_size=3))
    claims = {name: draw(changes[name]) if name in changed else value for name, value in good.items()}
    payload = json.dumps({name: value for name, value in claims.items() if value is not _ABSENT}).encode()
    header = {
        "alg": draw(st.sampled_from(["Ed25519", "EdDSA"])),
        "typ": draw(st.sampled_from([TokenType.ON_BEHALF_OF.value, TokenType.ON_BEHALF_OF.value, "JWT", _ABSENT])),
        "kid": draw(st.sampled_from([GATEWAY.kid, GATEWAY.kid, GATEWAY.kid, "someone-else", _ABSENT])),
    }
    key = draw(st.sampled_from([GATEWAY, GATEWAY, GATEWAY, _STRANGER]))

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    encoded = json.dumps({name: value for name, value in header.items() if value is not _ABSENT}).encode()
    signing_input = f"{b64(encoded)}.{b64(payload)}"
    return f"{signing_input}.{b64(key.private.sign(signing_input.encode()))}"


_STRANGER = SigningKey.generate()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=_assertions())
def test_what_the_jose_library_accepted_is_accepted_and_nothing_else(
    token: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    jwks = tmp_path_factory.getbasetemp() / "property-jwks.json"
    if not jwks.exists():
        jwks.write_text(json.dumps(Keyring([GATEWAY.private.public_key()]).jwks()), encoding="utf-8")
    expected = _reference(AssertionVerifier(jwks, region=Region.TIANJIN), token)
    try:
        AssertionVerifier(jwks, region=Region.TIANJIN).verify(((METADATA_KEY, token),), subject=ACME)
        got = "ok"
    except (Unauthenticated, PermissionDenied) as exc:
        got = type(exc).__name__
    assert got == expected


def test_used_assertion_ids_are_swept_now_and_then_not_on_every_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import federation.assertions as assertions

    monkeypatch.setattr(assertions, "_USED_SWEEP", 10)
    jwks = tmp_path / "gateway-jwks.json"
    jwks.write_text(json.dumps(Keyring([GATEWAY.private.public_key()]).jwks()), encoding="utf-8")
    verifier = AssertionVerifier(jwks, region=Region.TIANJIN)
    sweeps = 0
    clock = time.time

    def counted() -> float:
        nonlocal sweeps
        sweeps += 1
        return clock()

    monkeypatch.setattr(assertions.time, "time", counted)
    now = clock()
    for i in range(20):
        assert not verifier._replayed(f"old{i}", now - 3600)  # expired long ago
    for i in range(1000):
        assert not verifier._replayed(f"live{i}", now + 60)
    assert sweeps <= 10  # at 10, 20, 40, … kept ids: not once per call past the first threshold
    assert not any(token.startswith("old") for token in verifier._used)
    assert verifier._replayed("live0", now + 60) and verifier._replayed("live999", now + 60)
