"""One way to write a moment: ISO 8601 UTC with a Z, and no duplicate of it left in the apps."""

from datetime import UTC, datetime
from pathlib import Path

from apps.core.dates import iso_utc

APPS = Path(__file__).resolve().parents[3] / "apps"


def test_a_moment_in_utc_ends_in_z():
    assert iso_utc(datetime(2026, 12, 3, 10, 39, 32, 123456, tzinfo=UTC)) == "2026-12-03T10:39:32.123456Z"
    assert iso_utc(None) is None


def test_no_app_formats_a_moment_by_hand():
    by_hand = 'isoformat().replace("+00:00", "Z")'
    offenders = sorted(str(p.relative_to(APPS)) for p in APPS.rglob("*.py") if by_hand in p.read_text())
    assert offenders == ["core/dates.py"]
