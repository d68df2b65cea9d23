"""A space's status follows the clock: in use, grace period, retention period, released."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from amphub.policy.matrix import Action

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


# What a space still allows while it is expired but not yet released.
WRITES = frozenset({Action.WRITE_FILES, Action.CREATE_MODEL, Action.EDIT, Action.DELETE})
ALLOWED_IN_RETENTION = frozenset({Action.USE_SPACE, Action.RENEW_SPACE})


@dataclass(frozen=True)
class Lifetime:
    """A space's expiration and the ends of its grace and retention periods."""

    expires_at: datetime | None
    grace_days: int
    retention_days: int

    @property
    def grace_end(self) -> datetime | None:
        """When the grace period ends."""
        return self.expires_at + timedelta(days=self.grace_days) if self.expires_at else None

    @property
    def retention_end(self) -> datetime | None:
        """When the retention period ends and the space is released."""
        grace_end = self.grace_end
        return grace_end + timedelta(days=self.retention_days) if grace_end else None

    def status(self, now: datetime) -> Status:
        """The status at `now`."""
        return status(self.expires_at, now, self.grace_days, self.retention_days)


def refusal(space_id: str, lifetime: Lifetime, now: datetime, action: Action) -> str | None:
    """Why the space's lifetime forbids `action` now, or None if it does not."""
    current = lifetime.status(now)
    day = "%Y-%m-%d %H:%M UTC"
    if current is Status.GRACE_PERIOD and action in WRITES:
        return (
            f"space {space_id} expired on {lifetime.expires_at:{day}} and is read-only until"
            f" {lifetime.grace_end:{day}}; renew it to push and upload again"
        )
    if current is Status.RETENTION_PERIOD and action not in ALLOWED_IN_RETENTION:
        return (
            f"space {space_id} expired on {lifetime.expires_at:{day}}; its data is kept until"
            f" {lifetime.retention_end:{day}}, but nothing can be read or written until its"
            " owner renews it"
        )
    return None
