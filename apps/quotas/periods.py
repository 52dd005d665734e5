"""Quota periods: the calendar month (or day), in UTC, that a moment falls in, its bounds and its name."""

from datetime import UTC, datetime, timedelta

PERIODS = ("month", "day")


def period_bounds(moment: datetime, period: str) -> tuple[datetime, datetime]:
    """[start, end) of the period containing `moment`, both aware UTC datetimes."""
    moment = moment.astimezone(UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if period == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    raise ValueError(f"unknown quota period {period!r}: one of {', '.join(PERIODS)}")


def period_key(moment: datetime, period: str) -> str:
    """The period's name, shown to users and part of its counter's key: "2026-11" (month), "2026-11-24" (day)."""
    start, _ = period_bounds(moment, period)
    return start.strftime("%Y-%m" if period == "month" else "%Y-%m-%d")
