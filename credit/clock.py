"""Time as the reports speak it: China Standard Time for days, UTC with a ``Z`` for instants."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

CHINA_TZ = ZoneInfo("Asia/Shanghai")


def china_today() -> date:
    """Today's date in China Standard Time: the day an application is made on."""
    return datetime.now(CHINA_TZ).date()


def china_date(moment: datetime) -> date:
    """The calendar day ``moment`` falls on in China Standard Time."""
    return moment.astimezone(CHINA_TZ).date()


def iso_z(moment: datetime, timespec: str = "seconds") -> str:
    """``moment`` in UTC as ISO 8601 ending in ``Z`` (``2026-12-02T07:30:49Z``); a naive
    ``moment`` is taken as UTC (what the databases hand back)."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_z_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso_z(moment)


def parse_iso(text: str) -> datetime:
    """An ISO 8601 instant, ``Z`` accepted (what :func:`iso_z` writes).

    Raises:
        ValueError: not an ISO 8601 date and time.
    """
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def beijing_text(moment: datetime | str | None, *, seconds: bool = True) -> str:
    """An instant as people in China read it: Beijing time in the Chinese date format
    (``2026年12月2日 15:30:49``). Takes a datetime (naive = UTC) or the ISO text a
    document holds; a day alone (``2026-12-02``) prints as ``2026年12月2日``; empty for
    None or empty text, and text that is no date is shown as it is.

    Raises nothing.
    """
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        text = moment
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                return f"{day.year}年{day.month}月{day.day}日"
            instant = parse_iso(text)
        except ValueError:
            return text
    else:
        instant = moment
    instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    local = instant.astimezone(CHINA_TZ)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{local.year}年{local.month}月{local.day}日 {clock}"
