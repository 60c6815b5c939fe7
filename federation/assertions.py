"""On-behalf-of assertions: every query says who asks, about whom, and why.

The gateway signs a short-lived JWT (Ed25519, its published key, ``typ``
``jjj-obo+jwt``) for each request and sends it in the ``x-jjj-on-behalf-of`` metadata:
``sub`` the user, ``role``, ``subject`` the subject asked about (or ``*`` for a batch
check), ``purpose``, ``aud`` the regions' nodes, ``exp`` a minute ahead. A node checks the
type and the signature against the gateway keys it was configured with and refuses a
query without a valid assertion. An assertion of the untyped form gateways signed before
(``alg: EdDSA``, ``typ: JWT``) is still accepted while gateways are upgraded after their
nodes: it lives two minutes at most, and its audience alone already set it apart.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from credit import policy
from credit.errors import FailedPrecondition, PermissionDenied, Unauthenticated
from credit.regions import Region
from credit.signing import Keyring, SigningKey, TokenType, VerificationError, read_jwt, sign_claims

log = structlog.get_logger("jjj.node")

METADATA_KEY = "x-jjj-on-behalf-of"
BATCH = "*"
MAX_LIFETIME = 120  # seconds from iat to exp: an assertion is for the call at hand
LEEWAY = 30  # seconds of clock difference between the gateway and a node
_USED_SWEEP = 10_000  # assertion ids kept before the expired ones are swept


def audience(region: Region) -> str:
    return f"jjj-node:{region.value}"


@dataclass(frozen=True, slots=True)
class OnBehalfOf:
    user: str
    role: str
    subject: str
    purpose: str
    issuer: str
    token_id: str


class AssertionVerifier:
    """Checks assertions against the gateway's keys, read from a JWKS file.

    The file is read again (at most every 10 s) when an assertion names a key not yet
    known, so a gateway key rotation reaches the node without a restart.
    """

    def __init__(self, jwks_path: Path, *, region: Region) -> None:
        self.jwks_path = jwks_path
        self.region = region
        # Assertion ids seen, with when they expire: one use each. Bounded by the rate of
        # calls over an assertion's short life; expired ids are forgotten as the map grows.
        self._used: dict[str, float] = {}
        self._sweep_at = _USED_SWEEP
        self._keyring = self._read()
        self._read_at = time.monotonic()

    def _read(self) -> Keyring:
        # Several files, comma-separated: the keys of every gateway instance of the
        # federation (each publishes its own).
        keys = []
        for part in filter(None, (p.strip() for p in str(self.jwks_path).split(","))):
            try:
                keys.extend(Keyring.from_jwks(json.loads(Path(part).read_text(encoding="utf-8"))).keys())
            except (OSError, ValueError, VerificationError) as exc:
                raise FailedPrecondition(f"cannot read the gateway keys from {part}: {exc}") from exc
        return Keyring(keys)

    def _replayed(self, token_id: str, expires: float) -> bool:
        if token_id in self._used:
            return True
        if len(self._used) >= self._sweep_at:
            now = time.time()
            self._used = {k: v for k, v in self._used.items() if v + LEEWAY > now}
            # The next sweep once as many again are kept: at a rate that keeps more
            # than _USED_SWEEP ids alive (500 queries a second keep about 45,000), a
            # fixed threshold would sweep the whole dictionary on every call.
            self._sweep_at = max(_USED_SWEEP, 2 * len(self._used))
        self._used[token_id] = expires
        return False

    def _key(self, kid: str) -> Any:
        key = self._keyring.get(kid)
        if key is None and time.monotonic() - self._read_at > 10:
            self._read_at = time.monotonic()
            try:
                self._keyring = self._read()
            except FailedPrecondition as exc:
                log.warning("gateway_keys_unreadable", reason=exc.detail)
            key = self._keyring.get(kid)
        return key

    def verify(self, metadata: Sequence[tuple[str, str | bytes]], *, subject: str) -> OnBehalfOf:
        """The assertion carried by a call, checked for this node and this subject.

        ``subject`` is the subject asked about, or :data:`BATCH` for a batch check.

        Raises:
            Unauthenticated: no assertion, or one that is malformed, expired, or signed
                by a key this node does not trust.
            PermissionDenied: an assertion for another region or another subject.
        """
        token = next((str(v) for k, v in metadata if k == METADATA_KEY), "")
        if not token:
            raise Unauthenticated(f"缺少代查声明 (no on-behalf-of assertion in {METADATA_KEY})")
        try:
            unverified = read_jwt(token, TokenType.ON_BEHALF_OF, legacy=True)
        except VerificationError as exc:
            raise Unauthenticated(f"代查声明无效 ({exc.detail})") from exc
        key = self._key(str(unverified.header.get("kid", "")))
        if key is None:
            raise Unauthenticated("代查声明无效 (signed by a key this node does not trust)")
        try:
            claims = unverified.claims(key)
        except VerificationError as exc:
            raise Unauthenticated(f"代查声明无效 (invalid assertion: {exc.detail})") from exc
        _, expires = self._times(claims)
        token_id: str = claims["jti"]
        if self._replayed(token_id, expires):
            raise Unauthenticated("代查声明已被使用 (this assertion was used before: each is good for one call)")
        asserted = str(claims.get("subject", ""))
        if asserted != subject:
            raise PermissionDenied("代查声明的主体与查询不符 (the assertion is for another subject)")
        if asserted == BATCH and not policy.may_batch(str(claims.get("role", ""))):
            raise PermissionDenied(
                f"角色 {claims.get('role')!r} 不能批量查询 (a batch assertion needs an agency or admin role)"
            )
        return OnBehalfOf(
            user=str(claims["sub"]),
            role=str(claims.get("role", "")),
            subject=asserted,
            purpose=str(claims.get("purpose", "")),
            issuer=str(claims["iss"]),
            token_id=token_id,
        )

    def _times(self, claims: dict[str, Any]) -> tuple[float, float]:
        """``iat`` and ``exp``, once the registered claims are checked as the JOSE library
        (PyJWT) checked them before, in its order and with its readings: every required
        claim present and not null; ``iat``, ``nbf`` (when present) and ``exp`` read as
        ``int()`` reads them, not issued or valid only in the future, not expired (each
        give or take :data:`LEEWAY`); a non-empty ``aud`` naming this node's region;
        ``sub`` and ``jti`` strings. Then, as this node always required: ``iat`` and
        ``exp`` JSON numbers, at most :data:`MAX_LIFETIME` apart.

        Raises:
            Unauthenticated: a claim missing or malformed, or the assertion expired, not
                yet valid or too long-lived.
            PermissionDenied: an assertion for other audiences only.
        """
        missing = [name for name in _REQUIRED if claims.get(name) is None]
        if missing:
            raise Unauthenticated(f"代查声明无效 (invalid assertion: the {missing[0]!r} claim is required)")
        now = time.time()
        moments = {name: _moment(claims, name) for name in ("iat", "nbf", "exp") if name in claims}
        if moments["iat"] > now + LEEWAY or moments.get("nbf", now) > now + LEEWAY:
            raise Unauthenticated("代查声明无效 (invalid assertion: the token is not yet valid)")
        if moments["exp"] <= now - LEEWAY:
            raise Unauthenticated("代查声明无效 (invalid assertion: the assertion has expired)")
        audiences = claims["aud"]
        if not audiences:
            raise Unauthenticated("代查声明无效 (invalid assertion: the 'aud' claim is empty)")
        if isinstance(audiences, str):
            audiences = [audiences]
        if not isinstance(audiences, list) or any(not isinstance(a, str) for a in audiences):
            raise PermissionDenied("代查声明不是给本地区的 (the assertion's audience is malformed)")
        if audience(self.region) not in audiences:
            raise PermissionDenied(f"代查声明不是给本地区的 (the assertion is not for {self.region.value})")
        if not isinstance(claims["sub"], str) or not isinstance(claims["jti"], str):
            raise Unauthenticated("代查声明无效 (invalid assertion: sub and jti must be strings)")
        issued, expires = claims["iat"], claims["exp"]
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise Unauthenticated("代查声明无效 (iat and exp must be numbers)")
        if expires - issued > MAX_LIFETIME:
            raise Unauthenticated(
                f"代查声明有效期过长 (the assertion lives {int(expires - issued)} s; at most {MAX_LIFETIME} s)"
            )
        # Finite now: int() took both, and they are at most MAX_LIFETIME apart.
        return float(issued), float(expires)


def _moment(claims: dict[str, Any], name: str) -> int:
    # A time claim read as PyJWT read it (int(): a numeric string or a boolean passes,
    # truncated; NaN and infinities do not), so that exactly the assertions it accepted
    # are accepted.
    try:
        return int(claims[name])
    except (ValueError, TypeError, OverflowError):
        raise Unauthenticated(f"代查声明无效 (invalid assertion: {name} must be an integer)") from None


_REQUIRED = ("exp", "iat", "sub", "aud", "iss", "jti")


# Issuing (the gateway, for each call it makes on someone's behalf).

LIFETIME = timedelta(seconds=60)


def on_behalf_of(
    key: SigningKey,
    *,
    issuer: str,
    user: str,
    role: str,
    subject: str,
    purpose: str,
    regions: list[Region] | tuple[Region, ...] = tuple(Region),
) -> str:
    """An assertion that ``user`` asks about ``subject`` for ``purpose``, valid a minute."""
    now = datetime.now(UTC)
    claims = {
        "iss": issuer,
        "sub": user,
        "aud": [audience(region) for region in regions],
        "iat": now,
        "exp": now + LIFETIME,
        "jti": secrets.token_urlsafe(12),
        "role": role,
        "subject": subject,
        "purpose": purpose,
    }
    return sign_claims(claims, key, TokenType.ON_BEHALF_OF)
