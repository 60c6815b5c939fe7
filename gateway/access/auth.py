"""One login: accounts, memory-hard password hashes, throttling, and session tokens.

Passwords are hashed with Argon2id (argon2-cffi). Five wrong passwords in a row lock an
account for a minute, doubling with each further failure (to an hour); the answer to a
locked account says when to try again. A session is a short-lived JWT signed by the
gateway with Ed25519 (typ jjj-session+jwt; iss, sub, aud, iat, nbf, exp, jti, role, subject,
and region and org where the account has them), checked against the gateway's key ring,
so key rotation does not log anyone out.

Sessions end server-side (logout, an account replaced or removed, a password changed):
the revocation is written to the gateway's database, which every process of the instance
shares. The process that ended a session refuses it at once; every other process reads
the revocations it has not seen yet at most every :data:`ENDED_REFRESH` seconds (an
index lookup of the last revocation's number, and rows only when there are new ones),
and checks them on every use of a token, also of one it remembers as verified. So a
session ended anywhere is refused everywhere at most :data:`ENDED_REFRESH` seconds (plus
one read) after the revocation committed.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import jwt
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from credit.audit import Action, Event, EventOutcome
from credit.errors import InvalidInput, PermissionDenied, TooManyAttempts, Unauthenticated
from credit.policy import Principal, Role
from credit.signing import ACCEPTED_ALGORITHMS, Keyring, SigningKey, TokenType, sign_claims, token_header
from gateway.registry import Account, Registry
from infra.auditlog import AuditLog

log = structlog.get_logger("jjj.gateway")

AUDIENCE = "jjj-gateway"
_HASHER = PasswordHasher()  # Argon2id, library defaults (64 MiB, t=3)
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))
LOCK_AFTER = 5
_R = TypeVar("_R")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


VERIFIED_CACHE = 10_000
ENDED_REFRESH = 2.0  # seconds: how stale this process's view of ended sessions may be
ENDED_PRUNE = 60.0  # seconds between forgetting the revocations no live token can need

# Where ended sessions are read from: given the number of the last revocation read (-1:
# none yet), the number of the last one committed and those after the first up to it,
# (in force since, in force until) by key.
EndedSource = Callable[[int], tuple[int, dict[str, tuple[datetime, datetime]]]]


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    expires: float
    kid: str
    token_id: str
    issued_at: float


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
        # Ended sessions are checked on every use, remembered or not.
        self._verified: dict[str, _Verified] = {}
        self._ended: dict[str, tuple[datetime, datetime]] = {}  # key → (since, until)
        self._ended_source: EndedSource | None = None
        self._ended_seq = -1
        self._ended_read = 0.0
        self._ended_pruned = time.monotonic()

    def watch_ended(self, source: EndedSource) -> None:
        """Where ended sessions are kept (the gateway's database, shared by its processes):
        the revocations not read yet are read at most every :data:`ENDED_REFRESH` seconds."""
        self._ended_source = source
        self._ended_seq = -1
        self._ended_read = 0.0

    def _ended_sessions(self) -> dict[str, tuple[datetime, datetime]]:
        source = self._ended_source
        now = time.monotonic()
        if source is not None and now - self._ended_read > ENDED_REFRESH:
            last, new = source(self._ended_seq)
            if last < self._ended_seq:  # the database went back (restored from a dump): read it all
                self._ended = {}
                last, new = source(-1)
            self._ended.update(new)
            self._ended_seq = last
            self._ended_read = now
        if now - self._ended_pruned > ENDED_PRUNE:
            moment = datetime.now(UTC)
            self._ended = {key: span for key, span in self._ended.items() if span[1] > moment}
            self._ended_pruned = now
        return self._ended

    def end(self, token: str) -> tuple[str, datetime]:
        """End a session (log out) in this process at once; returns its token id and expiry
        for the caller to record where every process reads ended sessions.

        Raises:
            Unauthenticated: the token is not a live session.
        """
        self.verify(token)
        verified = self._verified.pop(token)
        expires = datetime.fromtimestamp(verified.expires, UTC)
        self._ended[f"jti:{verified.token_id}"] = (datetime.now(UTC), expires)
        return verified.token_id, expires

    def end_account(self, username: str, since: datetime) -> None:
        """End every session of an account begun up to ``since``, in this process at once
        (the caller records it where every process reads ended sessions)."""
        self._ended[f"user:{username}"] = (since, since + self.lifetime)

    def verify(self, token: str) -> Principal:
        """The principal a session token names.

        Raises:
            Unauthenticated: missing, malformed, forged, expired, for another audience,
                or signed with a key this gateway does not trust.
        """
        known = self._verified.get(token)
        if known is not None:
            ring = self._keyring_of(known.principal.issuer)
            if time.time() >= known.expires or ring is None or ring.get(known.kid) is None:
                del self._verified[token]
                known = None
        if known is None:
            known = self._verify(token)
            if len(self._verified) >= VERIFIED_CACHE:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = known
        ended = self._ended_sessions()
        if f"jti:{known.token_id}" in ended:
            raise Unauthenticated("会话已注销，请重新登录 (this session was logged out: log in again)")
        account = ended.get(f"user:{known.principal.username}")
        if account is not None and known.principal.issuer == self.issuer and known.issued_at <= account[0].timestamp():
            raise Unauthenticated("账户已变更，请重新登录 (the account changed since this session began: log in again)")
        return known.principal

    def _verify(self, token: str) -> _Verified:
        # The untyped form signed before (EdDSA, typ JWT) is honoured while the instances of
        # the federation are upgraded: only the audience set it apart, and it is checked below.
        try:
            header = token_header(token, TokenType.SESSION, legacy=True)
        except InvalidInput as exc:  # credit.signing's VerificationError (argon2 has the name here)
            raise Unauthenticated(f"会话无效 ({exc.detail})") from exc
        found = self._find_key(str(header.get("kid", "")))
        if found is None:
            raise Unauthenticated("会话无效 (signed by an unknown key: not this instance nor one it trusts)")
        signer, key = found
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ACCEPTED_ALGORITHMS,
                audience=AUDIENCE,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.exceptions.ExpiredSignatureError as exc:
            raise Unauthenticated("会话已过期，请重新登录 (session expired: log in again)") from exc
        except jwt.exceptions.PyJWTError as exc:
            raise Unauthenticated(f"会话无效 (invalid session token: {exc})") from exc
        if not claims.get("jti"):
            raise Unauthenticated("会话无效 (the session token has no id: it could not be ended)")
        if claims["iss"] != signer:
            raise Unauthenticated(f"会话无效 (the token names {claims['iss']!r} but was signed by {signer!r})")
        try:
            role = Role(claims["role"])
        except (KeyError, ValueError) as exc:
            raise Unauthenticated("会话无效 (no valid role)") from exc
        region, organisation = claims.get("region"), claims.get("org")
        principal = Principal(
            str(claims["sub"]),
            role,
            claims.get("subject"),
            str(claims["iss"]),
            str(region) if region else None,
            str(organisation) if organisation else None,
        )
        return _Verified(principal, float(claims["exp"]), str(header["kid"]), str(claims["jti"]), float(claims["iat"]))

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
            # Seconds with their fraction (RFC 7519 NumericDate): a session begun in the
            # same second as an account change is still told apart from one before it.
            "iat": issued.timestamp(),
            "nbf": int(issued.timestamp()),
            "exp": int((issued + self.lifetime).timestamp()),
            "jti": secrets.token_urlsafe(12),
            "role": account.role,
            "subject": account.subject_id,
        }
        if account.region:
            claims["region"] = account.region
        if account.org_code:
            claims["org"] = account.org_code  # the account's organisation: grants made out to it
        return sign_claims(claims, self.signing_key, TokenType.SESSION), int(self.lifetime.total_seconds())


async def logout(registry: Registry, sessions: Sessions, token: str, *, audit: AuditLog | None = None) -> None:
    """End a session everywhere: this process at once, the others within seconds.

    Raises:
        Unauthenticated: the token is not a live session.
    """
    principal = sessions.verify(token)
    token_id, expires = sessions.end(token)
    await registry.run(functools.partial(registry.end_session, token_id, expires_at=expires))
    if audit is not None:
        await audit.record(Event(principal.username, principal.role.value, Action.LOGOUT))


# Failed logins from one client address: at most this many attempts in the window, whatever
# the usernames tried (the per-account lock alone would let one address try many). Every
# attempt is counted before its password is checked, in the gateway's database, so that
# parallel attempts, the three front doors (API, portal, gRPC) and every gateway process
# on the database share one count.
ADDRESS_LIMIT = 20
ADDRESS_WINDOW = timedelta(seconds=60)


class PasswordChecks:
    """Argon2 verification off the event loop, a few at a time: each check takes tens of
    milliseconds of CPU and 64 MiB, which inline would stall every other request. Checks
    beyond those running wait their turn, up to ``queue``; more are refused as busy."""

    def __init__(self, *, workers: int = 2, queue: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="password")
        self._queue = queue
        self._pending = 0

    async def verify(self, password_hash: str, password: str) -> bool:
        """Raises: TooManyAttempts: too many checks are waiting already."""
        return await self._run(_verify, password_hash, password)

    async def hash(self, password: str) -> str:
        """A new password's Argon2id hash, made as the checks are.

        Raises:
            TooManyAttempts: too many checks are waiting already.
        """
        return await self._run(hash_password, password)

    async def _run(self, work: Callable[..., _R], *args: str) -> _R:
        if self._pending >= self._queue:
            raise TooManyAttempts("登录繁忙，请稍后再试 (too many logins at once: retry in a few seconds)", 5)
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        finally:
            self._pending -= 1


PASSWORDS = PasswordChecks()


async def login(
    registry: Registry,
    sessions: Sessions,
    username: str,
    password: str,
    *,
    address: str = "unknown",
    audit: AuditLog | None = None,
) -> tuple[str, int]:
    """Check a password and open a session; the attempt goes to the audit log.

    The attempt counts against the client address and the account before the password is
    checked, so parallel attempts cannot slip past either limit.

    Raises:
        Unauthenticated: unknown user or wrong password (the same answer for both).
        TooManyAttempts: the address tried too often lately, or the account is locked.
    """
    try:
        token, lifetime, role = await _login(registry, sessions, username, password, address)
    except (Unauthenticated, TooManyAttempts) as exc:
        if audit is not None:
            await audit.record(
                Event(username[:128], "", Action.LOGIN_FAILED, outcome=EventOutcome.REFUSED, detail=exc.detail[:200])
            )
        raise
    if audit is not None:
        await audit.record(Event(username, role, Action.LOGIN))
    return token, lifetime


async def _login(
    registry: Registry, sessions: Sessions, username: str, password: str, address: str
) -> tuple[str, int, str]:
    now = datetime.now(UTC)
    attempt, wait = await registry.take_attempt(
        f"address:{address}", now=now, window=ADDRESS_WINDOW, limit=ADDRESS_LIMIT
    )
    if attempt is None:
        raise TooManyAttempts(
            f"尝试次数过多，请 {wait} 秒后再试 (too many failed logins from here: retry in {wait} s)", wait
        )
    account = await registry.account(username)
    if account is None:
        # The same work as a real check, so that timing does not reveal who exists.
        await PASSWORDS.verify(_DUMMY_HASH, password)
        log.info("login_failed", username=username, reason="unknown user")
        raise Unauthenticated("用户名或密码错误 (wrong username or password)")
    if account.locked_until and account.locked_until > now:
        wait = int((account.locked_until - now).total_seconds()) + 1
        raise TooManyAttempts(f"尝试次数过多，请 {wait} 秒后再试 (too many failed logins: retry in {wait} s)", wait)
    failed = await registry.count_account_attempt(username)
    if failed > LOCK_AFTER:
        # Attempts beyond the lock that were already under way when it fell.
        raise TooManyAttempts("尝试次数过多，请稍后再试 (too many failed logins: retry later)", 60)
    if not await PASSWORDS.verify(account.password_hash, password):
        locked = None
        if failed >= LOCK_AFTER:
            seconds = min(3600, 60 * 2 ** (failed - LOCK_AFTER))
            locked = now + timedelta(seconds=seconds)
            await registry.record_login(username, failed_logins=failed, locked_until=locked)
        log.info("login_failed", username=username, reason="wrong password", failed=failed)
        raise Unauthenticated("用户名或密码错误 (wrong username or password)")
    await registry.record_login(username, failed_logins=0, locked_until=None)
    await registry.forget_attempt(attempt)
    return (*sessions.issue(account, now=now), account.role)


# A new password: long enough that guessing it is hopeless whatever the hash costs, short
# enough that hashing it stays cheap; the same rule for the portal and `jjj accounts`.
MIN_PASSWORD = 12
MAX_PASSWORD = 128
# Wrong current passwords when changing one: at most this many in the window per account
# (a session left open must not become a way to guess the password behind it).
CHANGE_TRIES = 5
CHANGE_WINDOW = timedelta(minutes=15)


def check_new_password(password: str, *, username: str, field: str = "new_password") -> None:
    """The strength rule for a new password.

    Raises:
        InvalidInput: shorter than :data:`MIN_PASSWORD` or longer than :data:`MAX_PASSWORD`
            characters, or containing the username.
    """
    if len(password) < MIN_PASSWORD:
        raise InvalidInput.for_field(
            field, f"密码至少需要 {MIN_PASSWORD} 个字符 (a password has at least {MIN_PASSWORD} characters)"
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidInput.for_field(
            field, f"密码不能超过 {MAX_PASSWORD} 个字符 (a password has at most {MAX_PASSWORD} characters)"
        )
    if username and username.casefold() in password.casefold():
        raise InvalidInput.for_field(field, "密码不能包含用户名 (a password must not contain the username)")


async def change_password(
    registry: Registry,
    sessions: Sessions,
    principal: Principal,
    current: str,
    new: str,
    *,
    audit: AuditLog | None = None,
) -> tuple[str, int]:
    """Change a signed-in account's password and end every session it had, in every
    process; returns a new session for the caller (token, lifetime in seconds). Done and
    refused changes go to the audit log.

    Raises:
        PermissionDenied: a session of a peer instance (the account lives there).
        InvalidInput: a new password that breaks :func:`check_new_password` or equals the
            current one (field ``new_password``); a wrong current password
            (``current_password``).
        TooManyAttempts: too many wrong current passwords lately.
        Unauthenticated: the account is gone.
    """
    if principal.issuer != sessions.issuer:
        raise PermissionDenied("请在您登录的站点修改密码 (change the password at the site you logged in at)")
    check_new_password(new, username=principal.username)
    if new == current:
        raise InvalidInput.for_field(
            "new_password", "新密码不能与当前密码相同 (the new password equals the current one)"
        )
    try:
        since = await _replace_password(registry, principal, current, new)
    except (InvalidInput, TooManyAttempts) as exc:
        if audit is not None:
            await audit.record(_password_event(principal, EventOutcome.REFUSED, exc.detail[:200]))
        raise
    sessions.end_account(principal.username, since)
    account = await registry.account(principal.username)
    if account is None:
        raise Unauthenticated("账户不存在，请重新登录 (the account no longer exists)")
    if audit is not None:
        await audit.record(_password_event(principal, EventOutcome.OK))
    log.info("password_changed", username=principal.username)
    # Issued after the sessions ended, so it is not one of them.
    return sessions.issue(account, now=max(datetime.now(UTC), since + timedelta(microseconds=1)))


async def _replace_password(registry: Registry, principal: Principal, current: str, new: str) -> datetime:
    now = datetime.now(UTC)
    key = f"password:{principal.username}"
    attempt, wait = await registry.take_attempt(key, now=now, window=CHANGE_WINDOW, limit=CHANGE_TRIES)
    if attempt is None:
        raise TooManyAttempts(f"尝试次数过多，请 {wait} 秒后再试 (too many wrong passwords: retry in {wait} s)", wait)
    account = await registry.account(principal.username)
    if account is None:
        raise Unauthenticated("账户不存在，请重新登录 (the account no longer exists)")
    if not await PASSWORDS.verify(account.password_hash, current):
        raise InvalidInput.for_field("current_password", "当前密码不正确 (the current password is wrong)")
    await registry.forget_attempt(attempt)
    since = await registry.run(functools.partial(registry.set_password, principal.username, await PASSWORDS.hash(new)))
    if since is None:
        raise Unauthenticated("账户不存在，请重新登录 (the account no longer exists)")
    return since


def _password_event(principal: Principal, outcome: EventOutcome, detail: str = "") -> Event:
    return Event(
        principal.username,
        principal.role.value,
        Action.PASSWORD_CHANGED,
        principal.subject_id or "",
        outcome=outcome,
        detail=detail,
    )


async def full_name_of(registry: Registry, sessions: Sessions, principal: Principal) -> str:
    """The full name on the account of a person signed in here ("" when it has none, or
    the session is a peer instance's: the account lives there)."""
    if principal.issuer != sessions.issuer:
        return ""
    account = await registry.account(principal.username)
    if account is None or account.subject_id != principal.subject_id:
        return ""
    return account.full_name or ""


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
