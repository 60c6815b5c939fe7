"""Report numbers and verification codes: random, human-typable, self-checking.

A verification code (核验码) is 16 random characters of Crockford's base-32 alphabet
(80 bits: far beyond guessing, with attempts rate-limited besides) and a check
character (Luhn mod 32) that catches every single mistyped character and most swapped
neighbours before any lookup. It is written in groups of four: ``7K3M-9QXR-2D8F-WH4T-P``.
Reading is forgiving: case, spaces and hyphens do not matter, and O/I/L read as 0/1/1.
"""

from __future__ import annotations

import secrets
from datetime import date

from credit.errors import InvalidInput

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})
CODE_BODY = 16


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
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_BODY))
    return group(body + luhn32_check(body))


def group(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def parse_verification_code(raw: str) -> str:
    """The canonical (grouped) form of a typed verification code.

    Raises:
        InvalidInput: wrong length, a character outside the alphabet, or a wrong check
            character (a typing mistake, most likely).
    """
    value = raw.strip().upper().translate(_READ_AS)
    if len(value) != CODE_BODY + 1:
        raise InvalidInput.for_field(
            "code",
            f"核验码应为 {CODE_BODY + 1} 位，实际 {len(value)} 位 (a verification code has {CODE_BODY + 1} characters)",
        )
    bad = [ch for ch in value if ch not in _VALUE]
    if bad:
        raise InvalidInput.for_field("code", f"核验码含无效字符 '{bad[0]}' (invalid character '{bad[0]}')")
    if luhn32_check(value[:-1]) != value[-1]:
        raise InvalidInput.for_field(
            "code", "核验码校验位不符，请检查输入 (the check character does not match: a typing mistake?)"
        )
    return group(value)


def new_report_number(issued: date) -> str:
    """``JJJ-YYYYMMDD-XXXXXXXXXX``: the issue date and 50 random bits."""
    return f"JJJ-{issued:%Y%m%d}-" + "".join(secrets.choice(ALPHABET) for _ in range(10))
