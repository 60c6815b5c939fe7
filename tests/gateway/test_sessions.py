"""Session tokens: issued, verified once and remembered only while they stay valid."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from credit.errors import Unauthenticated
from credit.policy import Role
from credit.signing import Keyring, SigningKey
from gateway.access.auth import Sessions
from gateway.registry import Account

ACCOUNT = Account("clean-co", "x", "enterprise", "91120116MA05JQ1X4C", "清洁公司")


def sessions(key: SigningKey, lifetime: timedelta = timedelta(minutes=30)) -> Sessions:
    return Sessions(issuer="gw", signing_key=key, keyring=Keyring([key.private.public_key()]), lifetime=lifetime)


def test_a_remembered_token_is_refused_once_its_key_is_no_longer_trusted() -> None:
    key = SigningKey.generate()
    gateway = sessions(key)
    token, _ = gateway.issue(ACCOUNT)
    assert gateway.verify(token).role is Role.ENTERPRISE
    assert gateway.verify(token).username == "clean-co"  # now from memory
    gateway.keyring = Keyring([SigningKey.generate().private.public_key()])
    with pytest.raises(Unauthenticated, match="unknown key"):
        gateway.verify(token)


def test_a_remembered_token_expires_like_any_other() -> None:
    key = SigningKey.generate()
    gateway = sessions(key, lifetime=timedelta(seconds=30))
    expires = int(time.time()) + 2  # claims hold whole seconds
    token, _ = gateway.issue(ACCOUNT, now=datetime.fromtimestamp(expires - 30, UTC))
    assert gateway.verify(token).username == "clean-co"
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(Unauthenticated, match="expired"):
        gateway.verify(token)


def test_a_forged_token_is_never_remembered() -> None:
    gateway = sessions(SigningKey.generate())
    forged, _ = sessions(SigningKey.generate()).issue(ACCOUNT)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            gateway.verify(forged)
    assert forged not in gateway._verified
