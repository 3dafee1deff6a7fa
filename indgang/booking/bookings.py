"""Bookings with a tovholder, kept as records in the SQL database.

A slot is taken by inserting a confirmed booking: the database's unique index of confirmed
(tovholder, start) pairs refuses a second one, so two citizens can never get the same slot,
on SQLite and PostgreSQL alike, however many gateways and action servers book at once. A
cancelled booking leaves the index, and its slot is free again. Redis keeps only what is
short-lived: the form being filled in, the booking limits and the queue of due SMS.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from pydantic import BaseModel, Field
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from indgang import keys, ratelimit
from indgang.booking.calendar import Calendar, Slot, calendar_for
from indgang.booking.tovholdere import MeetingKind, Tovholder
from indgang.events import EventType, emit
from indgang.phone import phone_hash
from indgang.ratelimit import Kind
from indgang.records.db import Database
from indgang.records.models import BookingRow
from indgang.settings import Settings

Requester = Literal["citizen", "staff"]


class Notice(StrEnum):
    """The SMS a booking can schedule (sent by indgang.booking.notifications)."""

    CONFIRMED = "confirmed"
    REMINDER = "reminder"
    CANCELLED = "cancelled"


def notice_member(kind: Notice, booking_id: str) -> str:
    return f"{kind.value}:{booking_id}"


class BookingState(StrEnum):
    """A booking's state in the records ("collecting", the form, lives in Redis only)."""

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
    no_show: bool = False  # marked by staff: the citizen did not come
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


def keep_until(settings: Settings, end: datetime, now: datetime) -> datetime:
    """Kept for the retention time the citizen agreed to, and never before the meeting is over."""
    return max(now + timedelta(seconds=settings.conversation_ttl_seconds), end + timedelta(days=1))


def _from_row(row: BookingRow) -> Booking:
    zone = ZoneInfo(row.timezone)
    return Booking(
        conversation_id=row.conversation_id,
        channel=row.channel,
        language=row.language,
        name=row.name,
        phone=row.phone,
        topic=row.topic,
        kind=MeetingKind(row.kind),
        for_whom=row.for_whom,  # type: ignore[arg-type]
        id=row.id,
        state=BookingState(row.state),
        tovholder=row.tovholder_id,
        tovholder_name=row.tovholder_name,
        team=row.team,
        start=row.starts_at.astimezone(zone),
        end=row.ends_at.astimezone(zone),
        created_at=row.created_at,
        updated_at=row.updated_at,
        moved_from=row.moved_from.astimezone(zone) if row.moved_from else None,
        cancelled_by=row.cancelled_by,  # type: ignore[arg-type]
        no_show=row.no_show,
        token=row.token,
    )


def to_row(booking: Booking, settings: Settings, keep_until: datetime) -> BookingRow:
    """The record of `booking` (also used by the import from Redis)."""
    return BookingRow(
        id=booking.id,
        conversation_id=booking.conversation_id,
        channel=booking.channel,
        language=booking.language,
        name=booking.name,
        phone=booking.phone,
        phone_hash=phone_hash(booking.phone, settings.phone_hash_key),
        topic=booking.topic,
        kind=booking.kind.value,
        for_whom=booking.for_whom,
        state=booking.state.value,
        tovholder_id=booking.tovholder,
        tovholder_name=booking.tovholder_name,
        team=booking.team,
        starts_at=booking.start,
        ends_at=booking.end,
        timezone=settings.booking_timezone,
        created_at=booking.created_at,
        updated_at=booking.updated_at,
        moved_from=booking.moved_from,
        cancelled_by=booking.cancelled_by,
        no_show=booking.no_show,
        token=booking.token,
        keep_until=keep_until,
    )


def _kept(now: datetime) -> Any:
    """Bookings still within their retention time (past it they are gone for every reader)."""
    return BookingRow.keep_until > now


async def _get(session: AsyncSession, booking_id: str, now: datetime) -> BookingRow | None:
    return await session.scalar(select(BookingRow).where(BookingRow.id == booking_id, _kept(now)))


async def get_booking(db: Database, booking_id: str, now: datetime | None = None) -> Booking | None:
    async with db.transaction() as session:
        row = await _get(session, booking_id, _now(now))
        return _from_row(row) if row is not None else None


async def book(
    db: Database,
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
    calendar = await calendar_for(db, settings)
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
    try:
        async with db.transaction() as session:
            session.add(to_row(booking, settings, keep_until(settings, booking.end, now)))
    except IntegrityError as exc:  # the unique index of confirmed slots: someone was first
        raise SlotUnavailable(f"{start.isoformat()} of {slot.tovholder.id} is taken") from exc
    for kind, who, limit in limits:  # counted once booked: a slot taken meanwhile costs nothing
        await ratelimit.hit(redis, kind, who, limit, settings.booking_limit_window_seconds)
    await _schedule(redis, _notices(calendar, booking, now, confirm=request.channel != "sms"))
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


async def _schedule(
    redis: aioredis.Redis, notices: Iterable[tuple[str, int]], drop: Iterable[str] = ()
) -> None:
    """The queue of due SMS (indgang.booking.notifications): it reads the booking from the
    records when a notice falls due, so a notice about a booking cancelled meanwhile says nothing."""
    dropped, due = list(drop), dict(notices)
    async with redis.pipeline(transaction=True) as pipe:
        if dropped:
            pipe.zrem(keys.booking_notifications(), *dropped)
        if due:
            pipe.zadd(keys.booking_notifications(), due)
        await pipe.execute()


async def restore_reminders(
    db: Database, redis: aioredis.Redis, settings: Settings, now: datetime | None = None
) -> int:
    """Queue again the day-before reminder of every confirmed booking whose reminder is still
    ahead (none of them can have been sent), for a queue lost with Redis; one already queued
    keeps its place. Returns how many were missing."""
    now = _now(now)
    calendar = await calendar_for(db, settings)
    coming = select(BookingRow).where(BookingRow.state == BookingState.CONFIRMED, BookingRow.starts_at > now)
    async with db.transaction() as session:
        bookings = [_from_row(row) for row in await session.scalars(coming)]
    missing = 0
    for booking in bookings:
        due = calendar.reminder_due(booking.start, now)
        if due is not None:
            member = notice_member(Notice.REMINDER, booking.id)
            missing += await redis.zadd(keys.booking_notifications(), {member: int(due.timestamp())}, nx=True)
    return missing


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
    db: Database,
    redis: aioredis.Redis,
    booking_id: str,
    by: Requester = "staff",
    now: datetime | None = None,
    reason: str | None = None,
) -> Booking | None:
    """Cancel and free the slot; None when there was no confirmed booking. The citizen gets an
    SMS when staff cancel (a citizen who cancels has just read the answer in the chat)."""
    now = _now(now)
    async with db.transaction() as session:
        # Only a confirmed one changes: of two cancelling at once, one does (and tells).
        done = await session.execute(
            update(BookingRow)
            .where(BookingRow.id == booking_id, BookingRow.state == BookingState.CONFIRMED, _kept(now))
            .values(state=BookingState.CANCELLED.value, cancelled_by=by, updated_at=now)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
        cancelled = _from_row(await session.get_one(BookingRow, booking_id))
    told = [(notice_member(Notice.CANCELLED, booking_id), int(now.timestamp()))] if by == "staff" else []
    await _schedule(
        redis, told, drop=[notice_member(kind, booking_id) for kind in (Notice.CONFIRMED, Notice.REMINDER)]
    )
    extra = {"reason": reason} if reason else {}
    await emit(redis, EventType.BOOKING_CANCELLED, _event_data(cancelled, by=by, **extra))
    return cancelled


async def move_booking(
    db: Database,
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
    calendar = await calendar_for(db, settings)
    booking = await get_booking(db, booking_id, now)
    if booking is None or booking.state != BookingState.CONFIRMED:
        return None
    tovholder = calendar.directory.get(booking.tovholder)
    if tovholder is None or not calendar.is_bookable(tovholder, new_start, now):
        raise SlotUnavailable(f"{new_start.isoformat()} is not a bookable slot of {booking.tovholder}")
    start = calendar.local(new_start)
    moved = booking.model_copy(
        update={"start": start, "end": calendar.end_of(start), "moved_from": booking.start, "updated_at": now}
    )
    try:
        async with db.transaction() as session:
            done = await session.execute(
                update(BookingRow)
                .where(BookingRow.id == booking_id, BookingRow.state == BookingState.CONFIRMED)
                .values(
                    starts_at=moved.start,
                    ends_at=moved.end,
                    moved_from=booking.start,
                    updated_at=now,
                    keep_until=keep_until(settings, moved.end, now),
                )
            )
    except IntegrityError as exc:  # the new slot is someone else's confirmed booking
        raise SlotUnavailable(f"{start.isoformat()} of {booking.tovholder} is taken") from exc
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return None  # cancelled meanwhile
    confirm = by == "staff" or channel != "sms"
    await _schedule(
        redis,
        _notices(calendar, moved, now, confirm=confirm),
        drop=[notice_member(kind, booking_id) for kind in (Notice.CONFIRMED, Notice.REMINDER)],
    )
    await emit(redis, EventType.BOOKING_CANCELLED, _event_data(booking, by=by, reason="moved"))
    await emit(
        redis, EventType.BOOKING_CREATED, _event_data(moved, by=by, moved_from=booking.start.isoformat())
    )
    return moved


async def mark_no_show(
    db: Database, booking_id: str, no_show: bool, now: datetime | None = None
) -> Booking | None:
    """Staff record whether the citizen came; only a confirmed meeting that has begun can be
    missed. None when there is no such booking."""
    now = _now(now)
    async with db.transaction() as session:
        done = await session.execute(
            update(BookingRow)
            .where(
                BookingRow.id == booking_id,
                BookingRow.state == BookingState.CONFIRMED,
                BookingRow.starts_at <= now,
                _kept(now),
            )
            .values(no_show=no_show, updated_at=now)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return _from_row(await session.get_one(BookingRow, booking_id))


async def erase_conversation_bookings(db: Database, redis: aioredis.Redis, conversation_id: str) -> int:
    """The right to erasure: every booking the conversation made (confirmed, cancelled, moved)
    is deleted, a confirmed one cancelled first (its slot freed, the municipality told by id),
    and the phone's link to a tovholder with them (it is read from the bookings). Returns how
    many bookings there were."""
    async with db.transaction() as session:
        made = select(BookingRow).where(BookingRow.conversation_id == conversation_id)
        rows = list(await session.scalars(made))
    for row in rows:
        if row.state == BookingState.CONFIRMED:
            await cancel_booking(db, redis, row.id, by="citizen", reason="erased")
    if rows:
        async with db.transaction() as session:
            await session.execute(delete(BookingRow).where(BookingRow.conversation_id == conversation_id))
        await redis.zrem(
            keys.booking_notifications(), *(notice_member(kind, row.id) for row in rows for kind in Notice)
        )
    return len(rows)


async def list_bookings(
    db: Database, tovholder: str | None = None, now: datetime | None = None
) -> list[Booking]:
    """Every booking still kept (confirmed and cancelled), earliest first; one tovholder's
    when `tovholder` is given."""
    query = select(BookingRow).where(_kept(_now(now))).order_by(BookingRow.starts_at, BookingRow.id)
    if tovholder is not None:
        query = query.where(BookingRow.tovholder_id == tovholder)
    async with db.transaction() as session:
        return [_from_row(row) for row in await session.scalars(query)]


async def forget_expired(db: Database, now: datetime | None = None) -> int:
    """Delete the bookings past their retention time (every reader already treats them as gone);
    run by the notifier's loop. Looks before it writes, so an idle database takes no write lock."""
    expired = ~_kept(_now(now))
    async with db.transaction() as session:
        if await session.scalar(select(BookingRow.id).where(expired).limit(1)) is None:
            return 0
        done = await session.execute(delete(BookingRow).where(expired))
        return int(done.rowcount)  # type: ignore[attr-defined]


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


async def conversation_booking(
    db: Database, conversation_id: str, now: datetime | None = None
) -> Booking | None:
    """The latest booking made in this conversation (the one the chat shows)."""
    async with db.transaction() as session:
        latest = await session.scalar(
            select(BookingRow)
            .where(BookingRow.conversation_id == conversation_id, _kept(_now(now)))
            .order_by(BookingRow.created_at.desc(), BookingRow.id.desc())
            .limit(1)
        )
        return _from_row(latest) if latest is not None else None


async def citizen_record(
    db: Database, settings: Settings, phone: str, now: datetime | None = None
) -> dict[str, str]:
    """The citizen's tovholder id and latest booking id, by the keyed hash of their number, from
    their bookings of the last TOVHOLDER_LINK_TTL_SECONDS. Only the SMS sender's number is
    proven: a number typed on the web may start a link to a tovholder (the first such booking's),
    never replace one (else anyone could re-tie someone else's number); a booking by SMS does."""
    now = _now(now)
    since = now - timedelta(seconds=settings.tovholder_link_ttl_seconds)
    async with db.transaction() as session:
        rows = list(
            await session.scalars(
                select(BookingRow)
                .where(
                    BookingRow.phone_hash == phone_hash(phone, settings.phone_hash_key),
                    BookingRow.created_at > since,
                    _kept(now),
                )
                .order_by(BookingRow.created_at, BookingRow.id)
            )
        )
    if not rows:
        return {}
    by_sms = [row for row in rows if row.channel == "sms"]
    return {"tovholder": (by_sms or rows)[-1 if by_sms else 0].tovholder_id, "booking": rows[-1].id}


async def current_booking(db: Database, redis: aioredis.Redis, conversation_id: str) -> dict[str, Any] | None:
    """The chat contract's `booking` field: "collecting" while the form is active (with the
    booking being moved, if any), else the conversation's booking, else None."""
    collecting = await redis.get(keys.booking_collecting(conversation_id))
    if collecting is not None:
        moving = await get_booking(db, collecting) if collecting else None
        summary = moving.summary() if moving else {"id": None, "slot": None, "tovholder": None}
        return {**summary, "state": "collecting"}
    booking = await conversation_booking(db, conversation_id)
    return booking.summary() if booking else None


async def find_active_booking(
    db: Database,
    settings: Settings,
    conversation_id: str,
    phone: str | None = None,
    now: datetime | None = None,
) -> Booking | None:
    """The citizen's coming booking: the one made in this conversation, else (e.g. an SMS
    reply to a booking made on the web) the latest one for this phone number."""
    now = _now(now)
    found = await conversation_booking(db, conversation_id, now)
    if (found is None or not found.is_active(now)) and phone:
        latest = (await citizen_record(db, settings, phone, now)).get("booking")
        found = await get_booking(db, latest, now) if latest else None
    return found if found is not None and found.is_active(now) else None


async def tovholdere_for(
    db: Database,
    settings: Settings,
    phone: str | None,
    areas: Iterable[str] = (),
    municipality: str | None = None,
    kind: MeetingKind | None = None,
) -> tuple[list[Tovholder], bool]:
    """Whose calendars to propose, and whether that is the citizen's own tovholder: a citizen
    who has one (known by the phone's keyed hash) keeps that person; others get the team that
    covers their needs."""
    directory = (await calendar_for(db, settings)).directory
    own = directory.get((await citizen_record(db, settings, phone)).get("tovholder")) if phone else None
    if own is not None:
        return [own], True
    return directory.candidates(areas, municipality or settings.search_default_municipality, kind), False
