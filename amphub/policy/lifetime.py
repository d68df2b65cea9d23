"""A space's status follows the clock: in use, grace period, retention period, released."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from enum import StrEnum

BILLING_MODES = ("monthly", "yearly", "pay_as_you_go")


class Status(StrEnum):
    """Where a space is in its lifetime."""

    IN_USE = "in_use"
    GRACE_PERIOD = "grace_period"
    RETENTION_PERIOD = "retention_period"
    RELEASED = "released"


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later, on the month's last day where it is shorter."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def expiration(billing_mode: str, start: datetime, period: int) -> datetime | None:
    """When a prepaid period bought at `start` ends; pay-as-you-go never expires."""
    if billing_mode == "monthly":
        return add_months(start, period)
    if billing_mode == "yearly":
        return add_months(start, 12 * period)
    return None


def status(
    expires_at: datetime | None, now: datetime, grace_days: int, retention_days: int
) -> Status:
    """The status of a space at `now`."""
    if expires_at is None or now < expires_at:
        return Status.IN_USE
    grace_end = expires_at + timedelta(days=grace_days)
    if now < grace_end:
        return Status.GRACE_PERIOD
    if now < grace_end + timedelta(days=retention_days):
        return Status.RETENTION_PERIOD
    return Status.RELEASED
