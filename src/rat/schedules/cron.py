"""Cron expressions as RAT accepts them: 5 fields, 6 with leading seconds, or an @alias; IANA zones.

Pure functions (croniter + zoneinfo); every `datetime` in and out is timezone-aware, results in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from rat.core.errors import Invalid

MAX_CRON_CHARS = 200
ALIASES = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")


def check_cron(expr: object, field: str = "cron") -> str:
    """Return the normalised expression, or raise Invalid naming `field`."""
    if not isinstance(expr, str) or not expr.strip():
        raise Invalid(f"{field} is required")
    text = " ".join(expr.split())
    if len(text) > MAX_CRON_CHARS:
        raise Invalid(f"{field} must be at most {MAX_CRON_CHARS} characters")
    if text.startswith("@"):
        if text not in ALIASES:
            raise Invalid(f"{field}: unknown alias {text!r} (use {', '.join(ALIASES)})")
        return text
    fields = len(text.split(" "))
    if fields not in (5, 6) or not croniter.is_valid(text, second_at_beginning=fields == 6):
        raise Invalid(f"{field}: {text!r} is not a valid cron expression "
                      "(5 fields, or 6 with leading seconds, or @hourly/@daily/…)")
    try:
        next_after(text, "UTC", datetime.now(UTC))
    except Invalid:
        raise Invalid(f"{field}: {text!r} never matches a date") from None
    return text


def check_timezone(name: object, field: str = "timezone") -> str:
    if not isinstance(name, str) or not name:
        raise Invalid(f"{field} must be an IANA time zone name such as UTC or Europe/Paris")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"{field}: unknown time zone {name!r}") from None
    return name


def has_seconds(expr: str) -> bool:
    return not expr.startswith("@") and len(expr.split(" ")) == 6


def next_after(expr: str, timezone: str, after: datetime) -> datetime:
    """The first occurrence strictly after `after`, evaluated in `timezone`, as UTC."""
    start = after.astimezone(ZoneInfo(timezone))
    try:
        nxt = croniter(expr, start, second_at_beginning=has_seconds(expr)).get_next(datetime)
    except CroniterBadDateError:
        raise Invalid(f"{expr!r} has no next occurrence") from None
    return nxt.astimezone(UTC)
