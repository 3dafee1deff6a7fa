"""SMS about bookings (confirmation, the day-before reminder, a cancellation by staff), sent
by a scheduler in the gateway process.

Due notices wait in one Redis sorted set (member "<kind>:<booking id>", score = due epoch).
A Lua script claims due members and removes them in one step, so when several gateway
replicas run the scheduler, each notice is sent by exactly one of them. The text is written
at sending time from the booking as it is then: a moved booking reminds of its new time, a
cancelled one is not reminded at all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from indgang import keys
from indgang.background import BackgroundLoop
from indgang.booking.bookings import Booking, BookingState, Notice, get_booking, notice_member
from indgang.booking.texts import sms_text
from indgang.settings import Settings

log = logging.getLogger(__name__)

SendSms = Callable[[str, str], Awaitable[None]]  # (to E.164, text)
Clock = Callable[[], datetime]
RETRY_SECONDS = 300  # a failed SMS is tried again this much later, while it still matters
CLAIM_BATCH = 50

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do redis.call('ZREM', KEYS[1], member) end
return due
"""


def utc_now() -> datetime:
    return datetime.now(UTC)


async def claim_due(
    redis: aioredis.Redis, now: datetime, limit: int = CLAIM_BATCH
) -> list[tuple[Notice, str]]:
    """Take the notices due by `now` off the queue; whoever claims one sends it."""
    script = redis.register_script(_CLAIM)
    members = await script(keys=[keys.booking_notifications()], args=[int(now.timestamp()), limit])
    claimed = []
    for member in members:
        kind, _, booking_id = member.partition(":")
        claimed.append((Notice(kind), booking_id))
    return claimed


class BookingNotifier:
    """Sends due booking SMS; `clock` is injectable so tests can move time."""

    def __init__(
        self, redis: aioredis.Redis, settings: Settings, send_sms: SendSms, clock: Clock = utc_now
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.send_sms = send_sms
        self.clock = clock
        interval = settings.booking_scheduler_interval_seconds
        self._loop = BackgroundLoop("booking-notifier", self.run_once, pause=interval, error_pause=interval)

    async def run_once(self) -> int:
        """Send every notice due now; returns how many SMS were sent."""
        now = self.clock()
        sent = 0
        for kind, booking_id in await claim_due(self.redis, now):
            booking = await get_booking(self.redis, booking_id)
            if booking is None or booking.start <= now:
                continue  # erased, expired or over: nothing left to say
            if kind != Notice.CANCELLED and booking.state != BookingState.CONFIRMED:
                continue
            if kind == Notice.REMINDER and not self._is_day_before(booking, now):
                continue  # a reminder delayed past its day would say "tomorrow" wrongly
            try:
                await self.send_sms(booking.phone, sms_text(kind, booking, self.settings))
                sent += 1
            except Exception:
                log.exception("booking SMS failed; retrying later", extra={"booking_id": booking_id})
                await self.redis.zadd(
                    keys.booking_notifications(),
                    {notice_member(kind, booking_id): int(now.timestamp()) + RETRY_SECONDS},
                )
        return sent

    def _is_day_before(self, booking: Booking, now: datetime) -> bool:
        tz = ZoneInfo(self.settings.booking_timezone)
        return now.astimezone(tz).date() == booking.start.astimezone(tz).date() - timedelta(days=1)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
