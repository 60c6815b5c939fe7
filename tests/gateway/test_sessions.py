"""Session tokens: issued, verified once and remembered only while they stay valid."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from credit.errors import Unauthenticated
from credit.policy import Role
from credit.signing import Keyring, SigningKey
from gateway.access import auth
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


class Revocations:
    """Where another process records ended sessions: numbered, read after a number."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, datetime, datetime]] = []
        self.asked: list[int] = []

    def end(self, key: str, since: datetime) -> None:
        self.rows.append((len(self.rows) + 1, key, since, since + timedelta(minutes=30)))

    def __call__(self, after: int) -> tuple[int, dict[str, tuple[datetime, datetime]]]:
        self.asked.append(after)
        last = self.rows[-1][0] if self.rows else 0
        return last, {key: (since, until) for seq, key, since, until in self.rows if seq > after}


def test_ended_sessions_are_read_a_bounded_while_late_and_only_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    key = SigningKey.generate()
    gateway = sessions(key)
    ended = Revocations()
    gateway.watch_ended(ended)
    token, _ = gateway.issue(ACCOUNT)
    other, _ = gateway.issue(Account("bank", "x", "third_party", None, "银行"))
    assert gateway.verify(token).username == "clean-co"  # verified, and remembered
    token_id = gateway._verified[token].token_id

    ended.end(f"jti:{token_id}", datetime.now(UTC))  # logged out through another process
    clock[0] += auth.ENDED_REFRESH / 2
    assert gateway.verify(token).username == "clean-co"  # not read yet: within the bound
    clock[0] += auth.ENDED_REFRESH / 2 + 0.01
    with pytest.raises(Unauthenticated, match="logged out"):
        gateway.verify(token)  # the bound has passed
    assert gateway.verify(other).username == "bank"
    ended.end("jti:another", datetime.now(UTC))
    clock[0] += auth.ENDED_REFRESH + 0.01
    gateway.verify(other)
    assert ended.asked == [-1, 0, 1]  # each time only what came after what was read

    # A database restored from an older dump, under running processes, holds fewer
    # revocations than they read: they read it all again.
    ended.rows = [(1, "user:bank", datetime.now(UTC), datetime.now(UTC) + timedelta(minutes=30))]
    clock[0] += auth.ENDED_REFRESH + 0.01
    with pytest.raises(Unauthenticated, match="account changed"):
        gateway.verify(other)
    assert ended.asked[-2:] == [2, -1]
