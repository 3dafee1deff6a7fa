"""SMS about bookings (confirmation, the day-before reminder, a cancellation by staff), sent
by a scheduler in the gateway process.

The bookings are SQL records; due notices wait in one Redis sorted set (member
"<kind>:<booking id>", score = due epoch), and the reminders still ahead are put back from the
records when the notifier starts and hourly after, so a Redis flush costs no reminder. A notice
is claimed with a lease (indgang/outbox.py), not removed: it leaves the set only after Twilio
took it, so a crash between claiming and sending delays it by the lease, and a refusal (Twilio
failing, or the SMS throttle) is tried again with back-off while it still matters.
Before removing it, the notifier records that it was sent (with the booking's start), so a
notice claimed again after a crash in between is not sent twice. One window remains: a crash
after Twilio took the SMS but before that record is written sends it again once (Twilio's
Messages API has no idempotency key to close it). The text is written at sending time from the
booking as it is then: a moved booking reminds of its new time, a cancelled one not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from indgang import keys
from indgang.background import BackgroundLoop
from indgang.booking.bookings import (
    Booking,
    BookingState,
    Notice,
    forget_expired,
    get_booking,
    restore_reminders,
)
from indgang.booking.texts import sms_text
from indgang.outbox import Claim, LeasedSet
from indgang.records.db import Database
from indgang.settings import Settings

log = logging.getLogger(__name__)

SendSms = Callable[[str, str], Awaitable[None]]  # (to E.164, text)
Clock = Callable[[], datetime]
Outcome = Literal["sent", "sent_before", "retry"]
RETRY_SECONDS = 300  # a refused SMS is tried again this much later (doubling), while it matters
MAX_RETRY_SECONDS = 6 * 60 * 60
CLAIM_BATCH = 50
RESTORE_SECONDS = 60 * 60  # how often the reminders still ahead are checked against the queue


def utc_now() -> datetime:
    return datetime.now(UTC)


class BookingNotifier:
    """Sends due booking SMS; `clock` is injectable so tests can move time."""

    def __init__(
        self,
        db: Database,
        redis: aioredis.Redis,
        settings: Settings,
        send_sms: SendSms,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.redis = redis
        self.settings = settings
        self.send_sms = send_sms
        self.clock = clock
        self.leases = LeasedSet(redis, keys.booking_notifications(), settings.outbox_lease_seconds)
        interval = settings.booking_scheduler_interval_seconds
        self._restored_at: datetime | None = None
        self._loop = BackgroundLoop("booking-notifier", self.run_once, pause=interval, error_pause=interval)

    async def run_once(self) -> int:
        """Send every notice due now; returns how many SMS were sent. Bookings past their
        retention time are deleted on the way."""
        now = self.clock()
        await forget_expired(self.db, now)
        if self._restored_at is None or now - self._restored_at >= timedelta(seconds=RESTORE_SECONDS):
            await restore_reminders(self.db, self.redis, self.settings, now)
            self._restored_at = now
        sent = 0
        for claim in await self.leases.claim(now.timestamp(), CLAIM_BATCH):
            kind, _, booking_id = claim.member.partition(":")
            booking = await get_booking(self.db, booking_id, now)
            if self._still_matters(Notice(kind), booking, now):
                assert booking is not None
                outcome = await self._send_once(claim, Notice(kind), booking, now)
                if outcome == "retry":
                    continue
                sent += outcome == "sent"
            await self.redis.hdel(keys.booking_notice_attempts(), claim.member)
            await self.leases.done(claim)
        return sent

    def _still_matters(self, kind: Notice, booking: Booking | None, now: datetime) -> bool:
        if booking is None or booking.start <= now:
            return False  # erased, expired or over: nothing left to say
        if kind != Notice.CANCELLED and booking.state != BookingState.CONFIRMED:
            return False
        # A reminder delayed past its day would say "tomorrow" wrongly.
        return kind != Notice.REMINDER or self._is_day_before(booking, now)

    async def _send_once(self, claim: Claim, kind: Notice, booking: Booking, now: datetime) -> Outcome:
        """Send unless this notice for this booking time was sent already (claimed again after a
        crash); "retry" when it was refused and is to be tried again."""
        sent_key = keys.booking_notice_sent(claim.member)
        if await self.redis.get(sent_key) == booking.start.isoformat():
            return "sent_before"
        try:
            await self.send_sms(booking.phone, sms_text(kind, booking, self.settings))
        except Exception:
            attempts = await self.redis.hincrby(keys.booking_notice_attempts(), claim.member, 1)
            wait = min(RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
            log.exception("booking SMS not sent; retrying later", extra={"booking_id": booking.id})
            await self.leases.retry(claim, now.timestamp() + wait)
            return "retry"
        expire_at = int(booking.start.timestamp()) + 1
        await self.redis.set(sent_key, booking.start.isoformat(), exat=expire_at)
        return "sent"

    def _is_day_before(self, booking: Booking, now: datetime) -> bool:
        tz = ZoneInfo(self.settings.booking_timezone)
        return now.astimezone(tz).date() == booking.start.astimezone(tz).date() - timedelta(days=1)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
