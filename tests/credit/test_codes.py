"""Verification codes: typable, forgiving, and every single typo caught by the check character."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credit.codes import (
    ALPHABET,
    luhn32_check,
    new_report_number,
    new_verification_code,
    parse_verification_code,
    random_characters,
)
from credit.errors import InvalidInput


def test_fresh_codes_parse_and_are_distinct() -> None:
    codes = {new_verification_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert parse_verification_code(code) == code
        assert len(code.replace("-", "")) == 17


def test_reading_is_forgiving() -> None:
    code = new_verification_code()
    sloppy = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert parse_verification_code(sloppy) == code


@pytest.mark.parametrize(("raw", "needle"), [("ABC", "17"), ("U" * 17, "'U'"), ("", "17")])
def test_malformed_codes_say_why(raw: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_verification_code(raw)
    assert needle in caught.value.detail


@given(st.text(alphabet=ALPHABET, min_size=16, max_size=16), st.integers(0, 16), st.integers(1, 31))
def test_any_single_character_typo_is_detected(body: str, position: int, shift: int) -> None:
    code = body + luhn32_check(body)
    typo = code[:position] + ALPHABET[(ALPHABET.index(code[position]) + shift) % 32] + code[position + 1 :]
    with pytest.raises(InvalidInput):
        parse_verification_code(typo)


def test_report_numbers_carry_the_date() -> None:
    number = new_report_number(date(2025, 6, 16))
    assert number.startswith("JJJ-20250616-") and len(number) == 23


def test_random_characters_cover_the_alphabet_in_every_position() -> None:
    # Each character carries 5 random bits: over 2,000 draws every position shows every
    # character of the alphabet (a missing one would have odds below 1e-20).
    drawn = [random_characters(10) for _ in range(2000)]
    assert all(len(chars) == 10 and set(chars) <= set(ALPHABET) for chars in drawn)
    for position in range(10):
        assert {chars[position] for chars in drawn} == set(ALPHABET)


@pytest.mark.parametrize("count", [1, 7, 8, 10, 16, 20])
def test_random_characters_of_any_length(count: int) -> None:
    assert len(random_characters(count)) == count
