"""Signed reports: RFC 8785 canonical JSON in a compact JWS, EdDSA over Ed25519.

Anyone can check a report with a standard JOSE library or openssl and the published
key: the JWS payload is the canonical JSON bytes themselves, the signature is Ed25519
over ``BASE64URL(header) "." BASE64URL(payload)``, and the header names the key by its
RFC 7638 thumbprint. Keys are looked up by key id in a :class:`Keyring`, so a report
signed before a key rotation still verifies while the old public key stays published.

Every failure to verify is a :class:`VerificationError` with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from credit.errors import InvalidInput

ALGORITHM = "EdDSA"
_JWS = jwt.api_jws.PyJWS(algorithms=[ALGORITHM])


class VerificationError(InvalidInput):
    """The report (or token) is not genuine: tampered, truncated, unknown key, bad algorithm."""

    title = "Not genuine"


_MAX_EXACT_INT = 2**53


_SCALARS = frozenset({str, bool, type(None)})
_SAFE_KEYS: set[str] = set()


def _plain(value: Any) -> bool:
    # True when the standard library's sorted, compact, non-ASCII-preserving output is
    # already RFC 8785: no floats (JCS formats numbers as ECMAScript does), no integers
    # beyond 2^53, and object keys sort the same by code point as by UTF-16 code unit
    # (true below U+D800). Strings come from decoded UTF-8, so hold no lone surrogates.
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key in item:
                if key not in _SAFE_KEYS:
                    if type(key) is not str or (key and max(key) >= "\ud800"):
                        return False
                    if len(_SAFE_KEYS) < 10_000:
                        _SAFE_KEYS.add(key)
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind in _SCALARS:
            continue
        elif kind is int:
            if abs(item) >= _MAX_EXACT_INT:
                return False
        else:
            return False
    return True


def canonical(document: Mapping[str, Any], *, known_plain: bool = False) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON document.

    Documents of strings, small integers, booleans, nulls, lists and objects take the
    standard library's C encoder, which then produces exactly the JCS bytes (a property
    test holds it byte-equal to the ``rfc8785`` package); anything else goes through
    that package.

    ``known_plain`` skips the check for callers whose documents are plain by
    construction (the report builder's are: it writes only strings, small integers,
    booleans, nulls, lists and ASCII-keyed objects).

    Raises:
        rfc8785.CanonicalizationError: a value JSON cannot hold.
    """
    if known_plain or _plain(document):
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    return rfc8785.dumps(document)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The RFC 8037 JWK of a public key, with its thumbprint as ``kid``."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}
    thumbprint = _b64(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())
    return {**members, "kid": thumbprint, "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        return cls(public_jwk(private.public_key())["kid"], private)

    @classmethod
    def from_private(cls, private: Ed25519PrivateKey) -> SigningKey:
        return cls(public_jwk(private.public_key())["kid"], private)


class Keyring:
    """Public keys by key id: what a verifier trusts."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            self._keys[public_jwk(key)["kid"]] = key

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> Keyring:
        """A keyring from a JWKS document; keys other than Ed25519 OKP keys are skipped.

        Raises:
            VerificationError: not a JWKS document.
        """
        entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(entries, list):
            raise VerificationError("not a JWKS document (no 'keys' list)")
        keys = []
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("kty") == "OKP" and entry.get("crv") == "Ed25519":
                try:
                    raw = base64.urlsafe_b64decode(str(entry["x"]) + "==")
                    keys.append(Ed25519PublicKey.from_public_bytes(raw))
                except (KeyError, ValueError) as exc:
                    raise VerificationError(f"malformed key in JWKS: {exc}") from exc
        return cls(keys)

    def get(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    def keys(self) -> list[Ed25519PublicKey]:
        return list(self._keys.values())

    def jwks(self) -> dict[str, Any]:
        """The JWKS document publishing every key of the ring."""
        return {"keys": [public_jwk(key) for key in self._keys.values()]}

    def __len__(self) -> int:
        return len(self._keys)


def sign(document: Mapping[str, Any], key: SigningKey, *, known_plain: bool = False) -> str:
    """The compact JWS of a document's canonical JSON (see :func:`canonical`).

    Raises:
        rfc8785.CanonicalizationError: a value JSON cannot hold.
    """
    return sign_canonical(canonical(document, known_plain=known_plain), key)


def sign_canonical(payload: bytes, key: SigningKey) -> str:
    """The compact JWS of bytes that already are a document's canonical JSON."""
    return _JWS.encode(payload, key.private, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JOSE"})


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


def _segment(part: str, what: str) -> bytes:
    # Strict base64url without padding (RFC 7515 §2), checked by one regular expression:
    # a character-by-character check in Python costs more than the signature for a
    # report of tens of kilobytes.
    try:
        raw = part.encode("ascii")
    except UnicodeEncodeError:
        raise VerificationError(f"报告格式错误 (the {what} is not base64url)") from None
    if not _BASE64URL.fullmatch(raw) or len(raw) % 4 == 1:
        raise VerificationError(f"报告格式错误 (the {what} is not base64url)")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def verify(token: str, keyring: Keyring) -> dict[str, Any]:
    """The document a compact JWS carries, once its signature is proven.

    Compact JWS verification (RFC 7515 §5.2) with EdDSA only, done here over
    ``cryptography`` because the JOSE library's input checks grow costly with the size
    of a report; interoperability is proven by tests against jwcrypto and openssl.

    Raises:
        VerificationError: malformed, an algorithm other than EdDSA (``none`` included),
            an unknown key, a bad signature, or a payload that is not a JSON object.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise VerificationError("不是完整的签名报告 (not a compact JWS: expected three dot-separated parts)")
    encoded_header, encoded_payload, encoded_signature = parts
    try:
        header = json.loads(_segment(encoded_header, "header"))
    except ValueError as exc:
        raise VerificationError(f"报告头无法解析 (malformed JWS header: {exc})") from exc
    if not isinstance(header, dict):
        raise VerificationError("报告头无法解析 (the JWS header is not a JSON object)")
    if header.get("alg") != ALGORITHM:
        raise VerificationError(f"不接受的签名算法 (algorithm {header.get('alg')!r} is not accepted; only EdDSA)")
    if "crit" in header or header.get("b64") is False:
        raise VerificationError("unsupported critical header parameters")
    key = keyring.get(str(header.get("kid", "")))
    if key is None:
        raise VerificationError(f"未知签名密钥 (unknown signing key {header.get('kid')!r})")
    signature = _segment(encoded_signature, "signature")
    try:
        key.verify(signature, f"{encoded_header}.{encoded_payload}".encode("ascii"))
    except InvalidSignature as exc:
        raise VerificationError(
            "签名无效，报告已被篡改 (the signature does not match: the report was altered)"
        ) from exc
    try:
        document = json.loads(_segment(encoded_payload, "payload"))
    except ValueError as exc:
        raise VerificationError("payload is not JSON") from exc
    if not isinstance(document, dict):
        raise VerificationError("payload is not a JSON object")
    return document
