"""A node refuses a query without a valid on-behalf-of assertion from the gateway: forged,
long-lived, replayed or over-broad assertions included."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import jwt
import pytest

from credit.regions import Region
from credit.signing import Keyring, SigningKey
from federation.assertions import METADATA_KEY, on_behalf_of
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
