"""Booking a tovholder end to end through /api/v1/chat on the real stack (issue 8)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import icalendar
import pytest
import redis.asyncio as aioredis
from booking_helpers import events_of

from indgang import keys
from indgang.booking import (
    BookingRequest,
    MeetingKind,
    Slot,
    book,
    calendar_for,
    get_booking,
    list_bookings,
)
from indgang.devstack import Stack
from indgang.phone import normalise_phone
from indgang.records.db import Database
from indgang.redis_store import connect
from webhook.citizen import TOKEN_HEADER

pytestmark = pytest.mark.anyio


def new_phone() -> str:
    """A valid Danish number of its own, so every test citizen is a first contact."""
    while not normalise_phone(number := f"2{random.randrange(10**7):07d}"):
        pass
    return number


class Citizen:
    """One web-chat conversation; remembers the last answer."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.id = f"book-{uuid.uuid4().hex}"
        self.token: str | None = None  # handed out by the first answer, sent with every later message
        self.last: dict[str, Any] = {}

    async def say(self, text: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                f"{self.stack.gateway_url}/api/v1/chat",
                json={"conversation_id": self.id, "text": text},
                headers={TOKEN_HEADER: self.token} if self.token else {},
            )
        assert response.status_code == 200, response.text
        self.last = response.json()
        self.token = self.last.get("conversation_token") or self.token
        return self.last

    @property
    def text(self) -> str:
        return "\n".join(r["text"] for r in self.last["replies"])

    @property
    def buttons(self) -> list[dict[str, str]]:
        return [b for r in self.last["replies"] for b in r["buttons"]]

    @property
    def booking(self) -> dict[str, Any] | None:
        return self.last["booking"]

    async def proposals(self) -> list[dict[str, str]]:
        """The times the form last proposed, as Rasa's tracker holds them."""
        async with httpx.AsyncClient(timeout=30) as client:
            tracker = (
                await client.get(
                    f"{self.stack.settings.rasa_url}/conversations/{self.id}/tracker",
                    params={"token": self.stack.settings.rasa_auth_token},
                )
            ).json()
        return tracker["slots"]["booking_proposals"]

    async def fill_in_up_to_the_time(self, phone: str | None = None) -> None:
        await self.say("jeg vil gerne booke en tid hos en tovholder")
        assert self.booking and self.booking["state"] == "collecting", self.last
        await self.say("/affirm")
        await self.say("mig selv")
        await self.say("Maria")
        await self.say(phone or new_phone())
        await self.say("hjælp til at finde et sted at bo")
        await self.say("telefon")


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[aioredis.Redis]:
    client = connect(stack.settings)
    yield client
    await client.aclose()


@pytest.fixture
async def records(stack: Stack) -> AsyncIterator[Database]:
    """The stack's records, as they are (the stack's conversations go on across tests)."""
    database = Database(stack.settings.database_url)
    yield database
    await database.aclose()


async def test_a_citizen_books_a_tovholder_and_gets_a_calendar_file(
    records: Database, stack: Stack, store: aioredis.Redis
) -> None:
    citizen = Citizen(stack)
    await citizen.say("jeg vil gerne booke en tid hos en tovholder")
    assert citizen.booking == {"state": "collecting", "id": None, "slot": None, "tovholder": None}
    assert "gemmer" in citizen.text and "30 dage" in citizen.text  # what, why, how long
    assert [b["payload"] for b in citizen.buttons] == ["/affirm", "/deny"]

    phone = new_phone()
    for answer in ("ja", "mig selv", "Maria", phone, "hjælp til at finde et sted at bo", "telefon"):
        await citizen.say(answer)
        assert citizen.booking and citizen.booking["state"] == "collecting", (answer, citizen.last)
    assert [b["payload"] for b in citizen.buttons] == ["1", "2", "3"]
    first = (await citizen.proposals())[0]

    await citizen.say("1")
    booking = citizen.booking
    assert booking and booking["state"] == "confirmed", citizen.last
    assert datetime.fromisoformat(booking["slot"]) == datetime.fromisoformat(first["start"])
    stored = await get_booking(records, booking["id"])
    assert stored is not None and stored.tovholder == first["tovholder"]
    assert (stored.name, stored.phone, stored.kind, stored.for_whom) == (
        "Maria",
        f"+45{phone}",
        "phone",
        "self",
    )
    assert booking["tovholder"] == stored.tovholder_display
    assert stored.tovholder_name in citizen.text and "AFLYS" in citizen.text
    assert "bevilge" not in citizen.text.lower()  # a tovholder talks; the authority decides

    link = next(word for word in citizen.text.split() if ".ics?token=" in word)
    async with httpx.AsyncClient(timeout=30) as client:
        ics = await client.get(link)
        forged = await client.get(link.split("?token=")[0] + "?token=guess")
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    event = next(iter(icalendar.Calendar.from_ical(ics.content).walk("VEVENT")))
    assert event.decoded("dtstart") == stored.start
    assert forged.status_code == 404

    created = [e for e in await events_of(store, "booking.created") if e["data"]["booking_id"] == stored.id]
    assert len(created) == 1 and stored.topic == "hjælp til at finde et sted at bo"
    assert stored.topic not in json.dumps(created, ensure_ascii=False)  # events carry ids only


async def test_a_relative_books_only_with_the_persons_consent(
    records: Database, stack: Stack, store: aioredis.Redis
) -> None:
    without = Citizen(stack)
    for answer in ("jeg vil gerne booke en samtale med en tovholder til min søn", "ja", "en anden"):
        await without.say(answer)
    assert "sagt ja" in without.text
    await without.say("nej")
    assert without.booking is None
    assert "pårørende" in without.text
    assert not [b for b in await list_bookings(records) if b.conversation_id == without.id]

    relative = Citizen(stack)
    for answer in ("jeg vil gerne booke en samtale med en tovholder til min søn", "ja", "en anden", "ja"):
        await relative.say(answer)
    assert "Hvad hedder den" in relative.text
    for answer in ("Jonas", new_phone(), "hans skole og venner", "video", "2"):
        await relative.say(answer)
    assert relative.booking and relative.booking["state"] == "confirmed", relative.last
    stored = await get_booking(records, relative.booking["id"])
    assert stored is not None and (stored.for_whom, stored.name, stored.kind) == ("other", "Jonas", "video")


async def test_an_invalid_phone_number_is_asked_again(stack: Stack) -> None:
    citizen = Citizen(stack)
    for answer in ("jeg vil gerne booke en tid hos en tovholder", "ja", "mig selv", "Ali"):
        await citizen.say(answer)
    await citizen.say("1234")
    assert "8 cifre" in citizen.text and citizen.booking["state"] == "collecting"
    await citizen.say("+45 40 50 60 70")
    assert "tale om" in citizen.text  # on to the topic


async def test_a_time_taken_meanwhile_brings_new_proposals(
    records: Database, stack: Stack, store: aioredis.Redis
) -> None:
    citizen = Citizen(stack)
    await citizen.fill_in_up_to_the_time()
    proposed = await citizen.proposals()
    taken = proposed[0]
    calendar = await calendar_for(records, stack.settings)
    tovholder = calendar.directory.get(taken["tovholder"])
    assert tovholder is not None
    someone_else = BookingRequest(
        conversation_id="someone-else",
        name="Else",
        phone="+4560606060",
        topic="noget andet",
        kind=MeetingKind.PHONE,
    )
    await book(
        records, store, stack.settings, Slot(tovholder, datetime.fromisoformat(taken["start"])), someone_else
    )

    await citizen.say("1")
    assert "ikke ledig" in citizen.text and citizen.booking["state"] == "collecting", citizen.last
    again = await citizen.proposals()
    assert taken not in again and len(again) == 3
    await citizen.say("1")
    assert citizen.booking["state"] == "confirmed"
    assert datetime.fromisoformat(citizen.booking["slot"]) == datetime.fromisoformat(again[0]["start"])


async def test_a_time_in_words_gets_fitting_proposals(stack: Stack) -> None:
    citizen = Citizen(stack)
    await citizen.fill_in_up_to_the_time()
    today = date.today()
    tuesday = today + timedelta(days=(1 - today.weekday()) % 7 or 7)  # a coming Tuesday ...
    if tuesday - today < timedelta(days=2):
        tuesday += timedelta(days=7)  # ... with all its afternoon still ahead
    await citizen.say(f"{tuesday.day}/{tuesday.month} om eftermiddagen")
    assert "passer" in citizen.text, citizen.last
    proposed = [datetime.fromisoformat(p["start"]) for p in await citizen.proposals()]
    assert proposed and all(p.date() == tuesday and p.hour >= 12 for p in proposed), proposed
    await citizen.say("1")
    assert citizen.booking["state"] == "confirmed"
    assert datetime.fromisoformat(citizen.booking["slot"]) == proposed[0]


async def test_move_and_cancel_free_the_time_and_the_tovholder_stays(
    records: Database, stack: Stack, store: aioredis.Redis
) -> None:
    citizen = Citizen(stack)
    phone = new_phone()
    await citizen.fill_in_up_to_the_time(phone)
    await citizen.say("1")
    booked = citizen.booking
    assert booked and booked["state"] == "confirmed"
    first = await get_booking(records, booked["id"])
    assert first is not None

    await citizen.say("jeg vil gerne booke en tid hos en tovholder")  # already has one
    assert "allerede" in citizen.text and citizen.booking["state"] == "confirmed"

    await citizen.say("flyt min tid")
    assert citizen.booking == {**booked, "state": "collecting"}
    await citizen.say("2")
    moved = citizen.booking
    assert moved["state"] == "confirmed" and moved["id"] == booked["id"] and moved["slot"] != booked["slot"]
    assert moved["tovholder"] == booked["tovholder"]  # the same tovholder
    calendar = await calendar_for(records, stack.settings)
    free = {
        s.start
        for s in await calendar.free_slots(
            records, [calendar.directory.get(first.tovholder)], first.created_at
        )
    }
    assert first.start in free and datetime.fromisoformat(moved["slot"]) not in free

    await citizen.say("AFLYS")
    assert citizen.booking["state"] == "cancelled", citizen.last
    assert "aflyst" in citizen.text
    free = await calendar.free_slots(records, [calendar.directory.get(first.tovholder)], first.created_at)
    assert datetime.fromisoformat(moved["slot"]) in {s.start for s in free}
    cancelled = await events_of(store, "booking.cancelled")
    assert [e["data"]["by"] for e in cancelled if e["data"]["booking_id"] == first.id] == [
        "citizen",
        "citizen",
    ]

    # Another web conversation that types the same number learns nothing about its owner: a typed
    # number is a contact detail. (The SMS sender keeps their own tovholder: test_actions.py.)
    later = Citizen(stack)
    await later.fill_in_up_to_the_time(phone)
    assert "din tovholder" not in later.text and later.buttons


async def test_saying_no_or_aflys_while_collecting_stores_nothing(
    records: Database, stack: Stack, store: aioredis.Redis
) -> None:
    declined = Citizen(stack)
    await declined.say("jeg vil gerne booke en tid hos en tovholder")
    await declined.say("nej")
    assert declined.booking is None and "ikke gemt" in declined.text

    stopped = Citizen(stack)
    for answer in ("jeg vil gerne booke en tid hos en tovholder", "ja", "mig selv", "Sara"):
        await stopped.say(answer)
    await stopped.say("AFLYS")
    assert stopped.booking is None and "stoppet" in stopped.text
    mine = {declined.id, stopped.id}
    assert not [b for b in await list_bookings(records) if b.conversation_id in mine]


async def test_a_yes_with_booking_words_after_offers_starts_the_booking_and_a_bare_yes_does_not(
    stack: Stack,
) -> None:
    for words in ("ja tak book mig", "ja, book en tid til mig"):
        citizen = Citizen(stack)
        await citizen.say("min søn på 15 har ingen venner og sidder alene på sit værelse hele dagen")
        assert any(r["offers"] for r in citizen.last["replies"]), citizen.last
        await citizen.say(words)
        assert citizen.booking and citizen.booking["state"] == "collecting", (words, citizen.last)
        assert [b["payload"] for b in citizen.buttons] == ["/affirm", "/deny"]  # the consent question
    citizen = Citizen(stack)
    await citizen.say("min søn på 15 har ingen venner og sidder alene på sit værelse hele dagen")
    await citizen.say("ja tak")  # the follow-up consent's answer, not a booking
    assert citizen.booking is None, citizen.last


async def test_a_long_conversation_books_as_a_short_one_and_rasa_keeps_each_turn_once(
    stack: Stack, store: aioredis.Redis
) -> None:
    """Rasa reads only the last turns of a long conversation (bot/bounded_tracker_store.py): a
    booking confirmed after many turns runs as in a short one, and the whole history keeps every
    message Rasa saw, once and in order."""
    citizen = Citizen(stack)
    # 15 messages: under the gateway's 20 a minute for one conversation; Rasa reads the last
    # turns (from its 13th) when the booking is confirmed
    said = [
        "hej", "hvad kan du hjælpe med?", "hvad er en tovholder?", "tak", "ok", "hvordan virker det her?",
        "godt at vide", "jeg vil gerne booke en tid hos en tovholder", "ja", "mig selv", "Maria", new_phone(),
        "hjælp til at finde et sted at bo", "telefon",
    ]  # fmt: skip
    for text in said:
        await citizen.say(text)
    assert citizen.booking and citizen.booking["state"] == "collecting", citizen.last
    await citizen.say("1")
    assert citizen.booking and citizen.booking["state"] == "confirmed", citizen.last
    async with httpx.AsyncClient(timeout=30) as client:
        tracker = (
            await client.get(
                f"{stack.settings.rasa_url}/conversations/{citizen.id}/tracker",
                params={"token": stack.settings.rasa_auth_token},
            )
        ).json()
    seen = [e["text"] for e in tracker["events"] if e["event"] == "user"]
    assert seen == [text for text in [*said, "1"] if text in seen]  # once each, in order
    assert set(said[-7:]) <= set(seen) and len(seen) >= 13
    header = json.loads(await store.lindex(keys.rasa_tracker(citizen.id), 0))  # this store wrote it
    assert len(header["turns"]) == 12
