"""Bookings with a tovholder, kept atomic in Redis.

A slot is claimed with HSETNX on the tovholder's calendar inside one Lua script that also
writes the booking, its index entry and its SMS notifications: two citizens can never get the
same slot, and a booking never exists without its slot (or the other way round).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from indgang import keys, ratelimit
from indgang.booking.calendar import Calendar, Slot
from indgang.booking.tovholdere import MeetingKind, Tovholder
from indgang.events import EventType, emit
from indgang.phone import phone_hash
from indgang.ratelimit import Kind
from indgang.settings import Settings

Requester = Literal["citizen", "staff"]

# KEYS: calendar, booking, index, notifications. ARGV: start epoch, id, now epoch, expire-at,
# then pairs of notice member and due epoch, then "--", then the booking's field/value pairs.
# Returns 0 when the slot is taken. Slots that are over are dropped from the calendar here.
_BOOK = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
for _, start in ipairs(redis.call('HKEYS', KEYS[1])) do
  if tonumber(start) < tonumber(ARGV[3]) then redis.call('HDEL', KEYS[1], start) end
end
local i = 5
while ARGV[i] ~= '--' do
  redis.call('ZADD', KEYS[4], ARGV[i + 1], ARGV[i])
  i = i + 2
end
redis.call('HSET', KEYS[2], unpack(ARGV, i + 1))
redis.call('EXPIREAT', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
return 1
"""

# KEYS: booking, calendar, notifications. ARGV: id, now iso, by, cancelled-notice member ("" for
# none), its due epoch, then the members to drop. Returns 0 unless the booking was confirmed.
_CANCEL = """
if redis.call('HGET', KEYS[1], 'state') ~= 'confirmed' then return 0 end
local start = redis.call('HGET', KEYS[1], 'start_epoch')
if redis.call('HGET', KEYS[2], start) == ARGV[1] then redis.call('HDEL', KEYS[2], start) end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'updated_at', ARGV[2], 'cancelled_by', ARGV[3])
for i = 6, #ARGV do redis.call('ZREM', KEYS[3], ARGV[i]) end
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4]) end
return 1
"""

# KEYS: booking, calendar, index, notifications. ARGV: id, new start epoch, expire-at, then
# pairs of notice member and new due epoch ("" = drop that notice), then "--", then the changed
# field/value pairs. Returns -1 (not confirmed), 0 (slot taken), 1 (moved).
_MOVE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'confirmed' then return -1 end
local old = redis.call('HGET', KEYS[1], 'start_epoch')
if old ~= ARGV[2] then
  if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1]) == 0 then return 0 end
  if redis.call('HGET', KEYS[2], old) == ARGV[1] then redis.call('HDEL', KEYS[2], old) end
end
local i = 4
while ARGV[i] ~= '--' do
  redis.call('ZREM', KEYS[4], ARGV[i])
  if ARGV[i + 1] ~= '' then redis.call('ZADD', KEYS[4], ARGV[i + 1], ARGV[i]) end
  i = i + 2
end
redis.call('HSET', KEYS[1], 'moved_from', redis.call('HGET', KEYS[1], 'start'), unpack(ARGV, i + 1))
redis.call('EXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""


class Notice(StrEnum):
    """The SMS a booking can schedule (sent by indgang.booking.notifications)."""

    CONFIRMED = "confirmed"
    REMINDER = "reminder"
    CANCELLED = "cancelled"


def notice_member(kind: Notice, booking_id: str) -> str:
    return f"{kind.value}:{booking_id}"


class BookingState(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class BookingLimitReached(Exception):
    """This conversation (on SMS: this verified number) or this phone number has made as many
    new bookings as a citizen needs lately; a script cannot fill the calendar."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"booking limit reached; try again in {retry_after} s")
        self.retry_after = retry_after


class SlotUnavailable(Exception):
    """The slot was taken meanwhile, or is no longer bookable (too soon, past): propose again."""


class BookingRequest(BaseModel):
    """What the citizen gave in the form (and agreed to have stored)."""

    conversation_id: str
    channel: str = "web"
    language: str = "da"
    name: str
    phone: str  # E.164
    topic: str
    kind: MeetingKind
    for_whom: Literal["self", "other"] = "self"


class Booking(BookingRequest):
    id: str
    state: BookingState
    tovholder: str  # id in the tovholder directory
    tovholder_name: str  # first name
    team: str
    start: datetime  # aware, local time
    end: datetime
    created_at: datetime
    updated_at: datetime
    moved_from: datetime | None = None
    cancelled_by: Requester | None = None
    token: str = Field(exclude=True, repr=False)  # for the .ics link; never in listings

    @property
    def tovholder_display(self) -> str:
        return f"{self.tovholder_name} ({self.team})"

    def is_active(self, now: datetime) -> bool:
        return self.state == BookingState.CONFIRMED and self.end > now

    def summary(self) -> dict[str, Any]:
        """The chat contract's `booking` field."""
        return {
            "state": self.state.value,
            "id": self.id,
            "slot": self.start.isoformat(),
            "tovholder": self.tovholder_display,
        }


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _expire_at(settings: Settings, end: datetime, now: datetime) -> int:
    """Kept for the retention time the citizen agreed to, and never before the meeting is over."""
    keep = max(now + timedelta(seconds=settings.conversation_ttl_seconds), end + timedelta(days=1))
    return int(keep.timestamp())


def _fields(booking: Booking) -> list[str]:
    values = booking.model_dump(mode="json", exclude_none=True)
    values["token"] = booking.token
    values["start_epoch"] = int(booking.start.timestamp())
    return [str(part) for pair in values.items() for part in pair]


def _from_hash(data: dict[str, str]) -> Booking | None:
    if not data:
        return None
    data = {k: v for k, v in data.items() if k != "start_epoch"}
    return Booking.model_validate(data)


async def get_booking(redis: aioredis.Redis, booking_id: str) -> Booking | None:
    return _from_hash(await redis.hgetall(keys.booking(booking_id)))


async def book(
    redis: aioredis.Redis,
    settings: Settings,
    slot: Slot,
    request: BookingRequest,
    now: datetime | None = None,
) -> Booking:
    """Book `slot` for the citizen; SlotUnavailable when someone else got it first,
    BookingLimitReached when the conversation or the phone number has booked enough lately."""
    limits = _booking_limits(settings, request)
    for kind, who, limit in limits:
        wait = await ratelimit.over(redis, kind, who, limit, settings.booking_limit_window_seconds)
        if wait is not None:
            raise BookingLimitReached(wait)
    now = _now(now)
    calendar = Calendar.from_settings(settings)
    if not calendar.is_bookable(slot.tovholder, slot.start, now):
        raise SlotUnavailable(f"{slot.start.isoformat()} is not a bookable slot of {slot.tovholder.id}")
    start = calendar.local(slot.start)
    booking = Booking(
        **request.model_dump(),
        id=f"bk_{secrets.token_hex(8)}",
        state=BookingState.CONFIRMED,
        tovholder=slot.tovholder.id,
        tovholder_name=slot.tovholder.name,
        team=slot.tovholder.team,
        start=start,
        end=calendar.end_of(start),
        created_at=now,
        updated_at=now,
        token=secrets.token_urlsafe(24),
    )
    notices = _notices(calendar, booking, now, confirm=request.channel != "sms")
    expire_at = _expire_at(settings, booking.end, now)
    script = redis.register_script(_BOOK)
    won = await script(
        keys=[
            keys.tovholder_calendar(slot.tovholder.id),
            keys.booking(booking.id),
            keys.bookings_index(),
            keys.booking_notifications(),
        ],
        args=[
            int(start.timestamp()),
            booking.id,
            int(now.timestamp()),
            expire_at,
            *[part for member, due in notices for part in (member, due)],
            "--",
            *_fields(booking),
        ],
    )
    if not won:
        raise SlotUnavailable(f"{start.isoformat()} of {slot.tovholder.id} is taken")
    for kind, who, limit in limits:  # counted once booked: a slot taken meanwhile costs nothing
        await ratelimit.hit(redis, kind, who, limit, settings.booking_limit_window_seconds)
    await _remember(redis, settings, booking, expire_at)
    await emit(redis, EventType.BOOKING_CREATED, _event_data(booking, by="citizen"))
    return booking


def _booking_limits(settings: Settings, request: BookingRequest) -> list[tuple[Kind, str, int]]:
    """Per conversation (an SMS conversation is its verified sender's) and per phone number given
    (so nobody's phone is flooded with confirmations), as a keyed hash."""
    number = phone_hash(request.phone, settings.phone_hash_key)
    return [
        (Kind.BOOKING_CONVERSATION, request.conversation_id, settings.booking_per_conversation_limit),
        (Kind.BOOKING_PHONE, number, settings.booking_per_phone_limit),
    ]


def _notices(calendar: Calendar, booking: Booking, now: datetime, confirm: bool) -> list[tuple[str, int]]:
    """The SMS a booking schedules: a confirmation now (unless the citizen booked by SMS and has
    just read it there) and a reminder the day before (when that is still ahead)."""
    notices = []
    if confirm:
        notices.append((notice_member(Notice.CONFIRMED, booking.id), int(now.timestamp())))
    reminder = calendar.reminder_due(booking.start, now)
    if reminder is not None:
        notices.append((notice_member(Notice.REMINDER, booking.id), int(reminder.timestamp())))
    return notices


async def _remember(redis: aioredis.Redis, settings: Settings, booking: Booking, expire_at: int) -> None:
    """The conversation knows its booking (and every booking it ever made, for erasure, kept as
    long as the longest-kept of them); the phone's keyed hash knows the citizen's tovholder.
    Only the SMS sender's number is proven: a number typed on the web may start a link to a
    tovholder, never replace one (else anyone could re-tie someone else's number)."""
    citizen = keys.citizen(phone_hash(booking.phone, settings.phone_hash_key))
    made = keys.conversation_bookings(booking.conversation_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(
            keys.conversation_booking(booking.conversation_id),
            booking.id,
            ex=settings.conversation_ttl_seconds,
        )
        pipe.sadd(made, booking.id)
        pipe.expireat(made, expire_at, nx=True)
        pipe.expireat(made, expire_at, gt=True)
        if booking.channel == "sms":
            pipe.hset(citizen, "tovholder", booking.tovholder)
        else:
            pipe.hsetnx(citizen, "tovholder", booking.tovholder)
        pipe.hset(citizen, "booking", booking.id)
        pipe.expire(citizen, settings.tovholder_link_ttl_seconds)
        await pipe.execute()


def _event_data(booking: Booking, by: Requester, **extra: Any) -> dict[str, Any]:
    """For the municipality's systems: ids and categories only. The citizen's name, number and
    words stay here (the tovholder reads them in the staff console), so an erasure here
    leaves no copy in a queue, a dead letter or a receiver's log."""
    return {
        "booking_id": booking.id,
        "conversation_id": booking.conversation_id,
        "tovholder": booking.tovholder,
        "tovholder_name": booking.tovholder_name,
        "team": booking.team,
        "slot": booking.start.isoformat(),
        "end": booking.end.isoformat(),
        "kind": booking.kind.value,
        "for_whom": booking.for_whom,
        "by": by,
        **extra,
    }


async def cancel_booking(
    redis: aioredis.Redis,
    booking_id: str,
    by: Requester = "staff",
    now: datetime | None = None,
    reason: str | None = None,
) -> Booking | None:
    """Cancel and free the slot; None when there was no confirmed booking. The citizen gets an
    SMS when staff cancel (a citizen who cancels has just read the answer in the chat)."""
    now = _now(now)
    booking = await get_booking(redis, booking_id)
    if booking is None:
        return None
    told = notice_member(Notice.CANCELLED, booking_id) if by == "staff" else ""
    script = redis.register_script(_CANCEL)
    done = await script(
        keys=[
            keys.booking(booking_id),
            keys.tovholder_calendar(booking.tovholder),
            keys.booking_notifications(),
        ],
        args=[
            booking_id,
            now.isoformat(),
            by,
            told,
            int(now.timestamp()),
            notice_member(Notice.CONFIRMED, booking_id),
            notice_member(Notice.REMINDER, booking_id),
        ],
    )
    if not done:
        return None
    cancelled = booking.model_copy(
        update={"state": BookingState.CANCELLED, "cancelled_by": by, "updated_at": now}
    )
    extra = {"reason": reason} if reason else {}
    await emit(redis, EventType.BOOKING_CANCELLED, _event_data(cancelled, by=by, **extra))
    return cancelled


async def move_booking(
    redis: aioredis.Redis,
    settings: Settings,
    booking_id: str,
    new_start: datetime,
    by: Requester = "staff",
    channel: str | None = None,
    now: datetime | None = None,
) -> Booking | None:
    """Move a confirmed booking to another free slot of the same tovholder.

    None when there is no confirmed booking; SlotUnavailable when the new slot is taken or not
    one of the tovholder's bookable slots. The municipality's systems get
    `booking.cancelled` for the old time and `booking.created` for the new one.
    """
    now = _now(now)
    calendar = Calendar.from_settings(settings)
    booking = await get_booking(redis, booking_id)
    if booking is None or booking.state != BookingState.CONFIRMED:
        return None
    tovholder = calendar.directory.get(booking.tovholder)
    if tovholder is None or not calendar.is_bookable(tovholder, new_start, now):
        raise SlotUnavailable(f"{new_start.isoformat()} is not a bookable slot of {booking.tovholder}")
    start = calendar.local(new_start)
    moved = booking.model_copy(
        update={"start": start, "end": calendar.end_of(start), "moved_from": booking.start, "updated_at": now}
    )
    confirm = by == "staff" or channel != "sms"
    wanted = dict(_notices(calendar, moved, now, confirm=confirm))
    notice_pairs = [
        part
        for kind in (Notice.CONFIRMED, Notice.REMINDER)
        for part in (notice_member(kind, booking_id), wanted.get(notice_member(kind, booking_id), ""))
    ]
    expire_at = _expire_at(settings, moved.end, now)
    script = redis.register_script(_MOVE)
    result = await script(
        keys=[
            keys.booking(booking_id),
            keys.tovholder_calendar(booking.tovholder),
            keys.bookings_index(),
            keys.booking_notifications(),
        ],
        args=[
            booking_id,
            int(start.timestamp()),
            expire_at,
            *notice_pairs,
            "--",
            "start", start.isoformat(),
            "end", moved.end.isoformat(),
            "start_epoch", int(start.timestamp()),
            "updated_at", now.isoformat(),
        ],
    )  # fmt: skip
    if result == -1:
        return None
    if result == 0:
        raise SlotUnavailable(f"{start.isoformat()} of {booking.tovholder} is taken")
    await redis.expireat(keys.conversation_bookings(booking.conversation_id), expire_at, gt=True)
    await emit(redis, EventType.BOOKING_CANCELLED, _event_data(booking, by=by, reason="moved"))
    await emit(
        redis, EventType.BOOKING_CREATED, _event_data(moved, by=by, moved_from=booking.start.isoformat())
    )
    return moved


async def erase_conversation_bookings(redis: aioredis.Redis, settings: Settings, conversation_id: str) -> int:
    """The right to erasure: every booking the conversation made (confirmed, cancelled, moved)
    is deleted, a confirmed one cancelled first (its slot freed, the municipality told by id),
    and the phone's link to a tovholder with them. Returns how many bookings there were."""
    made = set(await redis.smembers(keys.conversation_bookings(conversation_id)))
    latest = await redis.get(keys.conversation_booking(conversation_id))
    ids = sorted(made | ({latest} if latest else set()))
    for booking_id in ids:
        booking = await get_booking(redis, booking_id)
        if booking is None:
            continue  # past its retention already
        if booking.state == BookingState.CONFIRMED:
            await cancel_booking(redis, booking.id, by="citizen", reason="erased")
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(
                keys.booking(booking.id), keys.citizen(phone_hash(booking.phone, settings.phone_hash_key))
            )
            pipe.zrem(keys.bookings_index(), booking.id)
            pipe.zrem(keys.booking_notifications(), *(notice_member(kind, booking.id) for kind in Notice))
            await pipe.execute()
    return len(ids)


async def list_bookings(redis: aioredis.Redis, tovholder: str | None = None) -> list[Booking]:
    """Every booking still kept (confirmed and cancelled), earliest first; one tovholder's
    when `tovholder` is given. Bookings past their retention time drop out of the index here."""
    ids = await redis.zrange(keys.bookings_index(), 0, -1)
    async with redis.pipeline(transaction=False) as pipe:
        for booking_id in ids:
            pipe.hgetall(keys.booking(booking_id))
        found = await pipe.execute()
    expired = [booking_id for booking_id, data in zip(ids, found, strict=True) if not data]
    if expired:
        await redis.zrem(keys.bookings_index(), *expired)
    bookings = [b for b in map(_from_hash, found) if b is not None]
    return [b for b in bookings if tovholder is None or b.tovholder == tovholder]


# --- a conversation's booking ----------------------------------------------------------------


async def start_collecting(
    redis: aioredis.Redis, settings: Settings, conversation_id: str, moving: str | None = None
) -> None:
    """The booking form is active (value: the booking being moved, or empty for a new one)."""
    await redis.set(
        keys.booking_collecting(conversation_id), moving or "", ex=settings.booking_collecting_ttl_seconds
    )


async def stop_collecting(redis: aioredis.Redis, conversation_id: str) -> str | None:
    """The form ended; returns what was being collected ("" = a new booking, else the id of
    the booking being moved), or None when nothing was."""
    return await redis.getdel(keys.booking_collecting(conversation_id))


async def in_booking_form(redis: aioredis.Redis, conversation_id: str) -> bool:
    return bool(await redis.exists(keys.booking_collecting(conversation_id)))


async def conversation_booking(redis: aioredis.Redis, conversation_id: str) -> Booking | None:
    booking_id = await redis.get(keys.conversation_booking(conversation_id))
    return await get_booking(redis, booking_id) if booking_id else None


async def citizen_record(redis: aioredis.Redis, settings: Settings, phone: str) -> dict[str, str]:
    """The citizen's tovholder id and latest booking id, by the keyed hash of their number."""
    return await redis.hgetall(keys.citizen(phone_hash(phone, settings.phone_hash_key)))


async def current_booking(redis: aioredis.Redis, conversation_id: str) -> dict[str, Any] | None:
    """The chat contract's `booking` field: "collecting" while the form is active (with the
    booking being moved, if any), else the conversation's booking, else None."""
    collecting = await redis.get(keys.booking_collecting(conversation_id))
    if collecting is not None:
        moving = await get_booking(redis, collecting) if collecting else None
        summary = moving.summary() if moving else {"id": None, "slot": None, "tovholder": None}
        return {**summary, "state": "collecting"}
    booking = await conversation_booking(redis, conversation_id)
    return booking.summary() if booking else None


async def find_active_booking(
    redis: aioredis.Redis,
    settings: Settings,
    conversation_id: str,
    phone: str | None = None,
    now: datetime | None = None,
) -> Booking | None:
    """The citizen's coming booking: the one made in this conversation, else (e.g. an SMS
    reply to a booking made on the web) the latest one for this phone number."""
    now = _now(now)
    found = await conversation_booking(redis, conversation_id)
    if (found is None or not found.is_active(now)) and phone:
        latest = (await citizen_record(redis, settings, phone)).get("booking")
        found = await get_booking(redis, latest) if latest else None
    return found if found is not None and found.is_active(now) else None


async def tovholdere_for(
    redis: aioredis.Redis,
    settings: Settings,
    phone: str | None,
    areas: Iterable[str] = (),
    municipality: str | None = None,
    kind: MeetingKind | None = None,
) -> tuple[list[Tovholder], bool]:
    """Whose calendars to propose, and whether that is the citizen's own tovholder: a citizen
    who has one (known by the phone's keyed hash) keeps that person; others get the team that
    covers their needs."""
    directory = Calendar.from_settings(settings).directory
    own = directory.get((await citizen_record(redis, settings, phone)).get("tovholder")) if phone else None
    if own is not None:
        return [own], True
    return directory.candidates(areas, municipality or settings.search_default_municipality, kind), False
