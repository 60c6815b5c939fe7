"""The report window: a cut-off 7 Chinese working days before application, 3 or 5 years back."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, timedelta

import pytest

from credit.errors import InvalidWindow
from credit.profiles import ReportProfile, get_profile
from credit.window import CHINA, ReportWindow, WorkdayCalendar, compute_window, working_days_before


class FakeCalendar:
    """A WorkdayCalendar: listed holidays and make-up days; unknown (None) from a given year on."""

    def __init__(
        self, *, holidays: Iterable[date] = (), makeup: Iterable[date] = (), unknown_from: int | None = None
    ) -> None:
        self.holidays = frozenset(holidays)
        self.makeup = frozenset(makeup)
        self.unknown_from = unknown_from
        self.asked: list[date] = []

    def is_workday(self, day: date) -> bool | None:
        self.asked.append(day)
        if self.unknown_from is not None and day.year >= self.unknown_from:
            return None
        if day in self.makeup:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5


Window = Callable[..., ReportWindow]


@pytest.fixture
def tianjin() -> ReportProfile:
    return get_profile("tianjin-2023")


@pytest.fixture
def window(tianjin: ReportProfile) -> Window:
    """A builder: the window for an application date under the Tianjin profile."""

    def build(application: date, years: int = 3, **kwargs: object) -> ReportWindow:
        return compute_window(application, years, tianjin, **kwargs)  # type: ignore[arg-type]

    return build


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _weekday_count_back(day: date, count: int) -> date:
    """Independent Monday–Friday count, for comparison."""
    while count:
        day -= timedelta(days=1)
        if day.isoweekday() <= 5:
            count -= 1
    return day


# --- the real calendar ------------------------------------------------------------------


def test_real_calendar_knows_the_2025_spring_festival() -> None:
    assert all(CHINA.is_workday(d) is False for d in _days(date(2025, 1, 28), date(2025, 2, 4)))
    assert CHINA.is_workday(date(2025, 1, 26)) is True  # make-up Sunday
    assert CHINA.is_workday(date(2025, 2, 8)) is True  # make-up Saturday
    assert CHINA.is_workday(date(2025, 1, 25)) is False  # ordinary Saturday


def test_real_calendar_says_none_for_unknown_years() -> None:
    assert CHINA.is_workday(date(2031, 3, 10)) is None


def test_cutoff_across_2025_spring_festival(window: Window) -> None:
    # Back from Mon 10 Feb: Sat 8 (make-up) 1, Fri 7 2, Thu 6 3, Wed 5 4, 28 Jan–4 Feb holidays,
    # Mon 27 Jan 5, Sun 26 (make-up) 6, Sat 25 no, Fri 24 Jan 7.
    result = window(date(2025, 2, 10))
    assert result.cutoff == date(2025, 1, 24)
    assert result.start == date(2022, 1, 24)
    assert result.years == 3
    assert result.application_date == date(2025, 2, 10)
    assert result.calendar_exact is True
    assert result.calendar_note == ""


def test_five_year_window_across_2025_spring_festival(window: Window) -> None:
    result = window(date(2025, 2, 10), 5)
    assert result.cutoff == date(2025, 1, 24)
    assert result.start == date(2020, 1, 24)
    assert result.years == 5


def test_cutoff_across_2025_national_day(window: Window) -> None:
    # Back from Mon 13 Oct: Sun 12 no, Sat 11 (make-up) 1, Fri 10 2, Thu 9 3, 1–8 Oct holidays,
    # Tue 30 Sep 4, Mon 29 5, Sun 28 (make-up) 6, Sat 27 no, Fri 26 Sep 7.
    result = window(date(2025, 10, 13))
    assert result.cutoff == date(2025, 9, 26)
    assert result.start == date(2022, 9, 26)
    assert result.calendar_exact is True


def test_cutoff_on_a_make_up_working_day(window: Window) -> None:
    # Back from Fri 17 Oct 2025: 16, 15, 14, 13 (1–4), Sun 12 no, Sat 11 (make-up) 5, Fri 10 6, Thu 9 7.
    assert window(date(2025, 10, 17)).cutoff == date(2025, 10, 9)
    # Back from Thu 6 Feb 2025: Wed 5 1, 28 Jan–4 Feb holidays, Mon 27 2, Sun 26 (make-up) 3,
    # Fri 24 4, Thu 23 5, Wed 22 6, Tue 21 7.
    assert window(date(2025, 2, 6)).cutoff == date(2025, 1, 21)


def test_holidays_push_the_cutoff_back_beyond_a_weekday_count(window: Window) -> None:
    application = date(2025, 10, 13)
    assert _weekday_count_back(application, 7) == date(2025, 10, 2)
    assert window(application).cutoff < _weekday_count_back(application, 7)


def test_ordinary_week_cutoff(window: Window) -> None:
    # Mon 16 Jun 2025: 13, 12, 11, 10, 9 Jun, then Fri 6, Thu 5 Jun (Dragon Boat was 31 May–2 Jun).
    result = window(date(2025, 6, 16))
    assert result.cutoff == date(2025, 6, 5)
    assert result.start == date(2022, 6, 5)


def test_unknown_year_falls_back_to_monday_to_friday(window: Window) -> None:
    application = date(2031, 3, 10)
    result = window(application)
    assert result.calendar_exact is False
    assert result.calendar_note
    assert "Monday–Friday" in result.calendar_note
    assert result.cutoff == _weekday_count_back(application, 7)
    assert result.cutoff == date(2031, 2, 27)
    assert result.start == date(2028, 2, 27)


def test_cutoff_count_partly_in_an_unknown_year_is_not_exact(tianjin: ReportProfile) -> None:
    calendar = FakeCalendar(unknown_from=2031)
    result = compute_window(date(2031, 1, 3), 3, tianjin, calendar=calendar)
    assert result.calendar_exact is False
    # Fri 3 Jan 2031 back: Thu 2, Wed 1 (unknown, weekdays) then 2030 Tue 31, Mon 30, 27, 26, 25 Dec.
    assert result.cutoff == date(2030, 12, 25)


def test_only_days_in_the_count_decide_exactness(tianjin: ReportProfile) -> None:
    calendar = FakeCalendar(unknown_from=2031)
    result = compute_window(date(2030, 12, 31), 3, tianjin, calendar=calendar)
    assert result.calendar_exact is True
    assert all(d < date(2030, 12, 31) for d in calendar.asked)


def test_years_zero_means_profile_default(window: Window, tianjin: ReportProfile) -> None:
    result = window(date(2025, 2, 10), 0)
    assert result.years == tianjin.default_years == 3
    assert result.start == date(2022, 1, 24)


@pytest.mark.parametrize("years", [1, 2, 4, 10, -3])
def test_years_the_profile_does_not_offer_are_rejected(window: Window, years: int) -> None:
    with pytest.raises(InvalidWindow) as caught:
        window(date(2025, 2, 10), years)
    assert caught.value.violations[0].field == "years"
    assert "3 or 5" in caught.value.detail


@pytest.mark.parametrize("application", [date(1999, 12, 31), date(2201, 1, 1)])
def test_absurd_application_dates_are_rejected(window: Window, application: date) -> None:
    with pytest.raises(InvalidWindow) as caught:
        window(application)
    assert caught.value.violations[0].field == "application_date"


def test_cutoff_on_29_february(window: Window) -> None:
    # Back from Mon 11 Mar 2024: 8, 7, 6, 5, 4 Mar, Fri 1 Mar, Thu 29 Feb.
    three = window(date(2024, 3, 11))
    assert three.cutoff == date(2024, 2, 29)
    assert three.start == date(2021, 2, 28)
    assert window(date(2024, 3, 11), 5).start == date(2019, 2, 28)


def test_29_february_cutoff_four_years_later_keeps_the_day(tianjin: ReportProfile) -> None:
    every_day_works = FakeCalendar(makeup=_days(date(2028, 1, 1), date(2028, 12, 31)))
    result = compute_window(date(2028, 3, 7), 5, tianjin, calendar=every_day_works)
    assert result.cutoff == date(2028, 2, 29)
    assert result.start == date(2023, 2, 28)
    assert result.contains(date(2023, 2, 28))
    assert not result.contains(date(2023, 2, 27))


def test_window_contains_both_ends(window: Window) -> None:
    result = window(date(2025, 2, 10))
    assert result.contains(result.start)
    assert result.contains(result.cutoff)
    assert not result.contains(result.start - timedelta(days=1))
    assert not result.contains(result.cutoff + timedelta(days=1))
    assert not result.contains(result.application_date)


# --- the calendar seam ------------------------------------------------------------------


def test_injected_calendar_decides_working_days(tianjin: ReportProfile) -> None:
    calendar: WorkdayCalendar = FakeCalendar(
        holidays=_days(date(2030, 5, 1), date(2030, 5, 5)), makeup=[date(2030, 5, 11)]
    )
    # Mon 13 May 2030 back: Sun 12 no, Sat 11 (make-up) 1, Fri 10 2, 9 3, 8 4, 7 5, 6 6,
    # 1–5 May holidays, Tue 30 Apr 7.
    result = compute_window(date(2030, 5, 13), 3, tianjin, calendar=calendar)
    assert result.cutoff == date(2030, 4, 30)
    assert result.calendar_exact is True
    assert compute_window(date(2030, 5, 13), 3, tianjin, calendar=FakeCalendar()).cutoff == date(2030, 5, 2)


def test_working_days_before_counts_only_workdays() -> None:
    every_day = FakeCalendar(makeup=_days(date(2030, 1, 1), date(2030, 12, 31)))
    assert working_days_before(date(2030, 6, 10), 7, every_day) == (date(2030, 6, 3), True)
    assert working_days_before(date(2030, 6, 10), 1, FakeCalendar()) == (date(2030, 6, 7), True)


def test_working_days_before_falls_back_when_calendar_knows_nothing() -> None:
    nothing = FakeCalendar(unknown_from=1)
    assert working_days_before(date(2030, 6, 10), 7, nothing) == (_weekday_count_back(date(2030, 6, 10), 7), False)


def test_working_days_before_never_counts_the_day_itself() -> None:
    calendar = FakeCalendar()
    working_days_before(date(2030, 6, 12), 3, calendar)
    assert date(2030, 6, 12) not in calendar.asked


@pytest.mark.parametrize("count", [0, -1])
def test_working_days_before_needs_a_positive_count(count: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        working_days_before(date(2030, 6, 10), count, FakeCalendar())
