"""A script cannot book every slot for three weeks: new bookings are limited per conversation
(on SMS that is the verified sender, Twilio's From) and per phone number given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from booking_helpers import MONDAY, at, request
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import booking as booking_actions
from actions import context
from indgang.booking import BookingLimitReached, Calendar, Slot, book, calendar_for, list_bookings
from indgang.i18n import t
from indgang.records.db import Database
from indgang.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    limits = {"booking_per_conversation_limit": 2, "booking_per_phone_limit": 2}
    return base_settings.model_copy(update=limits)


def _slot(calendar: Calendar, hour: int, day: int = 4) -> Slot:
    return Slot(calendar.directory.get("mette"), at(day, hour))


async def test_one_conversation_books_only_so_many_with_any_phone_numbers(
    records: Database, redis: aioredis.Redis, settings: Settings
) -> None:
    calendar = await calendar_for(records, settings)
    for hour, phone in ((9, "+4520000001"), (10, "+4520000002")):
        await book(
            records, redis, settings, _slot(calendar, hour), request("web-script", phone=phone), now=MONDAY
        )
    with pytest.raises(BookingLimitReached) as refused:
        third = request("web-script", phone="+4520000003")
        await book(records, redis, settings, _slot(calendar, 11), third, now=MONDAY)
    assert refused.value.retry_after >= 1
    free = await calendar.free_slots(records, [_slot(calendar, 9).tovholder], MONDAY)
    assert at(4, 11) in [s.start for s in free]  # the refused slot stays free
    # Another conversation, with another number, books as usual.
    await book(
        records, redis, settings, _slot(calendar, 11), request("web-other", phone="+4520000004"), now=MONDAY
    )


async def test_one_phone_number_gets_only_so_many_bookings_from_new_conversations(
    records: Database, redis: aioredis.Redis, settings: Settings
) -> None:
    calendar = await calendar_for(records, settings)
    for n, hour in enumerate((9, 10)):
        await book(
            records, redis, settings, _slot(calendar, hour), request(f"sms-{n}", channel="sms"), now=MONDAY
        )
    with pytest.raises(BookingLimitReached):
        await book(records, redis, settings, _slot(calendar, 11), request("sms-2", channel="sms"), now=MONDAY)


def _picking_first(sender: str, channel: str, proposal: dict[str, str], phone: str) -> Tracker:
    slots: dict[str, Any] = {
        "booking_proposals": [proposal],
        "booking_name": "Maria",
        "booking_phone": phone,
        "booking_topic": "hjælp til bolig",
        "booking_kind": "phone",
    }
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": slots,
            "latest_message": {
                "text": "1",
                "intent": {"name": "inform", "confidence": 0.9},
                "entities": [],
                "metadata": {"language": "da", "channel": channel},
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {"name": "booking_form"},
            "latest_action_name": "action_listen",
        }
    )


async def test_the_booking_form_ends_with_a_clear_answer_at_the_limit(
    records: Database, redis: aioredis.Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the action server's own code: the form books the picked slot until the limit,
    then ends with the outcome `limit_reached`, and the citizen is told why."""
    monkeypatch.setattr(context, "redis", lambda: redis)
    monkeypatch.setattr(context, "db", lambda: records)
    monkeypatch.setattr(context, "settings", lambda: settings)
    calendar = await calendar_for(records, settings)
    free = await calendar.free_slots(records, [calendar.directory.get("mette")], datetime.now(UTC))
    form = booking_actions.ValidateBookingForm()
    outcomes = []
    for n, slot in enumerate(free[:3]):
        proposal = {"tovholder": "mette", "start": slot.start.isoformat()}
        tracker = _picking_first("web-script-0000001", "web", proposal, f"+452000000{n}")
        outcomes.append(await form.validate_booking_slot("1", CollectingDispatcher(), tracker, {}))
    assert [o.get("booking_outcome") for o in outcomes] == [None, None, "limit_reached"]
    assert outcomes[2]["booking_slot"] is None
    assert len(await list_bookings(records)) == 2
    dispatcher = CollectingDispatcher()
    ended = _picking_first("web-script-0000001", "web", {}, "+4520000009")
    ended.slots.update(booking_outcome="limit_reached", booking_slot=None)
    await booking_actions.ActionBookingSubmit().run(dispatcher, ended, {})
    assert [m.get("text") for m in dispatcher.messages] == [t("booking.limit_reached", "da")]
