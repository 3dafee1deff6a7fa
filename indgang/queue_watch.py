"""The queue watch: nobody waits for a person unseen.

Every handoff that waits for pick-up is in a sorted set (the request adds it in the same Redis
script, indgang/handoff.py; a pick-up or an erasure removes it). A worker in every gateway claims
the due ones with a lease (indgang/outbox.py), so a gateway that dies mid-way leaves them to the
next worker, and looks at each again every QUEUE_WATCH_SECONDS until it is picked up:

- a crisis (priority urgent) alerts the staff on duty at once (indgang/staff/alerts.py);
- a handoff waiting STAFF_ALERT_WAIT_MINUTES alerts them too;
- in opening hours, a handoff not picked up within QUEUE_TIMEOUT_MINUTES (of open time) tells
  the citizen once and offers a booking with a tovholder, or to stay in the queue; outside the
  hours the citizen was told when staff answer, and waits with the risk first in the queue;
- in opening hours, the citizen hears their new place and the expected wait when it moved
  QUEUE_UPDATE_PLACES places, or changed at all after QUEUE_UPDATE_MINUTES.

Each of these happens once per request (marks on the handoff record, which a new request
clears): a mark is written after the work, so a crash in between repeats it (at least once);
an alert SMS or a queued citizen SMS has an id per request, so a repeat does not send it twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from indgang import conversation, handoff, keys
from indgang.background import BackgroundLoop
from indgang.dialogue import Button, Reply
from indgang.handoff import Handoff, HandoffState, Priority
from indgang.i18n import t
from indgang.opening_hours import staff_hours, waiting_notice
from indgang.outbox import LeasedSet
from indgang.safety import crisis_lines
from indgang.settings import Settings
from indgang.sms.sender import SmsSender
from indgang.staff.alerts import AlertNotSent, Reason, StaffAlerts

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from indgang.inbound import Inbound

log = logging.getLogger(__name__)

BATCH = 50
# The booking form's start, as the assistant offers it (actions/booking.py); "stay" just waits.
BOOK_PAYLOAD = "/book_contact"
STAY_PAYLOAD = "/keep_waiting"


async def place_notice(redis: aioredis.Redis, settings: Settings, conversation_id: str, lang: str) -> str:
    """What a citizen waiting for a person reads: their place (or when staff answer). The place
    told is noted, so the queue watch tells it again only when it has moved."""
    position = await handoff.queue_position(redis, conversation_id) or 1
    state = await handoff.get(redis, conversation_id)
    await handoff.mark(redis, state, {"told_position": str(position), "told_at": f"{time.time():.3f}"})
    return waiting_notice(settings, lang, position)


def booked_from_queue(state: Handoff, text: str) -> bool:
    """The citizen took the booking the queue offered (the button, or its number on SMS)."""
    offered = state.state == HandoffState.REQUESTED and "offered_booking" in state.marks
    return offered and text.strip() == BOOK_PAYLOAD


def expected_minutes(settings_minutes: float, position: int) -> int:
    """A plain estimate: the conversations up to and including the citizen's, each so long."""
    return round(max(position, 1) * settings_minutes)


class QueueWatch:
    """The worker; `clock` (epoch seconds) is injectable so tests can move time."""

    def __init__(self, inbound: Inbound, clock: Callable[[], float] = time.time) -> None:
        self.inbound = inbound
        self.redis = inbound.redis
        self.settings = inbound.settings
        self.clock = clock
        self.alerts = StaffAlerts(self.settings, SmsSender(self.redis, self.settings))
        self.alerts.check_roster()  # a roster that cannot be read stops the gateway at start
        self.leases = LeasedSet(self.redis, keys.handoff_watch(), self.settings.outbox_lease_seconds)
        pause = self.settings.queue_watch_seconds
        self._loop = BackgroundLoop("queue-watch", self.run_once, pause=pause, error_pause=pause)

    async def run_once(self) -> int:
        """Look at every waiting handoff that is due; returns how many are still waiting."""
        now = self.clock()
        waiting = 0
        for claim in await self.leases.claim(now, BATCH):
            current = await handoff.get(self.redis, claim.member)
            if current.state != HandoffState.REQUESTED or current.requested_at is None:
                await self.leases.done(claim)  # picked up, closed or erased
                continue
            try:
                await self._look(current, now)
            except AlertNotSent:
                log.warning("staff alert not sent; trying again")
                await self.leases.retry(claim, now + self.settings.outbox_retry_seconds)
                continue
            waiting += 1
            await self.leases.retry(claim, now + self.settings.queue_watch_seconds)
        return waiting

    async def _look(self, current: Handoff, now: float) -> None:
        assert current.requested_at is not None
        moment = datetime.fromtimestamp(now, UTC)
        if current.priority == Priority.URGENT:
            await self._alert(current, "crisis", moment)
        if now - current.requested_at >= self.settings.staff_alert_wait_minutes * 60:
            await self._alert(current, "waiting", moment)
        hours = staff_hours(self.settings)
        if not hours.is_open(moment):
            return  # told when staff answer; the queue keeps the risk first
        local = moment.astimezone(hours.timezone)
        opened = datetime.combine(local.date(), hours.days[local.weekday()][0], tzinfo=hours.timezone)
        waited_open = now - max(current.requested_at, opened.timestamp())
        if waited_open >= self.settings.queue_timeout_minutes * 60 and "offered_booking" not in current.marks:
            await self._offer_booking(current, now)
        else:
            await self._update_place(current, now)

    async def _alert(self, current: Handoff, reason: Reason, moment: datetime) -> None:
        if f"alerted:{reason}" in current.marks:
            return
        assert current.requested_at is not None
        stamp = f"{current.requested_at:.3f}"
        # Nobody on duty: not marked, so whoever comes on duty next is alerted.
        if await self.alerts.send(reason, current.conversation_id, stamp, moment):
            await handoff.mark(self.redis, current, {f"alerted:{reason}": f"{moment.timestamp():.3f}"})

    async def _offer_booking(self, current: Handoff, now: float) -> None:
        record = await conversation.get(self.redis, current.conversation_id)
        if record is None:
            return
        lang = record.language
        buttons = [
            Button(title=t("queue.book_button", lang), payload=BOOK_PAYLOAD),
            Button(title=t("queue.stay_button", lang), payload=STAY_PAYLOAD),
        ]
        text = t("queue.timeout", lang)
        if current.priority == Priority.URGENT:  # danger now: the emergency number again, not only a booking
            text += "\n" + t("staff.notice.emergency", lang, number=crisis_lines(lang)[0].number)
        reply = Reply(text=text, buttons=buttons)
        await self._tell(current, record.channel, lang, reply, "timeout")
        position = await handoff.queue_position(self.redis, current.conversation_id) or 1
        marks = {"offered_booking": f"{now:.3f}", "told_position": str(position), "told_at": f"{now:.3f}"}
        await handoff.mark(self.redis, current, marks)

    async def _update_place(self, current: Handoff, now: float) -> None:
        position = await handoff.queue_position(self.redis, current.conversation_id)
        told = int(current.marks.get("told_position", "0"))
        told_at = float(current.marks.get("told_at", current.requested_at or now))
        if position is None or position == told:
            return
        moved = abs(told - position) >= self.settings.queue_update_places
        if not moved and now - told_at < self.settings.queue_update_minutes * 60:
            return  # a small change, told recently: not worth an SMS
        record = await conversation.get(self.redis, current.conversation_id)
        if record is None:
            return
        minutes = expected_minutes(self.settings.queue_minutes_per_conversation, position)
        reply = Reply(text=t("queue.update", record.language, position=position, minutes=minutes))
        await self._tell(current, record.channel, record.language, reply, f"place.{told_at:.3f}")
        await handoff.mark(self.redis, current, {"told_position": str(position), "told_at": f"{now:.3f}"})

    async def _tell(self, current: Handoff, channel: str, lang: str, reply: Reply, what: str) -> None:
        assert current.requested_at is not None
        # One id per request and message: a look repeated after a crash queues no second SMS.
        send_id = f"queue.{keys.pseudonym(current.conversation_id)}.{current.requested_at:.3f}.{what}"
        await self.inbound.deliver(current.conversation_id, channel, lang, [reply], send_id)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
