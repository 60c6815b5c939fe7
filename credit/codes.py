"""Report numbers and verification codes: random, human-typable, self-checking.

A verification code (核验码) is 16 random characters of Crockford's base-32 alphabet
(80 bits: far beyond guessing, with attempts rate-limited besides) and a check
character (Luhn mod 32) that catches every single mistyped character and most swapped
neighbours before any lookup. It is written in groups of four: ``7K3M-9QXR-2D8F-WH4T-P``.
Reading is forgiving: case, spaces and hyphens do not matter, and O/I/L read as 0/1/1.

An authorisation code (授权码), which lets a third party fetch a subject's report, is
built the same way with 20 random characters (100 bits) behind the prefix ``SQ``
(授权), so that neither kind of code can be taken for the other:
``SQ-7K3M-9QXR-2D8F-WH4T-A2B4-K``.
"""

from __future__ import annotations

import base64
import secrets
from datetime import date

from credit.errors import InvalidInput

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})
CODE_BODY = 16
# RFC 4648 base32 digits to Crockford's, value for value.
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())


def random_characters(count: int) -> str:
    """``count`` characters of the alphabet, each uniformly random (5 bits of one
    ``secrets`` draw): base32 of random bytes, read in Crockford's digits.

    Raises nothing.
    """
    encoded = base64.b32encode(secrets.token_bytes((count * 5 + 7) // 8))
    return encoded[:count].translate(_CROCKFORD).decode("ascii")


def luhn32_check(body: str) -> str:
    """The Luhn mod 32 check character of a string in the alphabet.

    Raises:
        KeyError: a character outside the alphabet.
    """
    total = 0
    factor = 2
    for ch in reversed(body):
        addend = factor * _VALUE[ch]
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def new_verification_code() -> str:
    """A fresh verification code, grouped for reading."""
    body = random_characters(CODE_BODY)
    return group(body + luhn32_check(body))


def group(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _checked(value: str, *, body: int, name: str, what: str) -> str:
    if len(value) != body + 1:
        raise InvalidInput.for_field(
            "code", f"{name}应为 {body + 1} 位，实际 {len(value)} 位 (a {what} has {body + 1} characters)"
        )
    bad = [ch for ch in value if ch not in _VALUE]
    if bad:
        raise InvalidInput.for_field("code", f"{name}含无效字符 '{bad[0]}' (invalid character '{bad[0]}')")
    if luhn32_check(value[:-1]) != value[-1]:
        raise InvalidInput.for_field(
            "code", f"{name}校验位不符，请检查输入 (the check character does not match: a typing mistake?)"
        )
    return value


def parse_verification_code(raw: str) -> str:
    """The canonical (grouped) form of a typed verification code.

    Raises:
        InvalidInput: wrong length, a character outside the alphabet, or a wrong check
            character (a typing mistake, most likely).
    """
    value = raw.strip().upper().translate(_READ_AS)
    return group(_checked(value, body=CODE_BODY, name="核验码", what="verification code"))


GRANT_PREFIX = "SQ"
GRANT_BODY = 20


def new_grant_code() -> str:
    """A fresh authorisation code, grouped for reading."""
    body = random_characters(GRANT_BODY)
    return GRANT_PREFIX + "-" + group(body + luhn32_check(body))


def parse_grant_code(raw: str) -> str:
    """The canonical (grouped) form of a typed authorisation code.

    Raises:
        InvalidInput: no ``SQ`` prefix (a verification code, perhaps), wrong length, a
            character outside the alphabet, or a wrong check character.
    """
    value = raw.strip().upper().translate(_READ_AS)
    if not value.startswith(GRANT_PREFIX):
        raise InvalidInput.for_field("code", "授权码以 SQ 开头 (an authorisation code starts with SQ)")
    body = _checked(value[len(GRANT_PREFIX) :], body=GRANT_BODY, name="授权码", what="authorisation code")
    return GRANT_PREFIX + "-" + group(body)


def new_report_number(issued: date) -> str:
    """``JJJ-YYYYMMDD-XXXXXXXXXX``: the issue date and 50 random bits."""
    return f"JJJ-{issued:%Y%m%d}-{random_characters(10)}"
