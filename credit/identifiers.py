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

import numpy as np
import numpy.typing as npt

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


EMPTY_IDENTIFIER = "主体标识为空 (identifier is empty)"
_EMPTY_DETAIL = f"subject: {EMPTY_IDENTIFIER}"  # parse_subject's detail for a blank, default field


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
        raise InvalidIdentifier.for_field(field, EMPTY_IDENTIFIER)
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


# The GB 32100 and GB 11643 checks over arrays: one row of 18 bytes per identifier.
_USCC_TABLE = np.full(256, 255, dtype=np.uint8)
_USCC_TABLE[[ord(ch) for ch in USCC_ALPHABET]] = np.arange(len(USCC_ALPHABET))
_USCC_WEIGHT_ROW = np.array(_USCC_WEIGHTS, dtype=np.int32)
_ID_WEIGHT_ROW = np.array(_ID_WEIGHTS, dtype=np.int32)
_ID_CHECK_BYTES = np.frombuffer(_ID_CHECK.encode("ascii"), dtype=np.uint8)
_PROVINCE_TABLE = np.zeros(100, dtype=bool)
_PROVINCE_TABLE[[int(p) for p in PROVINCE_PREFIXES]] = True
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)
_DECIMAL = np.array([1000, 100, 10, 1], dtype=np.int32)

Bytes18 = npt.NDArray[np.uint8]  # shape (n, 18): each row an identifier's ASCII bytes
Mask = npt.NDArray[np.bool_]


def uscc_rows_valid(chars: Bytes18) -> Mask:
    """Which rows of ``chars`` are valid unified social credit codes whose first 17
    characters are not all digits (an all-digit value may name a person: see
    :func:`parse_subject`), as :func:`uscc_problems` finds none: the value table, the
    weights and mod 31 over the whole array at once.

    Raises nothing.
    """
    values = _USCC_TABLE[chars]
    digits = values < 10  # the alphabet's first ten values are the digits
    total = values[:, :17].astype(np.int32) @ _USCC_WEIGHT_ROW
    ok: Mask = (
        (values != 255).all(axis=1)
        & digits[:, 2:8].all(axis=1)
        & ~digits[:, :17].all(axis=1)
        & (values[:, 17] == (31 - total % 31) % 31)
    )
    return ok


def resident_id_rows_valid(chars: Bytes18, today: date | None = None) -> Mask:
    """Which rows of ``chars`` are valid resident ID numbers, as
    :func:`resident_id_problems` finds none: 17 digits and a check character (a digit or
    ``X``), a province prefix, a real birth date from 1900 to ``today`` (no upper bound
    without it), the mod-11 check, over the whole array at once.

    Raises nothing.
    """
    body = chars[:, :17] - np.uint8(0x30)  # a non-digit wraps to 10 or more
    first17 = (body <= 9).all(axis=1)
    body = np.minimum(body, 9).astype(np.int32)
    prefix = _PROVINCE_TABLE[body[:, 0] * 10 + body[:, 1]]
    year = body[:, 6:10] @ _DECIMAL
    month = body[:, 10] * 10 + body[:, 11]
    day = body[:, 12] * 10 + body[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = _MONTH_DAYS[np.minimum(month, 12)] + ((month == 2) & leap)
    born = (year >= 1900) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days)
    if today is not None:
        born &= year * 10000 + month * 100 + day <= today.year * 10000 + today.month * 100 + today.day
    total = body @ _ID_WEIGHT_ROW
    ok: Mask = first17 & prefix & born & (chars[:, 17] == _ID_CHECK_BYTES[total % 11])
    return ok


def ascii_rows(values: Sequence[str]) -> Bytes18:
    """Strings of 18 ASCII characters each as an array of their bytes, one row each.

    Raises:
        UnicodeEncodeError: a value that is not ASCII.
        ValueError: a value that is not 18 characters long.
    """
    return _rows_of("".join(values), len(values))


def _rows_of(joined: str, count: int) -> Bytes18:
    data = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    if data.size != 18 * count:
        raise ValueError("every value must be 18 characters long")
    return data.reshape(-1, 18)


ENTERPRISE_CODE, PERSON_CODE = 1, 2  # the kinds :func:`quick_kinds` decides; 0: left undecided


def quick_kinds(values: Sequence[str], *, today: date | None = None) -> npt.NDArray[np.uint8]:
    """Per value, :data:`ENTERPRISE_CODE` when it is (upper-cased) a valid unified social
    credit code whose first 17 characters are not all digits, :data:`PERSON_CODE` when it
    is (upper-cased) a valid resident ID number, 0 otherwise: the two common cases of
    :func:`parse_subject`, decided over arrays. A value marked 1 or 2 is one
    :func:`parse_subject` accepts as that kind, its identifier being the value upper-cased;
    a value marked 0 is left for :func:`parse_subject` to decide (padded, not 18
    characters, not ASCII, a pilot code, or invalid).

    Raises nothing.
    """
    kinds = np.zeros(len(values), dtype=np.uint8)
    if not values:
        return kinds
    sized = np.fromiter(map(len, values), dtype=np.int32, count=len(values)) == 18
    sized &= np.fromiter(map(str.isascii, values), dtype=bool, count=len(values))
    where = np.flatnonzero(sized)
    if not where.size:
        return kinds
    chosen = values if where.size == len(values) else [values[i] for i in where.tolist()]
    # Upper-casing ASCII keeps every value's length: one C call for them all.
    chars = _rows_of("".join(chosen).upper(), len(chosen))
    enterprise = uscc_rows_valid(chars)
    person = resident_id_rows_valid(chars, today) & ~enterprise
    kinds[where] = enterprise * np.uint8(ENTERPRISE_CODE) + person * np.uint8(PERSON_CODE)
    return kinds


def _upper_all(values: Sequence[str]) -> list[str]:
    # Values of 18 ASCII characters: upper-cased in one C call, and kept as they are when
    # they are upper case already (the common list).
    joined = "".join(values)
    upper = joined.upper()
    if upper == joined:
        return list(values)
    return [upper[i : i + 18] for i in range(0, len(upper), 18)]


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """Many identifiers parsed at once, without an object per identifier: each value's
    identifier (normalised; "" when invalid) and kind (None when invalid), and, by index,
    the values :func:`parse_subject` itself decided — the uncommon ones — as their
    :class:`Subject` (which may carry warnings) or the reason they are invalid."""

    ids: list[str]
    kinds: list[SubjectKind | None]
    decided: dict[int, Subject | str]

    def subject(self, index: int) -> Subject | str:
        """The value at ``index`` as :func:`parse_subjects` gives it.

        Raises:
            IndexError: no such value.
        """
        found = self.decided.get(index)
        if found is not None:
            return found
        kind = self.kinds[index]
        assert kind is not None  # every invalid value is in decided
        return Subject(self.ids[index], kind)


def parse_subject_batch(
    raws: Sequence[str], *, pilot_codes: frozenset[str] = frozenset(), today: date | None = None
) -> ParsedBatch:
    """Many identifiers at once (a batch check), by the rules of :func:`parse_subject`:
    the common cases — a valid credit code, a valid resident ID number — decided over
    arrays (:func:`quick_kinds`), every other value by :func:`parse_subject` itself.

    Raises nothing: invalid identifiers are answered, not raised.
    """
    codes = quick_kinds(raws, today=today)
    ids = _upper_all(raws) if len(raws) >= 64 and bool(codes.all()) else [raw.upper() for raw in raws]
    by_code = (None, SubjectKind.ENTERPRISE, SubjectKind.PERSON)
    kinds = [by_code[code] for code in codes.tolist()]
    decided: dict[int, Subject | str] = {}
    for index in np.flatnonzero(codes == 0).tolist():
        raw = raws[index]
        parsed: Subject | str
        if not raw or raw.isspace():
            # A blank (a batch's placeholder for a repeated row) is answered without
            # raising and catching an error for each.
            parsed = _EMPTY_DETAIL
        else:
            try:
                parsed = parse_subject(raw, pilot_codes=pilot_codes, today=today)
            except InvalidIdentifier as exc:
                parsed = exc.detail
        decided[index] = parsed
        if isinstance(parsed, Subject):
            ids[index], kinds[index] = parsed.id, parsed.kind
        else:
            ids[index], kinds[index] = "", None
    return ParsedBatch(ids, kinds, decided)


def parse_subjects(
    raws: Sequence[str], *, pilot_codes: frozenset[str] = frozenset(), today: date | None = None
) -> list[Subject | str]:
    """Many identifiers at once (a batch check): each as its :class:`Subject`, or, when
    it is invalid, as the reason (see :func:`parse_subject_batch`).

    Raises nothing: invalid identifiers are answered, not raised.
    """
    parsed = parse_subject_batch(raws, pilot_codes=pilot_codes, today=today)
    return [parsed.subject(index) for index in range(len(raws))]


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
