"""Times as people in China read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from credit.clock import beijing_text, iso_z, parse_iso


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-12-02T07:30:49Z", "2026年12月2日 15:30:49"),
        ("2026-12-02T17:30:00Z", "2026年12月3日 01:30:00"),  # past midnight in Beijing: the next day
        (datetime(2026, 1, 5, 16, 0, tzinfo=UTC), "2026年1月6日 00:00:00"),
        (datetime(2026, 1, 5, 8, 0), "2026年1月5日 16:00:00"),  # naive: UTC, as the databases hand back
        (datetime(2026, 1, 5, 8, 0, tzinfo=timezone(timedelta(hours=8))), "2026年1月5日 08:00:00"),
        ("2026-11-23", "2026年11月23日"),
        (None, ""),
        ("", ""),
        ("不是时间", "不是时间"),
    ],
)
def test_beijing_text(value: object, shown: str) -> None:
    assert beijing_text(value) == shown  # type: ignore[arg-type]


def test_minutes_only_and_the_iso_round_trip() -> None:
    moment = datetime(2026, 12, 2, 7, 30, 49, tzinfo=UTC)
    assert beijing_text(moment, seconds=False) == "2026年12月2日 15:30"
    assert parse_iso(iso_z(moment)) == moment
