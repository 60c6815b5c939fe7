"""The report window: N years up to a data cut-off N working days before application.

"可申请查询日起7个工作日前3年或5年" (seed 002): the data cut-off is the 7th working day
before the application date, counting Chinese public holidays and the weekend days
that are made into working days (调休). The window runs from the same calendar day N
years before the cut-off up to and including the cut-off.

Working days come from the maintained ``chinese_calendar`` package. For a year it does
not know yet (the State Council publishes each year's schedule late in the year before),
the calculation falls back to Monday–Friday and says so in the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Protocol

import chinese_calendar

from credit.errors import InvalidWindow
from credit.profiles import ReportProfile


class WorkdayCalendar(Protocol):
    def is_workday(self, day: date) -> bool | None:
        """True or False when the calendar knows the day; None when it does not."""


class ChinaCalendar:
    """Official Chinese working days, from the ``chinese_calendar`` package."""

    def is_workday(self, day: date) -> bool | None:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return None


CHINA = ChinaCalendar()


@dataclass(frozen=True, slots=True)
class ReportWindow:
    application_date: date
    years: int
    start: date
    cutoff: date
    # False when some day in the cut-off count fell in a year the calendar does not know,
    # so that Monday–Friday were taken as the working days.
    calendar_exact: bool

    @property
    def calendar_note(self) -> str:
        if self.calendar_exact:
            return ""
        return (
            "节假日安排未公布，截止日按周一至周五推算 "
            "(holiday schedule not yet published for this period: cut-off counted on Monday–Friday)"
        )

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.cutoff


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year - years, day=28)


def working_days_before(day: date, count: int, calendar: WorkdayCalendar = CHINA) -> tuple[date, bool]:
    """The ``count``-th working day before ``day``, and whether the calendar knew every day.

    Raises:
        ValueError: ``count`` is not positive.
    """
    if count < 1:
        raise ValueError("count must be positive")
    exact = True
    current = day
    found = 0
    while found < count:
        current -= timedelta(days=1)
        known = calendar.is_workday(current)
        if known is None:
            exact = False
            known = current.weekday() < 5
        if known:
            found += 1
    return current, exact


@lru_cache(maxsize=1024)
def compute_window(
    application_date: date,
    years: int,
    profile: ReportProfile,
    *,
    calendar: WorkdayCalendar = CHINA,
) -> ReportWindow:
    """The window a report made on ``application_date`` covers.

    ``years`` of 0 means the profile's default. Results are cached: every query on a
    day asks for the same few windows.

    Raises:
        InvalidWindow: ``years`` is not one the profile offers, or the date is absurd.
    """
    years = years or profile.default_years
    if years not in profile.window_years:
        offered = " or ".join(str(y) for y in profile.window_years)
        raise InvalidWindow.for_field(
            "years", f"查询期限只能为 {offered} 年 (window must be {offered} years, got {years})"
        )
    if application_date.year < 2000 or application_date.year > 2200:
        raise InvalidWindow.for_field(
            "application_date", f"申请日期 {application_date.isoformat()} 超出范围 (application date out of range)"
        )
    cutoff, exact = working_days_before(application_date, profile.cutoff_working_days, calendar)
    return ReportWindow(
        application_date=application_date,
        years=years,
        start=_years_before(cutoff, years),
        cutoff=cutoff,
        calendar_exact=exact,
    )
