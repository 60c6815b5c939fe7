"""Signing the on-behalf-of assertion each node query carries (see :mod:`nodes.assertions`)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from credit.regions import Region
from credit.signing import SigningKey, TokenType, sign_claims
from nodes.assertions import audience

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
