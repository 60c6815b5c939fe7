"""Subject identifiers: unified social credit codes and resident ID numbers.

- Unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters from a
  31-character alphabet (digits and capitals without I, O, S, V, Z). Position 1 is the
  registration authority, 2 the organisation type, 3–8 the administrative division,
  9–17 the organisation code, 18 a check character: the weighted sum of the first 17
  values with weights 3^i mod 31, taken as (31 − sum mod 31) mod 31.
- Resident ID number (公民身份号码, GB 11643-1999): 6-digit address code, 8-digit birth
  date, 3-digit sequence and a mod-11 check character (``X`` stands for 10).

Some codes issued in early pilots fail the GB 32100 check. They are real and must not be
lost, so an operator-supplied allowance of known pilot codes accepts them with a warning.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from operator import mul

from credit.errors import FieldViolation, InvalidIdentifier

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_USCC_CHARS = frozenset(USCC_ALPHABET)

_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_CHECK = "10X98765432"

# First two digits of a resident ID's address code: the provinces, plus Taiwan, Hong
# Kong and Macau (GB/T 2260).
PROVINCE_PREFIXES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
        "83",
    ]
)

PILOT_CODE_WARNING = (
    "早期试点代码，未通过 GB 32100 校验，按已登记的试点代码接受 "
    "(early pilot code: fails the GB 32100 check, accepted as a registered pilot code)"
)


class SubjectKind(enum.StrEnum):
    """Whom a record or report is about."""

    __hash__ = str.__hash__  # agrees with str equality, and hashes in C

    ENTERPRISE = "enterprise"  # 经营主体, by unified social credit code
    PERSON = "person"  # 自然人, by resident ID number


@dataclass(frozen=True, slots=True)
class Subject:
    """A validated subject identifier, with any warnings its validation raised."""

    id: str
    kind: SubjectKind
    warnings: tuple[str, ...] = ()


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a code.

    Raises:
        KeyError: a character outside the code alphabet.
    """
    if len(first17) != 17:
        raise KeyError(first17)
    total = sum(map(mul, map(_USCC_VALUE.__getitem__, first17), _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of an ID number.

    Raises:
        ValueError: a non-digit character.
    """
    if len(first17) != 17:
        raise ValueError(first17)
    total = sum(map(mul, map(int, first17), _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def _normalise(raw: str) -> str:
    return raw.strip().upper()


def uscc_problems(code: str) -> list[str]:
    """Every reason a (normalised) string is not a valid unified social credit code.

    Raises nothing: an invalid code is described, not raised.
    """
    if len(code) != 18:
        return [f"统一社会信用代码应为 18 位，实际 {len(code)} 位 (must be 18 characters, got {len(code)})"]
    if not _USCC_CHARS.issuperset(code):
        pos, ch = next((i, c) for i, c in enumerate(code, start=1) if c not in _USCC_VALUE)
        return [
            f"第 {pos} 位字符 '{ch}' 不在代码字符集内 (character '{ch}' at position {pos} "
            "is not allowed: digits and A–Z without I, O, S, V, Z)"
        ]
    if not code[2:8].isdigit():
        return [
            f"第 3–8 位行政区划码 '{code[2:8]}' 应为数字 "
            f"(administrative division code '{code[2:8]}' at positions 3–8 must be digits)"
        ]
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        return [
            f"校验码错误：应为 '{expected}'，实际为 '{code[17]}' "
            f"(check character should be '{expected}', got '{code[17]}')"
        ]
    return []


def resident_id_problems(number: str, *, today: date | None = None) -> list[str]:
    """Every reason a (normalised) string is not a valid resident ID number.

    Raises nothing: an invalid number is described, not raised.
    """
    if len(number) == 15 and number.isdigit():
        return [
            "15 位一代身份证号码不受理，请使用 18 位号码 "
            "(15-digit first-generation numbers are not accepted; give the 18-digit number)"
        ]
    if len(number) != 18:
        return [f"公民身份号码应为 18 位，实际 {len(number)} 位 (must be 18 characters, got {len(number)})"]
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return [
            "公民身份号码前 17 位应为数字，末位为数字或 X (first 17 characters must be digits, the last a digit or X)"
        ]
    if number[:2] not in PROVINCE_PREFIXES:
        return [f"地址码 '{number[:6]}' 的省级代码无效 (address code '{number[:6]}' has no valid province prefix)"]
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return [f"出生日期 '{number[6:14]}' 无效 (birth date '{number[6:14]}' is not a date)"]
    if born.year < 1900 or (today is not None and born > today):
        return [f"出生日期 '{number[6:14]}' 不在合理范围 (birth date '{number[6:14]}' is out of range)"]
    expected = resident_id_check_char(number[:17])
    if number[17] != expected:
        return [
            f"校验码错误：应为 '{expected}'，实际为 '{number[17]}' "
            f"(check character should be '{expected}', got '{number[17]}')"
        ]
    return []


# Character → its value in the code alphabet (255: not in it), for bytes.translate.
_USCC_TRANSLATE = bytes(_USCC_VALUE.get(chr(i), 255) for i in range(256))


def _is_valid_uscc(value: str) -> bool:
    # The batch hot path: one C call maps every character to its value.
    if len(value) != 18 or not value.isascii():
        return False
    values = value.encode("ascii").translate(_USCC_TRANSLATE)
    if 255 in values or not value[2:8].isdigit():
        return False
    total: int = sum(map(mul, values[:17], _USCC_WEIGHTS))
    return values[17] == (31 - total % 31) % 31


def _looks_like_resident_id(value: str) -> bool:
    return len(value) in (15, 18) and value[:17].isdigit() and value[:2] in PROVINCE_PREFIXES


def parse_subject(
    raw: str,
    *,
    kind: SubjectKind | None = None,
    pilot_codes: frozenset[str] = frozenset(),
    today: date | None = None,
    field: str = "subject",
) -> Subject:
    """Validate a subject identifier and say what kind of subject it names.

    With ``kind`` given, the identifier is checked as that kind only. Without it, a
    value that is a valid resident ID number names a person, otherwise it must be a
    unified social credit code. A code in ``pilot_codes`` that fails the check is
    accepted with a warning.

    Raises:
        InvalidIdentifier: with the reason, naming ``field``.
    """
    value = _normalise(raw)
    if kind is not SubjectKind.PERSON and _is_valid_uscc(value) and not value[:17].isdigit():
        # The common case, decided without building any message.
        return Subject(value, SubjectKind.ENTERPRISE)
    if not value:
        raise InvalidIdentifier.for_field(field, "主体标识为空 (identifier is empty)")
    if kind is None:
        kind = SubjectKind.ENTERPRISE
        if _looks_like_resident_id(value):
            # All-digit codes exist in both schemes; a valid ID number wins, and an
            # invalid one is reported as an ID number unless it is a valid code.
            if not resident_id_problems(value, today=today):
                return Subject(value, SubjectKind.PERSON)
            if uscc_problems(value) and value not in pilot_codes:
                kind = SubjectKind.PERSON
    if kind is SubjectKind.PERSON:
        problems = resident_id_problems(value, today=today)
        if problems:
            raise InvalidIdentifier(
                f"{field}: 公民身份号码无效 (invalid resident ID number): {problems[0]}",
                tuple(FieldViolation(field, p) for p in problems),
            )
        return Subject(value, SubjectKind.PERSON)
    problems = uscc_problems(value)
    if not problems:
        return Subject(value, SubjectKind.ENTERPRISE)
    if value in pilot_codes:
        return Subject(value, SubjectKind.ENTERPRISE, (PILOT_CODE_WARNING,))
    raise InvalidIdentifier(
        f"{field}: 统一社会信用代码无效 (invalid unified social credit code): {problems[0]}",
        tuple(FieldViolation(field, p) for p in problems),
    )


def parse_subjects(
    raws: Sequence[str], *, pilot_codes: frozenset[str] = frozenset(), today: date | None = None
) -> list[Subject | str]:
    """Many identifiers at once (a batch check): each as its :class:`Subject`, or, when
    it is invalid, as the reason. The same rules as :func:`parse_subject`, with the
    common case — a valid credit code — decided inline.

    Raises nothing: invalid identifiers are answered, not raised.
    """
    out: list[Subject | str] = []
    append = out.append
    enterprise = SubjectKind.ENTERPRISE
    table, weights = _USCC_TRANSLATE, _USCC_WEIGHTS
    for raw in raws:
        value = raw.strip().upper()
        if len(value) == 18 and value.isascii() and not value[:17].isdigit():
            values = value.encode("ascii").translate(table)
            if 255 not in values and value[2:8].isdigit():
                total: int = sum(map(mul, values[:17], weights))
                if values[17] == (31 - total % 31) % 31:
                    append(Subject(value, enterprise))
                    continue
        try:
            append(parse_subject(value, pilot_codes=pilot_codes, today=today))
        except InvalidIdentifier as exc:
            append(exc.detail)
    return out


def make_uscc(body17: str) -> str:
    """Complete 17 characters into a valid code by appending the check character.

    Raises:
        KeyError: a character outside the code alphabet.
    """
    return body17 + uscc_check_char(body17)


def make_resident_id(body17: str) -> str:
    """Complete 17 digits into a valid ID number by appending the check character.

    Raises:
        ValueError: a non-digit character.
    """
    return body17 + resident_id_check_char(body17)
