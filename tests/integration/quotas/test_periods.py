"""Quota periods with a fixed clock: names, bounds and rollover, in UTC whatever the moment's time zone."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from apps.quotas.periods import period_bounds, period_key


@pytest.mark.parametrize(
    ("moment", "period", "key", "start", "end"),
    [
        (
            datetime(2026, 11, 24, 14, 1, tzinfo=UTC),
            "month",
            "2026-11",
            datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC),
            "month",
            "2026-11",
            datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 1, tzinfo=UTC),
            "month",
            "2026-12",
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
            "month",
            "2026-12",
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (
            datetime(2028, 2, 29, 12, tzinfo=UTC),
            "month",
            "2028-02",
            datetime(2028, 2, 1, tzinfo=UTC),
            datetime(2028, 3, 1, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 24, 14, 1, tzinfo=UTC),
            "day",
            "2026-11-24",
            datetime(2026, 11, 24, tzinfo=UTC),
            datetime(2026, 11, 25, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
            "day",
            "2026-12-31",
            datetime(2026, 12, 31, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (
            datetime(2028, 2, 28, 23, tzinfo=UTC),
            "day",
            "2028-02-28",
            datetime(2028, 2, 28, tzinfo=UTC),
            datetime(2028, 2, 29, tzinfo=UTC),
        ),
    ],
)
def test_period_key_and_bounds(moment, period, key, start, end):
    assert period_key(moment, period) == key
    assert period_bounds(moment, period) == (start, end)


def test_the_period_is_taken_in_utc():
    # 1 December 00:30 in Paris (UTC+1) is still 30 November in UTC; 30 November 20:00 in New York is 1 December.
    paris = datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    new_york = datetime(2026, 11, 30, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert (period_key(paris, "month"), period_key(paris, "day")) == ("2026-11", "2026-11-30")
    assert (period_key(new_york, "month"), period_key(new_york, "day")) == ("2026-12", "2026-12-01")


def test_consecutive_periods_meet_without_gap_or_overlap():
    moment = datetime(2026, 1, 15, tzinfo=UTC)
    for period in ("month", "day"):
        for _ in range(40):
            start, end = period_bounds(moment, period)
            assert start <= moment < end
            assert period_bounds(end, period)[0] == end
            assert period_key(end - timedelta(microseconds=1), period) != period_key(end, period)
            moment = end + timedelta(hours=5)


def test_an_unknown_period_is_refused():
    with pytest.raises(ValueError, match="unknown quota period 'week'"):
        period_key(datetime(2026, 1, 1, tzinfo=UTC), "week")
