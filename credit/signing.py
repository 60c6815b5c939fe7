"""Signed tokens: RFC 8785 canonical JSON in a compact JWS, Ed25519, each kind typed.

Anyone can check a report with a standard JOSE library or openssl and the published
key: the JWS payload is the canonical JSON bytes themselves, the signature is Ed25519
over ``BASE64URL(header) "." BASE64URL(payload)``, and the header names the key by its
RFC 7638 thumbprint, the algorithm by its RFC 9864 name ``Ed25519``, and the kind of
token in ``typ``. Keys are looked up by key id in a :class:`Keyring`, so a report
signed before a key rotation still verifies while the old public key stays published.

Every kind of token the gateway signs has its own ``typ`` (:class:`TokenType`, RFC 8725
§3.11 explicit typing) and every verifier names the kind it expects, so that no kind
is taken for another: a session, a grant preview or a batch summary is never a report.
Tokens signed before typing carry ``alg: EdDSA`` (RFC 8037's name, deprecated by RFC
9864) and no type of their own (``typ`` ``JOSE`` or absent on documents, ``JWT`` on
JWTs). A document of that old form is still verified, recognised by its payload alone
(a report by its ``format``, see :func:`verify`); a JWT of that old form only where a
verifier asks for it (``legacy``, see :func:`token_header`).

Every failure to verify is a :class:`VerificationError` with the reason.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import json
import re
from calendar import timegm
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import jwt
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import OKPAlgorithm

from credit.document import FORMAT as REPORT_FORMAT
from credit.errors import InvalidInput

ALGORITHM = "Ed25519"  # RFC 9864: the fully specified name
LEGACY_ALGORITHM = "EdDSA"  # RFC 8037's name for the same signatures: tokens signed before typing
ACCEPTED_ALGORITHMS = (ALGORITHM, LEGACY_ALGORITHM)  # for jwt.decode, once token_header has paired alg and typ

# PyJWT (2.15) knows Ed25519 signatures only by the name EdDSA; give its handler the
# RFC 9864 name too. The keys it is handed are ours, Ed25519 only (a Keyring holds no other).
with contextlib.suppress(ValueError):  # a PyJWT that knows the name already
    jwt.register_algorithm(ALGORITHM, OKPAlgorithm())


class TokenType(enum.StrEnum):
    """The ``typ`` of each kind of token the gateway signs: ``+jws`` for signed documents
    (canonical JSON, :func:`sign` and :func:`verify`), ``+jwt`` for JWTs (claims,
    :func:`sign_claims` and :func:`token_header`)."""

    REPORT = "jjj-report+jws"  # 信用报告
    BATCH_SUMMARY = "jjj-batch-summary+jws"  # 协助核查情况统计表
    AUDIT_CHECKPOINT = "jjj-audit-checkpoint+jws"  # 审计日志检查点
    SESSION = "jjj-session+jwt"  # 会话
    ON_BEHALF_OF = "jjj-obo+jwt"  # 代查声明, to the nodes
    GRANT_PREVIEW = "jjj-grant-preview+jwt"  # 授权预览


_DESCRIBED = {
    TokenType.REPORT: ("信用报告", "a credit report"),
    TokenType.BATCH_SUMMARY: ("批量核查统计表", "a batch summary"),
    TokenType.AUDIT_CHECKPOINT: ("审计检查点", "an audit checkpoint"),
    TokenType.SESSION: ("会话凭据", "a session token"),
    TokenType.ON_BEHALF_OF: ("代查声明", "an on-behalf-of assertion"),
    TokenType.GRANT_PREVIEW: ("授权预览凭据", "a grant preview token"),
}

BATCH_SUMMARY_FORMAT = "jjj-batch-summary/1"
# What each kind of signed document carries, by which it is also recognised in the old form.
_FORMATS = {TokenType.REPORT: REPORT_FORMAT, TokenType.BATCH_SUMMARY: BATCH_SUMMARY_FORMAT}
_CHECKPOINT_MEMBERS = frozenset({"seq", "hash", "at"})
_LEGACY_DOCUMENT_TYPS = (None, "JOSE")
_LEGACY_JWT_TYPS = ("JWT",)


class VerificationError(InvalidInput):
    """The report (or token) is not genuine: tampered, truncated, unknown key, bad algorithm,
    another kind of token."""

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


def sign(
    document: Mapping[str, Any], key: SigningKey, *, typ: TokenType = TokenType.REPORT, known_plain: bool = False
) -> str:
    """The compact JWS of a document's canonical JSON (see :func:`canonical`), typed ``typ``.

    Raises:
        rfc8785.CanonicalizationError: a value JSON cannot hold.
    """
    return sign_canonical(canonical(document, known_plain=known_plain), key, typ=typ)


@lru_cache(maxsize=64)
def _header(kid: str, typ: TokenType) -> str:
    # The encoded protected header, the same bytes PyJWT writes: members sorted, compact.
    return _b64(
        json.dumps({"alg": ALGORITHM, "kid": kid, "typ": typ.value}, separators=(",", ":"), sort_keys=True).encode()
    )


def _signed(payload: bytes, key: SigningKey, typ: TokenType) -> str:
    signing_input = f"{_header(key.kid, typ)}.{_b64(payload)}"
    return f"{signing_input}.{_b64(key.private.sign(signing_input.encode('ascii')))}"


def sign_canonical(payload: bytes, key: SigningKey, *, typ: TokenType = TokenType.REPORT) -> str:
    """The compact JWS of bytes that already are a document's canonical JSON, typed ``typ``.

    Built here rather than by the JOSE library: it is a few lines, and that library's
    input checks grow costly with the size of a report.
    """
    return _signed(payload, key, typ)


_NUMERIC_DATES = frozenset({"exp", "iat", "nbf"})


def _claim(name: str, value: Any) -> Any:
    return timegm(value.utctimetuple()) if name in _NUMERIC_DATES and isinstance(value, datetime) else value


def sign_claims(claims: dict[str, Any], key: SigningKey, typ: TokenType) -> str:
    """A JWT of kind ``typ``: the claims signed with Ed25519 (datetimes become NumericDates).

    Byte for byte the token ``jwt.encode(claims, key.private, algorithm="Ed25519",
    headers={"kid": key.kid, "typ": typ})`` writes (claims in their order, compact,
    ASCII-escaped), built here over ``cryptography``: the JOSE library's checks and
    copies cost more than the signature, and the gateway signs one assertion for every
    node call.

    Raises:
        TypeError: a claim JSON cannot hold, or an issuer that is not a string.
    """
    payload = {name: _claim(name, value) for name, value in claims.items()}
    if "iss" in payload and not isinstance(payload["iss"], str):
        raise TypeError("Issuer (iss) must be a string.")
    return _signed(json.dumps(payload, separators=(",", ":")).encode(), key, typ)


def _check_type(header: Mapping[str, Any], typ: TokenType, legacy: tuple[str | None, ...]) -> None:
    # A typed token is signed Ed25519; the old untyped forms ``legacy`` lists, EdDSA.
    alg, declared = header.get("alg"), header.get("typ")
    if alg not in ACCEPTED_ALGORITHMS:
        raise VerificationError(
            f"不接受的签名算法 (algorithm {alg!r} is not accepted; only {ALGORITHM}, "
            f"or {LEGACY_ALGORITHM} on a token signed before tokens were typed)"
        )
    if declared == typ.value:
        expected = ALGORITHM
    elif declared in legacy:
        expected = LEGACY_ALGORITHM
    else:
        zh, en = _DESCRIBED[typ]
        raise VerificationError(f"不是{zh} (not {en}: the token is of type {declared!r})")
    if alg != expected:
        raise VerificationError(f"不接受的签名算法 (algorithm {alg!r} does not go with type {declared!r})")


def token_header(token: str, typ: TokenType, *, legacy: bool = False) -> dict[str, Any]:
    """The header of a JWT of kind ``typ``, not yet verified: which key to check it with.

    ``legacy`` also accepts the form signed before tokens were typed (``alg: EdDSA``,
    ``typ: JWT``), which only the audience told apart from the other kinds: the caller
    must check the audience (``jwt.decode(..., audience=...)``, with
    :data:`ACCEPTED_ALGORITHMS`).

    Raises:
        VerificationError: malformed, another kind of token, or an algorithm that is not
            accepted (``none`` included) or does not go with the type.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise VerificationError(f"格式错误 (malformed token: {exc})") from exc
    _check_type(header, typ, _LEGACY_JWT_TYPS if legacy else ())
    return header


@dataclass(frozen=True, slots=True)
class UnverifiedJwt:
    """A JWT taken apart, its signature not yet checked: ``header`` names the key to check
    it with (:meth:`claims`)."""

    header: Mapping[str, Any]
    signing_input: bytes
    signature: bytes
    encoded_payload: str

    def claims(self, key: Ed25519PublicKey) -> dict[str, Any]:
        """The claims, once the signature is proven with ``key``. The claims themselves
        (times, audience) are for the caller to check.

        Raises:
            VerificationError: a signature that does not match, or claims that are not a
                JSON object.
        """
        try:
            key.verify(self.signature, self.signing_input)
        except InvalidSignature as exc:
            raise VerificationError("签名无效 (the signature does not match)") from exc
        try:
            claims = json.loads(_segment(self.encoded_payload, "payload", "格式错误"))
        except ValueError as exc:
            raise VerificationError(f"格式错误 (malformed token: the claims are not JSON: {exc})") from exc
        if not isinstance(claims, dict):
            raise VerificationError("格式错误 (malformed token: the claims are not a JSON object)")
        return claims


def read_jwt(token: str, typ: TokenType, *, legacy: bool = False) -> UnverifiedJwt:
    """A compact JWT of kind ``typ`` taken apart (RFC 7519 §7.2 up to the signature),
    with its header checked as :func:`token_header` checks it.

    Done over ``cryptography`` rather than the JOSE library, for the same reason as
    :func:`verify`: the library checks base64url a character at a time, which cost a
    node more than the signature on every query; ``typ`` and ``alg`` are checked here
    anyway. A ``crit`` header is refused (no extension is understood).

    Raises:
        VerificationError: malformed, another kind of token, or an algorithm that is not
            accepted (``none`` included) or does not go with the type.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise VerificationError("格式错误 (malformed token: expected three dot-separated parts)")
    encoded_header, encoded_payload, encoded_signature = parts
    return UnverifiedJwt(
        _jwt_header(encoded_header, typ, legacy),
        f"{encoded_header}.{encoded_payload}".encode("ascii"),
        _segment(encoded_signature, "signature", "格式错误"),
        encoded_payload,
    )


@lru_cache(maxsize=64)
def _jwt_header(encoded: str, typ: TokenType, legacy: bool) -> Mapping[str, Any]:
    # Every token one key signs of one kind has the same header: read and check it once.
    try:
        header = json.loads(_segment(encoded, "header", "格式错误"))
    except ValueError as exc:
        raise VerificationError(f"格式错误 (malformed token: the header is not JSON: {exc})") from exc
    if not isinstance(header, dict):
        raise VerificationError("格式错误 (malformed token: the header is not a JSON object)")
    _check_type(header, typ, _LEGACY_JWT_TYPS if legacy else ())
    if "crit" in header or not isinstance(header.get("kid", ""), str):
        raise VerificationError("格式错误 (malformed token: unsupported critical header, or a kid that is no string)")
    return MappingProxyType(header)


def _is_kind(document: Mapping[str, Any], typ: TokenType) -> bool:
    if typ is TokenType.AUDIT_CHECKPOINT:
        return document.keys() == _CHECKPOINT_MEMBERS
    return typ in _FORMATS and document.get("format") == _FORMATS[typ]


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


def _segment(part: str, what: str, malformed: str = "报告格式错误") -> bytes:
    # Strict base64url without padding (RFC 7515 §2), checked by one regular expression:
    # a character-by-character check in Python costs more than the signature for a
    # report of tens of kilobytes.
    try:
        raw = part.encode("ascii")
    except UnicodeEncodeError:
        raise VerificationError(f"{malformed} (the {what} is not base64url)") from None
    if not _BASE64URL.fullmatch(raw) or len(raw) % 4 == 1:
        raise VerificationError(f"{malformed} (the {what} is not base64url)")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def verify(token: str, keyring: Keyring, *, typ: TokenType = TokenType.REPORT) -> dict[str, Any]:
    """The document a compact JWS carries, once its signature is proven and it is of kind
    ``typ`` (a report unless told otherwise; a batch summary or an audit checkpoint).

    The kind is checked twice: the header's ``typ`` and the payload (a report's and a
    batch summary's ``format``, a checkpoint's members). A document signed before
    typing (``alg: EdDSA``, ``typ`` ``JOSE`` or absent) is recognised by its payload alone.

    Compact JWS verification (RFC 7515 §5.2), done here over ``cryptography`` because
    the JOSE library's input checks grow costly with the size of a report;
    interoperability is proven by tests against jwcrypto and openssl.

    Raises:
        VerificationError: malformed, an algorithm other than Ed25519 (EdDSA on the old
            form; ``none`` never), another kind of token, an unknown key, a bad
            signature, or a payload that is not a JSON object of the kind expected.
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
    _check_type(header, typ, _LEGACY_DOCUMENT_TYPS)
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
    if not _is_kind(document, typ):
        zh, en = _DESCRIBED[typ]
        raise VerificationError(f"签名内容不是{zh} (the signed payload is not {en})")
    return document
