"""One login: accounts, memory-hard password hashes, throttling, and session tokens.

Passwords are hashed with Argon2id (argon2-cffi). Five wrong passwords in a row lock an
account for a minute, doubling with each further failure (to an hour); the answer to a
locked account says when to try again. A session is a short-lived JWT signed by the
gateway with EdDSA (iss, sub, aud, iat, nbf, exp, jti, plus role and subject), checked
against the gateway's key ring, so key rotation does not log anyone out.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from credit.audit import Action, Event, Outcome
from credit.errors import TooManyAttempts, Unauthenticated
from credit.signing import Keyring, SigningKey
from gateway.registry import Account, Registry
from nodes.auditlog import AuditLog

log = structlog.get_logger("jjj.gateway")

AUDIENCE = "jjj-gateway"
_HASHER = PasswordHasher()  # Argon2id, library defaults (64 MiB, t=3)
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))
LOCK_AFTER = 5


class Role(enum.StrEnum):
    __hash__ = str.__hash__

    ENTERPRISE = "enterprise"  # 经营主体
    PERSON = "person"  # 自然人
    THIRD_PARTY = "third_party"  # bank, tender office, employer
    AGENCY = "agency"  # 出证机关 / 部门 officer
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, as a verified session says."""

    username: str
    role: Role
    subject_id: str | None
    issuer: str
    region: str | None = None  # an agency officer's region; None: every region


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


VERIFIED_CACHE = 10_000


class Sessions:
    """Session tokens this instance issues, and those of the peer instances it was told
    to trust (one login for the whole federation). ``peers`` maps each trusted peer's
    issuer name to its published keys; a token is honoured only when its key belongs to
    the issuer it names."""

    def __init__(
        self,
        *,
        issuer: str,
        signing_key: SigningKey,
        keyring: Keyring,
        lifetime: timedelta,
        peers: dict[str, Keyring] | None = None,
    ) -> None:
        self.issuer = issuer
        self.signing_key = signing_key
        self.keyring = keyring
        self.lifetime = lifetime
        self.peers: dict[str, Keyring] = dict(peers or {})
        # Verified tokens, for the rest of their life: systems send the same token with
        # every request, and verifying it costs more than the rest of a verification.
        self._verified: dict[str, tuple[Principal, float, str]] = {}

    def _keyring_of(self, issuer: str) -> Keyring | None:
        return self.keyring if issuer == self.issuer else self.peers.get(issuer)

    def _find_key(self, kid: str) -> tuple[str, Any] | None:
        own = self.keyring.get(kid)
        if own is not None:
            return self.issuer, own
        for issuer, ring in self.peers.items():
            key = ring.get(kid)
            if key is not None:
                return issuer, key
        return None

    def issue(self, account: Account, *, now: datetime | None = None) -> tuple[str, int]:
        """A signed session token for an account, and its lifetime in seconds."""
        issued = now or datetime.now(UTC)
        claims = {
            "iss": self.issuer,
            "sub": account.username,
            "aud": AUDIENCE,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.lifetime,
            "jti": secrets.token_urlsafe(12),
            "role": account.role,
            "subject": account.subject_id,
        }
        if account.region:
            claims["region"] = account.region
        token = jwt.encode(claims, self.signing_key.private, algorithm="EdDSA", headers={"kid": self.signing_key.kid})
        return token, int(self.lifetime.total_seconds())

    def verify(self, token: str) -> Principal:
        """The principal a session token names.

        Raises:
            Unauthenticated: missing, malformed, forged, expired, for another audience,
                or signed with a key this gateway does not trust.
        """
        known = self._verified.get(token)
        if known is not None:
            principal, expires, kid = known
            ring = self._keyring_of(principal.issuer)
            if time.time() < expires and ring is not None and ring.get(kid) is not None:
                return principal
            del self._verified[token]
        principal, expires, kid = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, expires, kid)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.exceptions.PyJWTError as exc:
            raise Unauthenticated("会话无效 (malformed session token)") from exc
        if header.get("alg") != "EdDSA":
            raise Unauthenticated(f"会话无效 (algorithm {header.get('alg')!r} not accepted)")
        found = self._find_key(str(header.get("kid", "")))
        if found is None:
            raise Unauthenticated("会话无效 (signed by an unknown key: not this instance nor one it trusts)")
        signer, key = found
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.exceptions.ExpiredSignatureError as exc:
            raise Unauthenticated("会话已过期，请重新登录 (session expired: log in again)") from exc
        except jwt.exceptions.PyJWTError as exc:
            raise Unauthenticated(f"会话无效 (invalid session token: {exc})") from exc
        if claims["iss"] != signer:
            raise Unauthenticated(f"会话无效 (the token names {claims['iss']!r} but was signed by {signer!r})")
        try:
            role = Role(claims["role"])
        except (KeyError, ValueError) as exc:
            raise Unauthenticated("会话无效 (no valid role)") from exc
        region = claims.get("region")
        principal = Principal(
            str(claims["sub"]), role, claims.get("subject"), str(claims["iss"]), str(region) if region else None
        )
        return principal, float(claims["exp"]), str(header["kid"])


class AddressThrottle:
    """At most ``limit`` failed logins per client address in ``window`` seconds, whatever
    the usernames tried (the per-account lock alone would let one address try many)."""

    def __init__(self, *, limit: int = 20, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float]:
        now = self.clock()
        failures = self._failures.setdefault(address, deque())
        while failures and now - failures[0] > self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return deque()
        return failures

    def check(self, address: str) -> None:
        """Raises: TooManyAttempts: this address failed too often lately."""
        failures = self._recent(address)
        if len(failures) >= self.limit:
            wait = int(self.window - (self.clock() - failures[0])) + 1
            raise TooManyAttempts(
                f"尝试次数过多，请 {wait} 秒后再试 (too many failed logins from here: retry in {wait} s)", wait
            )

    def failed(self, address: str) -> None:
        self._failures.setdefault(address, deque()).append(self.clock())
        if len(self._failures) > 100_000:  # bound the memory an address scan can take
            self._failures.pop(next(iter(self._failures)))


async def login(
    registry: Registry, sessions: Sessions, username: str, password: str, *, audit: AuditLog | None = None
) -> tuple[str, int]:
    """Check a password and open a session; the attempt goes to the audit log.

    Raises:
        Unauthenticated: unknown user or wrong password (the same answer for both).
        TooManyAttempts: the account is locked after repeated failures.
    """
    try:
        token, lifetime, role = await _login(registry, sessions, username, password)
    except (Unauthenticated, TooManyAttempts) as exc:
        if audit is not None:
            await audit.record(
                Event(username[:128], "", Action.LOGIN_FAILED, outcome=Outcome.REFUSED, detail=exc.detail[:200])
            )
        raise
    if audit is not None:
        await audit.record(Event(username, role, Action.LOGIN))
    return token, lifetime


async def _login(registry: Registry, sessions: Sessions, username: str, password: str) -> tuple[str, int, str]:
    now = datetime.now(UTC)
    account = await registry.account(username)
    if account is None:
        # The same work as a real check, so that timing does not reveal who exists.
        _verify(_DUMMY_HASH, password)
        log.info("login_failed", username=username, reason="unknown user")
        raise Unauthenticated("用户名或密码错误 (wrong username or password)")
    if account.locked_until and account.locked_until > now:
        wait = int((account.locked_until - now).total_seconds()) + 1
        raise TooManyAttempts(f"尝试次数过多，请 {wait} 秒后再试 (too many failed logins: retry in {wait} s)", wait)
    if not _verify(account.password_hash, password):
        failed = account.failed_logins + 1
        locked = None
        if failed >= LOCK_AFTER:
            seconds = min(3600, 60 * 2 ** (failed - LOCK_AFTER))
            locked = now + timedelta(seconds=seconds)
        await registry.record_login(username, failed_logins=failed, locked_until=locked)
        log.info("login_failed", username=username, reason="wrong password", failed=failed)
        raise Unauthenticated("用户名或密码错误 (wrong username or password)")
    if account.failed_logins or account.locked_until:
        await registry.record_login(username, failed_logins=0, locked_until=None)
    return (*sessions.issue(account, now=now), account.role)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
