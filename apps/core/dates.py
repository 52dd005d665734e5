"""How every channel writes a moment: ISO 8601 in UTC with a `Z`, or None for no moment."""

from datetime import datetime


def iso_utc(value: datetime | None) -> str | None:
    """`2026-12-03T10:39:32.123456Z` for an aware UTC datetime (what the database returns), None for None."""
    return value.isoformat().replace("+00:00", "Z") if value else None
