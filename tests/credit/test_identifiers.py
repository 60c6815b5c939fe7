"""Subject identifiers: GB 32100 unified social credit codes and GB 11643 resident IDs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit.errors import FieldViolation, InvalidIdentifier, InvalidInput
from credit.identifiers import (
    PILOT_CODE_WARNING,
    USCC_ALPHABET,
    Subject,
    SubjectKind,
    make_resident_id,
    make_uscc,
    parse_subject,
    parse_subjects,
    quick_kinds,
    resident_id_check_char,
    resident_id_problems,
    uscc_check_char,
    uscc_problems,
)

VALID_CODES = ("91350100M000100Y43", "91110108MA01RXNE2H")
# 11010519491231002X is the worked example of GB 11643-1999.
VALID_IDS = ("11010519491231002X", "120104198503120042")
# All-digit strings that pass both the GB 11643 and the GB 32100 check.
VALID_AS_BOTH = "110105194912310409"

# Mainland province-level prefixes of GB/T 2260 address codes.
PROVINCE_PREFIXES = tuple(
    str(p) for p in (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46)
) + tuple(str(p) for p in (50, 51, 52, 53, 54, 61, 62, 63, 64, 65))

Rejects = Callable[..., InvalidIdentifier]


@pytest.fixture
def rejects() -> Rejects:
    """A builder: parse a raw identifier, assert it is refused, return the error."""

    def reject(raw: str, **kwargs: object) -> InvalidIdentifier:
        with pytest.raises(InvalidIdentifier) as caught:
            parse_subject(raw, **kwargs)  # type: ignore[arg-type]
        return caught.value

    return reject


def _with_char(value: str, pos: int, ch: str) -> str:
    return value[:pos] + ch + value[pos + 1 :]


# --- known good values ---------------------------------------------------------------


@pytest.mark.parametrize("code", VALID_CODES)
def test_known_codes_are_valid_enterprises(code: str) -> None:
    assert uscc_problems(code) == []
    assert uscc_check_char(code[:17]) == code[17]
    assert parse_subject(code) == Subject(code, SubjectKind.ENTERPRISE)


@pytest.mark.parametrize("number", VALID_IDS)
def test_known_resident_ids_are_valid_persons(number: str) -> None:
    assert resident_id_problems(number) == []
    assert resident_id_check_char(number[:17]) == number[17]
    assert parse_subject(number) == Subject(number, SubjectKind.PERSON)


def test_gb11643_example_check_character_is_x() -> None:
    assert resident_id_check_char("11010519491231002") == "X"
    assert make_resident_id("11010519491231002") == "11010519491231002X"


@pytest.mark.parametrize("code", VALID_CODES)
def test_make_uscc_reproduces_known_codes(code: str) -> None:
    assert make_uscc(code[:17]) == code


def test_make_uscc_output_parses_without_warnings() -> None:
    code = make_uscc("91120116MA05K7XQ0")
    subject = parse_subject(code)
    assert subject.kind is SubjectKind.ENTERPRISE
    assert subject.warnings == ()


# --- normalisation ----------------------------------------------------------------------


def test_lowercase_and_whitespace_are_normalised_for_codes() -> None:
    assert parse_subject("  91110108ma01rxne2h\n") == Subject("91110108MA01RXNE2H", SubjectKind.ENTERPRISE)


def test_lowercase_x_and_whitespace_are_normalised_for_resident_ids() -> None:
    assert parse_subject("\t11010519491231002x ") == Subject("11010519491231002X", SubjectKind.PERSON)


# --- invalid unified social credit codes --------------------------------------------


def test_code_of_wrong_length_is_rejected_with_length(rejects: Rejects) -> None:
    error = rejects("91350100M000100Y4")
    assert "got 17" in error.detail
    assert "18" in error.detail


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_code_with_forbidden_letter_is_rejected_naming_it(rejects: Rejects, letter: str) -> None:
    raw = _with_char("91350100M000100Y43", 8, letter)
    error = rejects(raw)
    assert f"character '{letter}' at position 9" in error.detail
    assert f"character '{letter}' at position 9" in error.violations[0].description


def test_code_with_non_digit_division_is_rejected(rejects: Rejects) -> None:
    raw = make_uscc("91A50100M000100Y4")
    error = rejects(raw)
    assert "administrative division code 'A50100'" in error.detail


def test_code_with_wrong_check_character_names_the_expected_one(rejects: Rejects) -> None:
    error = rejects("91350100M000100Y44", field="subjects[2]")
    assert "invalid unified social credit code" in error.detail
    assert "check character should be '3', got '4'" in error.detail
    assert error.detail.startswith("subjects[2]: ")
    assert len(error.violations) == 1
    violation = error.violations[0]
    assert isinstance(violation, FieldViolation)
    assert violation.field == "subjects[2]"
    assert "should be '3'" in violation.description


def test_invalid_identifier_is_an_invalid_argument(rejects: Rejects) -> None:
    error = rejects("91350100M000100Y44")
    assert isinstance(error, InvalidInput)
    assert error.grpc_code == "INVALID_ARGUMENT"
    assert error.http_status == 400


@pytest.mark.parametrize("raw", ["", "   ", "\n"])
def test_empty_identifier_is_rejected(rejects: Rejects, raw: str) -> None:
    error = rejects(raw, field="subject_id")
    assert "empty" in error.detail
    assert error.violations == (FieldViolation("subject_id", "主体标识为空 (identifier is empty)"),)


# --- invalid resident ID numbers ----------------------------------------------------


def test_resident_id_with_wrong_check_is_rejected_as_resident_id(rejects: Rejects) -> None:
    error = rejects("110105194912310021", field="id_number")
    assert "invalid resident ID number" in error.detail
    assert "check character should be 'X', got '1'" in error.detail
    assert [v.field for v in error.violations] == ["id_number"]


def test_resident_id_with_impossible_birth_date_is_rejected(rejects: Rejects) -> None:
    raw = make_resident_id("11010519490231002")
    error = rejects(raw)
    assert "birth date '19490231' is not a date" in error.detail


def test_resident_id_born_before_1900_is_out_of_range(rejects: Rejects) -> None:
    error = rejects(make_resident_id("11010518991231002"), kind=SubjectKind.PERSON)
    assert "out of range" in error.detail


def test_resident_id_born_after_today_is_out_of_range(rejects: Rejects) -> None:
    raw = make_resident_id("11010520300101002")
    error = rejects(raw, kind=SubjectKind.PERSON, today=date(2025, 6, 16))
    assert "birth date '20300101'" in error.detail
    assert parse_subject(raw, kind=SubjectKind.PERSON, today=date(2030, 1, 1)).kind is SubjectKind.PERSON


def test_fifteen_digit_number_is_rejected(rejects: Rejects) -> None:
    error = rejects("110105491231002")
    assert "15-digit" in error.detail
    assert "invalid resident ID number" in error.detail


def test_resident_id_with_bad_province_is_rejected(rejects: Rejects) -> None:
    raw = make_resident_id("99010519491231002")
    error = rejects(raw, kind=SubjectKind.PERSON)
    assert "address code '990105' has no valid province prefix" in error.detail


def test_resident_id_with_letter_inside_is_rejected(rejects: Rejects) -> None:
    error = rejects("1101051949A231002X", kind=SubjectKind.PERSON)
    assert "first 17 characters must be digits" in error.detail


# --- pilot allowance ----------------------------------------------------------------


def test_failing_code_is_rejected_without_pilot_allowance(rejects: Rejects) -> None:
    rejects("91350100M000100Y44", pilot_codes=frozenset({"91350100M000100Y45"}))


def test_registered_pilot_code_is_accepted_with_warning() -> None:
    subject = parse_subject(" 91350100m000100y44 ", pilot_codes=frozenset({"91350100M000100Y44"}))
    assert subject == Subject("91350100M000100Y44", SubjectKind.ENTERPRISE, (PILOT_CODE_WARNING,))


def test_valid_code_in_pilot_list_has_no_warning() -> None:
    subject = parse_subject("91350100M000100Y43", pilot_codes=frozenset({"91350100M000100Y43"}))
    assert subject.warnings == ()


def test_all_digit_pilot_code_is_accepted_as_enterprise() -> None:
    raw = "110105194912310021"  # fails both checks
    subject = parse_subject(raw, pilot_codes=frozenset({raw}))
    assert subject.kind is SubjectKind.ENTERPRISE
    assert subject.warnings == (PILOT_CODE_WARNING,)


# --- kind inference -----------------------------------------------------------------


def test_value_valid_in_both_schemes_is_inferred_as_person() -> None:
    assert uscc_problems(VALID_AS_BOTH) == []
    assert resident_id_problems(VALID_AS_BOTH) == []
    assert parse_subject(VALID_AS_BOTH).kind is SubjectKind.PERSON
    assert parse_subject(VALID_AS_BOTH, kind=SubjectKind.ENTERPRISE).kind is SubjectKind.ENTERPRISE


def test_explicit_enterprise_kind_checks_resident_id_as_code(rejects: Rejects) -> None:
    error = rejects("11010519491231002X", kind=SubjectKind.ENTERPRISE)
    assert "invalid unified social credit code" in error.detail


def test_explicit_person_kind_checks_code_as_resident_id(rejects: Rejects) -> None:
    error = rejects("91350100M000100Y43", kind=SubjectKind.PERSON)
    assert "invalid resident ID number" in error.detail


def test_explicit_person_kind_accepts_resident_id() -> None:
    assert parse_subject("120104198503120042", kind=SubjectKind.PERSON).kind is SubjectKind.PERSON


def test_all_digit_value_valid_only_as_code_is_an_enterprise() -> None:
    # A valid GB 32100 code made only of digits whose GB 11643 check fails.
    for seq in range(1000):
        candidate = make_uscc(f"11010519491231{seq:03d}")
        if candidate.isdigit() and resident_id_problems(candidate):
            break
    else:  # pragma: no cover - the search space holds many
        pytest.fail("no all-digit code found")
    assert parse_subject(candidate).kind is SubjectKind.ENTERPRISE


# --- properties ---------------------------------------------------------------------

uscc_bodies = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@st.composite
def resident_bodies(draw: st.DrawFn) -> str:
    """17 digits with a real province prefix and a real birth date: only the check can fail."""
    prefix = draw(st.sampled_from(PROVINCE_PREFIXES))
    rest_of_address = draw(st.integers(0, 9999))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)))
    sequence = draw(st.integers(0, 999))
    return f"{prefix}{rest_of_address:04d}{born:%Y%m%d}{sequence:03d}"


@settings(database=None, deadline=None)
@given(uscc_bodies)
def test_made_codes_parse_as_enterprises(body: str) -> None:
    code = make_uscc(body)
    assert len(code) == 18
    if not body[2:8].isdigit():
        assert uscc_problems(code)
        return
    assert uscc_problems(code) == []
    assert parse_subject(code, kind=SubjectKind.ENTERPRISE) == Subject(code, SubjectKind.ENTERPRISE)
    if resident_id_problems(code):  # not also a valid resident ID number
        assert parse_subject(code).kind is SubjectKind.ENTERPRISE


@settings(database=None, deadline=None)
@given(
    st.text(alphabet=USCC_ALPHABET, min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9),
)
def test_made_codes_with_digit_divisions_parse_as_enterprises(head: str, division: str, org: str) -> None:
    code = make_uscc(head + division + org)
    assert uscc_problems(code) == []
    assert parse_subject(code, kind=SubjectKind.ENTERPRISE).id == code


@settings(database=None, deadline=None)
@given(
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    uscc_bodies,
    st.integers(0, 17),
    st.integers(1, len(USCC_ALPHABET) - 1),
)
def test_any_single_substitution_in_a_code_is_detected(division: str, body: str, pos: int, shift: int) -> None:
    code = make_uscc(body[:2] + division + body[8:])
    assert uscc_problems(code) == []
    replacement = USCC_ALPHABET[(USCC_ALPHABET.index(code[pos]) + shift) % len(USCC_ALPHABET)]
    assert replacement != code[pos]
    assert uscc_problems(_with_char(code, pos, replacement))


@settings(database=None, deadline=None)
@given(resident_bodies())
def test_made_resident_ids_parse_as_persons(body: str) -> None:
    number = make_resident_id(body)
    assert resident_id_problems(number) == []
    assert parse_subject(number) == Subject(number, SubjectKind.PERSON)


@settings(database=None, deadline=None)
@given(resident_bodies(), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_substitution_in_a_resident_id_is_detected(body: str, pos: int, shift: int) -> None:
    number = make_resident_id(body)
    replacement = str((int(number[pos]) + shift) % 10)
    changed = _with_char(number, pos, replacement)
    assert changed != number
    assert resident_id_problems(changed)
    with pytest.raises(InvalidIdentifier):
        parse_subject(changed, kind=SubjectKind.PERSON)


@settings(database=None, deadline=None)
@given(resident_bodies(), st.sampled_from("0123456789X"))
def test_only_the_right_check_character_is_accepted(body: str, check: str) -> None:
    problems = resident_id_problems(body + check)
    assert (problems == []) == (check == resident_id_check_char(body))


_CODE_CHARS = st.sampled_from("0123456789ABCDEFGHJKLMNPQRTUWXYZIOSV x-１")


@settings(max_examples=400)
@given(
    st.lists(
        st.one_of(
            st.text(_CODE_CHARS, min_size=0, max_size=20),
            st.text(st.sampled_from("0123456789ABCDEFGHJKLMNPQRTUWXY"), min_size=17, max_size=17).map(
                lambda body: make_uscc(body)
            ),
            st.text(st.sampled_from("0123456789"), min_size=17, max_size=17).map(lambda body: body + "X"),
        ),
        max_size=30,
    )
)
def test_parse_subjects_agrees_with_parse_subject(raws: list[str]) -> None:
    """The batch form answers exactly as one-at-a-time parsing: the same subject, or its reason."""
    from credit.identifiers import parse_subjects

    pilot = frozenset(raws[:1])
    today = date(2025, 6, 16)
    expected: list[object] = []
    for raw in raws:
        try:
            expected.append(parse_subject(raw, pilot_codes=pilot, today=today))
        except InvalidIdentifier as exc:
            expected.append(exc.detail)
    assert parse_subjects(raws, pilot_codes=pilot, today=today) == expected


# Values near the valid ones: valid codes and ID numbers, each perhaps with one character
# changed, upper- or lower-cased, padded, cut short; and any text at all.
_DATES = st.dates(min_value=date(1850, 1, 1), max_value=date(2030, 12, 31))
_NEAR_VALID = st.one_of(
    st.builds(make_uscc, st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)),
    st.builds(
        lambda prefix, born, seq: make_resident_id(f"{prefix}0101{born:%Y%m%d}{seq:03d}"),
        st.sampled_from(["11", "12", "13", "99", "00"]),
        _DATES,
        st.integers(0, 999),
    ),
    st.builds(lambda digits: digits, st.text(alphabet="0123456789X", min_size=18, max_size=18)),
)


@st.composite
def _batch_values(draw: st.DrawFn) -> str:
    value = draw(st.one_of(_NEAR_VALID, st.text(max_size=20)))
    change = draw(st.sampled_from(["none", "char", "lower", "pad", "cut"]))
    if change == "char" and value:
        at = draw(st.integers(0, len(value) - 1))
        value = value[:at] + draw(st.sampled_from([*USCC_ALPHABET, "I", "x", " ", "é", "９"])) + value[at + 1 :]
    elif change == "lower":
        value = value.lower()
    elif change == "pad":
        value = f" {value}\t"
    elif change == "cut":
        value = value[:-1]
    return value


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_batch_values(), min_size=0, max_size=80), pilot=st.booleans())
def test_parsing_a_batch_over_arrays_agrees_with_one_at_a_time(values: list[str], pilot: bool) -> None:
    today = date(2026, 1, 15)
    pilot_codes = frozenset(v.strip().upper() for v in values[:3]) if pilot else frozenset()
    expected: list[Subject | str] = []
    for value in values:
        try:
            expected.append(parse_subject(value, pilot_codes=pilot_codes, today=today))
        except InvalidIdentifier as exc:
            expected.append(exc.detail)
    assert parse_subjects(values, pilot_codes=pilot_codes, today=today) == expected
    # What the arrays decide, they decide as parse_subject does.
    for value, code in zip(values, quick_kinds(values, today=today).tolist(), strict=True):
        if code:
            decided = parse_subject(value, today=today)
            assert decided.kind is (SubjectKind.ENTERPRISE if code == 1 else SubjectKind.PERSON)
            assert decided.id == value.upper() and not decided.warnings


def test_array_checks_take_real_dates_only() -> None:
    leap, not_leap = make_resident_id("11010520000229001"), make_resident_id("11010519000229001")
    late = make_resident_id("11010520260116001")
    assert quick_kinds([leap, not_leap, late, "", " " + leap], today=date(2026, 1, 15)).tolist() == [2, 0, 0, 0, 0]
    assert quick_kinds([late]).tolist() == [2]  # no today: no upper bound
