"""Erasure that leaves no trace, and retention that holds, against the real gateway (in-process,
with its lifespan: the webhook dispatcher runs), a real Redis, the real Twilio SDK talking to a
local fake of Twilio, and a real local receiver of the outbound webhooks. Rasa is down here: the
conversation is driven through the gateway's own paths (SMS webhook, staff API) and the domain
functions the booking actions call; Rasa's tracker is written where Rasa's RedisTrackerStore
writes it (`indgang:tracker:<sender id>`)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis
from booking_helpers import MONDAY, at
from conftest import asgi_gateway, flushed_redis
from fakes.twilio_api import FakeTwilio
from outbox_helpers import outbox_drained
from pythonjsonlogger.json import JsonFormatter
from test_sms_webhook import _form, _signature
from test_webhooks_out import Receiver

from indgang import keys, transcript
from indgang.booking import (
    BookingRequest,
    MeetingKind,
    Slot,
    book,
    calendar_for,
    cancel_booking,
    get_booking,
    list_bookings,
    move_booking,
)
from indgang.devstack import PROJECT_DIR, RASA_BIN, Stack, free_port
from indgang.erasure import erase_conversation
from indgang.events import EventType, new_event
from indgang.i18n import t
from indgang.logging_setup import configure_logging
from indgang.records.db import Database
from indgang.redis_store import connect
from indgang.settings import Settings
from indgang.sms import optout, recipients
from indgang.staff import audit
from indgang.staff.accounts import Role, add_account
from indgang.webhooks.dispatcher import Delivery, sweep
from webhook.citizen import TOKEN_HEADER
from webhook.staff_session import CSRF_HEADER

pytestmark = pytest.mark.anyio

NUMBER = "+4521436587"  # E.164; the citizen also writes it as "21 43 65 87" in the booking form
NAME = "Birthe Skovgaard"
PASSWORD = "korrekt-hest-batteri"
# Words only this conversation uses, in the citizen's, the staff's and the booking's text.
WORDS = ["hvalfangerhuset", "Tordenskjoldsgade", "kanelsnegle", "Mølleåvej", "sølvpapir"]


class Events(Receiver):
    async def wait_for_type(self, event_type: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not any(e["type"] == event_type for e in self.events()):
            assert time.monotonic() < deadline, f"no {event_type} arrived"
            await asyncio.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Events]:
    receiver = Events()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def settings(base_settings: Settings, fake_twilio: FakeTwilio, receiver: Events) -> Settings:
    dead = f"http://127.0.0.1:{free_port()}"  # Rasa and the actions are down
    update = {
        "rasa_url": dead,
        "action_server_url": dead,
        "booking_scheduler_interval_seconds": 3600,
        "webhook_urls": receiver.url,
        # A database of its own: the session's other gateways (with no webhook URLs) would
        # otherwise take this one's events from the shared consumer group and drop them.
        "redis_db": 3,
    }
    return fake_twilio.configure(base_settings).model_copy(update=update)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    async with flushed_redis(settings) as client:
        yield client


class Logs(logging.Handler):
    """Every log record of every logger at the production level (INFO), formatted as the
    processes write them (JSON with every extra field)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[Logs]:
    """Logging as every process sets it up (configure_logging), plus a handler that keeps it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO")
    handler = Logs()
    root.addHandler(handler)
    yield handler
    root.handlers[:] = handlers
    root.setLevel(level)


async def _sms(client: httpx.AsyncClient, settings: Settings, body: str) -> None:
    form = _form(body, sender=NUMBER)
    response = await client.post(
        "/twilio/sms", data=form, headers={"X-Twilio-Signature": _signature(settings, "/twilio/sms", form)}
    )
    assert response.status_code == 200, response.text
    store = connect(settings)
    await outbox_drained(store)
    await store.aclose()


async def _staff(
    client: httpx.AsyncClient, redis: aioredis.Redis, records: Database, name: str, role: Role
) -> dict[str, str]:
    """Logs `client` in (its cookie jar keeps the session); returns the CSRF header for the API."""
    await add_account(records, redis, name, PASSWORD, role, display_name=name.capitalize(), replace=True)
    form = await client.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
    done = await client.post(
        "/staff/login", data={"username": name, "password": PASSWORD, "csrf_token": token}
    )
    assert done.status_code == 303, done.text
    page = await client.get("/staff")
    return {CSRF_HEADER: re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]}


async def every_stored_text(redis: aioredis.Redis) -> dict[str, str]:
    """Every key of the database with everything it holds, read by its type."""
    found: dict[str, str] = {}
    async for key in redis.scan_iter(count=500):
        kind = await redis.type(key)
        if kind == "string":
            value: object = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(await redis.smembers(key))
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = await redis.xrange(key)
            groups = await redis.xinfo_groups(key)
            value = [
                value,
                groups,
                [await redis.xpending_range(key, g["name"], "-", "+", 10_000) for g in groups],
            ]
        else:
            raise AssertionError(f"{key} has a type the scan cannot read: {kind}")
        found[key] = json.dumps(value, ensure_ascii=False, default=str)
    return found


def needles(conv: str) -> list[str]:
    national = NUMBER.removeprefix("+45")
    return [
        conv,
        conv.removeprefix(recipients.CONVERSATION_PREFIX),  # the keyed hash of the number
        NUMBER,
        national,
        " ".join(national[i : i + 2] for i in range(0, 8, 2)),
        *NAME.split(),
        *WORDS,
    ]


def hits(texts: dict[str, str], conv: str) -> list[tuple[str, str]]:
    return [
        (where, needle)
        for where, text in texts.items()
        for needle in needles(conv)
        if needle.casefold() in text.casefold() or needle.casefold() in where.casefold()
    ]


async def drive_conversation(
    client: httpx.AsyncClient,
    settings: Settings,
    redis: aioredis.Redis,
    records: Database,
    fake_twilio: FakeTwilio,
) -> tuple[str, dict[str, str]]:
    """A crisis by SMS, a booking cancelled and made again (then moved), a staff take-over with a
    note and a reply by SMS, and the citizen answering staff. Returns the conversation id and the
    admin's CSRF header (the client is logged in as an admin)."""
    conv = recipients.conversation_id(NUMBER, settings)
    await _sms(
        client, settings, "Jeg bor på Mølleåvej og jeg vil tage mit eget liv i nat, pillerne ligger klar"
    )
    assert "112" in fake_twilio.sent()[-1]["Body"]
    await _sms(client, settings, "Mit navn er Birthe Skovgaard, jeg sidder ved hvalfangerhuset")
    # What Rasa's RedisTrackerStore keeps about the conversation (the events with the user's words)
    tracker = {"sender_id": conv, "events": [{"event": "user", "text": "jeg sidder ved hvalfangerhuset"}]}
    await redis.set(keys.rasa_tracker(conv), json.dumps(tracker), ex=settings.conversation_ttl_seconds)

    calendar = await calendar_for(records, settings)
    lars = calendar.directory.get("lars")
    assert lars is not None
    wish = BookingRequest(
        conversation_id=conv,
        channel="sms",
        name=NAME,
        phone=NUMBER,
        topic="gæld og kanelsnegle på Tordenskjoldsgade",
        kind=MeetingKind.PHONE,
    )
    first = await book(records, redis, settings, Slot(lars, at(5, 10)), wish, MONDAY)
    assert await cancel_booking(records, redis, first.id, by="citizen", now=MONDAY) is not None
    second = await book(records, redis, settings, Slot(lars, at(6, 10)), wish, MONDAY)
    assert await move_booking(
        records, redis, settings, second.id, at(4, 10), by="citizen", channel="sms", now=MONDAY
    )

    admin = await _staff(client, redis, records, "anne", Role.ADMIN)
    assert (
        await client.post(f"/api/v1/staff/conversations/{conv}/takeover", headers=admin)
    ).status_code == 200
    note = {"text": "Birthe har sølvpapir-angst, ring fra skjult nummer"}
    assert (
        await client.post(f"/api/v1/staff/conversations/{conv}/notes", json=note, headers=admin)
    ).status_code == 201
    reply = {"text": "Hej Birthe, jeg hedder Anne. Er du stadig ved hvalfangerhuset?"}
    sent = await client.post(f"/api/v1/staff/conversations/{conv}/messages", json=reply, headers=admin)
    assert sent.status_code == 201, sent.text
    await outbox_drained(redis)  # the gateway's outbox worker sends the staff reply
    assert "hvalfangerhuset" in fake_twilio.sent()[-1]["Body"]
    await _sms(client, settings, "Ja, jeg er ved hvalfangerhuset med kanelsnegle")
    messages, _ = await transcript.read(redis, conv)
    assert len(messages) >= 6
    return conv, admin


async def _delivered(redis: aioredis.Redis, receiver: Events, event_type: str) -> None:
    """Waits until the gateway's dispatcher sent `event_type`, then a moment for it to finish
    with what it sent (the scan after it says whether anything was left)."""
    await receiver.wait_for_type(event_type, seconds=15)
    deadline = time.monotonic() + 3
    while await redis.xlen(keys.events_stream()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_erasing_a_conversation_leaves_no_trace_in_redis_logs_or_webhooks(
    settings: Settings,
    redis: aioredis.Redis,
    records: Database,
    fake_twilio: FakeTwilio,
    receiver: Events,
    logs: Logs,
) -> None:
    async with asgi_gateway(settings) as client:
        conv, admin = await drive_conversation(client, settings, redis, records, fake_twilio)
        # The scan finds the conversation while it exists: the needles are the right ones.
        before = {where for where, _ in hits(await every_stored_text(redis), conv)}
        assert keys.transcript(conv) in before and keys.rasa_tracker(conv) in before
        assert len(await list_bookings(records)) == 2

        reason = "Borgerens anmodning om sletning, modtaget pr. telefon"
        erased = await client.post(
            f"/api/v1/staff/conversations/{conv}/erase", json={"reason": reason}, headers=admin
        )
        assert erased.status_code == 200, erased.text
        assert erased.json()["erased"] is True
        await _delivered(redis, receiver, "conversation.erased")

    left = hits(await every_stored_text(redis), conv)
    assert left == [], sorted({where for where, _ in left})
    logged = hits({line: line for line in logs.lines}, conv)
    assert logged == [], sorted({where for where, _ in logged})
    # The municipality's systems got ids and categories, never the name, number or words ...
    sent = {f"webhook {e['type']} {e['id']}": json.dumps(e, ensure_ascii=False) for e in receiver.events()}
    allowed = {conv, conv.removeprefix(recipients.CONVERSATION_PREFIX)}  # the id is how they link events
    assert [hit for hit in hits(sent, conv) if hit[1] not in allowed] == []
    types = [e["type"] for e in receiver.events()]
    assert {"crisis.detected", "handoff.requested", "booking.created", "booking.cancelled"} <= set(types)
    # ... and the erasure itself as the last word: no booking.cancelled with the citizen's details.
    assert types[-1] == "conversation.erased"
    assert await list_bookings(records) == []
    [entry] = [e for e in await audit.entries(records) if e.action == "erase"]
    assert (entry.staff, entry.detail) == ("anne", reason)


async def test_only_an_admin_erases_with_a_reason_and_a_web_citizen_erases_every_booking(
    settings: Settings, redis: aioredis.Redis, records: Database, receiver: Events
) -> None:
    async with asgi_gateway(settings) as client:
        conv = "web-erasure-0123456789abcdef"
        first = await client.post(
            "/api/v1/chat", json={"conversation_id": conv, "text": "Hej, hvalfangerhuset"}
        )
        mine = {TOKEN_HEADER: first.json()["conversation_token"]}
        lars = (await calendar_for(records, settings)).directory.get("lars")
        assert lars is not None
        wish = BookingRequest(
            conversation_id=conv, name=NAME, phone=NUMBER, topic="kanelsnegle", kind=MeetingKind.PHONE
        )
        old = await book(records, redis, settings, Slot(lars, at(5, 10)), wish, MONDAY)
        await cancel_booking(records, redis, old.id, by="citizen", now=MONDAY)
        new = await book(records, redis, settings, Slot(lars, at(6, 10)), wish, MONDAY)

        staff = await _staff(client, redis, records, "mette", Role.STAFF)
        path = f"/api/v1/staff/conversations/{conv}/erase"
        assert (await client.post(path, json={"reason": "fordi"}, headers=staff)).status_code == 403
        assert await get_booking(records, new.id) is not None
        async with httpx.AsyncClient(
            transport=client._transport, base_url=str(client.base_url)
        ) as admin_client:
            admin = await _staff(admin_client, redis, records, "anne", Role.ADMIN)
            assert (await admin_client.post(path, json={}, headers=admin)).status_code == 422  # no reason

        erased = await client.delete(f"/api/v1/chat/{conv}", headers=mine)
        assert erased.status_code == 200, erased.text
        assert await get_booking(records, old.id) is None and await get_booking(records, new.id) is None
        await _delivered(redis, receiver, "conversation.erased")
        assert hits(await every_stored_text(redis), conv) == []


# --- retention ---------------------------------------------------------------------------------

# Keys that may live without a TTL, each with the reason. Anything else without one fails. (Staff
# accounts and the audit log are durable records in SQL: indgang/records.)
DURABLE = {
    "indgang:tovholder:": "tovholder calendars: slot -> booking id; past slots are dropped at each booking",
}
SWEPT = {
    "indgang:handoff:queue": "members whose handoff expired are dropped whenever the queue is read",
    "indgang:handoff:watch": "a conversation goes once picked up, closed, erased or expired",
    "indgang:bookings": "ids of expired bookings are dropped whenever bookings are listed",
    "indgang:booking:notifications": "each notice is removed when it is due (or its booking erased)",
    "indgang:followup:due": "each follow-up is removed when asked (or its conversation erased or stopped)",
    "indgang:events": "trimmed to EVENTS_RETENTION_SECONDS; delivered entries are deleted",
    "indgang:events:deliveries": "swept after EVENTS_RETENTION_SECONDS",
    "indgang:events:retries": "an entry goes with its delivery",
    "indgang:events:dead": "swept after EVENTS_RETENTION_SECONDS",
    "indgang:sms:outbox": "an SMS leaves once Twilio took or finally refused it, or with its conversation",
    "indgang:sms:outbox:items": "the text goes with its SMS from indgang:sms:outbox",
}


async def test_every_key_expires_is_swept_or_is_a_named_durable_record(
    settings: Settings, redis: aioredis.Redis, records: Database, fake_twilio: FakeTwilio, receiver: Events
) -> None:
    async with asgi_gateway(settings) as client:
        conv, admin = await drive_conversation(client, settings, redis, records, fake_twilio)
        await client.get(f"/api/v1/staff/conversations/{conv}/export", headers=admin)
        await client.post(f"/api/v1/staff/conversations/{conv}/close", headers=admin)
    forever = [key async for key in redis.scan_iter(count=500) if await redis.ttl(key) == -1]
    assert forever  # the scan sees the durable records
    unexplained = [
        key for key in forever if key not in SWEPT and not any(key.startswith(prefix) for prefix in DURABLE)
    ]
    assert unexplained == []


async def test_a_message_renews_every_part_of_the_conversation_together(
    settings: Settings, redis: aioredis.Redis, records: Database, fake_twilio: FakeTwilio, receiver: Events
) -> None:
    async with asgi_gateway(settings) as client:
        conv, _ = await drive_conversation(client, settings, redis, records, fake_twilio)
        # Rasa last saved its tracker long ago (staff hold the conversation: Rasa sees no turns).
        for key in (keys.rasa_tracker(conv), keys.conversation(conv)):
            await redis.expire(key, 100)
        await _sms(client, settings, "Er der nogen?")
    ttls = {key: await redis.ttl(key) for key in keys.retained_keys(conv) if await redis.exists(key)}
    assert keys.rasa_tracker(conv) in ttls and keys.sms_recipient(conv) in ttls
    assert all(
        settings.conversation_ttl_seconds - 30 < ttl <= settings.conversation_ttl_seconds
        for ttl in ttls.values()
    ), ttls


async def test_the_staff_queue_drops_a_conversation_that_expired(
    settings: Settings, redis: aioredis.Redis, records: Database, fake_twilio: FakeTwilio
) -> None:
    async with asgi_gateway(settings) as client:
        await _sms(client, settings, "Jeg vil tage mit eget liv i nat")  # an urgent handoff
        conv = recipients.conversation_id(NUMBER, settings)
        admin = await _staff(client, redis, records, "anne", Role.ADMIN)
        await redis.delete(keys.handoff(conv))  # what its expiry does
        listed = (await client.get("/api/v1/staff/conversations", headers=admin)).json()
    assert listed["waiting"] == []
    assert await redis.zcard(keys.handoff_queue()) == 0


async def test_events_deliveries_and_dead_letters_are_kept_for_the_retention_only(
    redis: aioredis.Redis,
) -> None:
    retention, now = 3600, time.time()
    old, fresh = now - retention - 60, now - 60

    def delivery(at: float, n: int) -> Delivery:
        event = new_event(EventType.HANDOFF_TAKEN, {"conversation_id": f"c-{n}"})
        event["created_at"] = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
        return Delivery(id=f"{int(at * 1000)}-0_{n}", url="http://127.0.0.1:9/x", body=json.dumps(event))

    made = [delivery(at_, n) for n, at_ in enumerate((old, fresh))]
    for n, (at_, made_n) in enumerate(zip((old, fresh), made, strict=True)):
        await redis.xadd(keys.events_stream(), {"event": made_n.body}, id=f"{int(at_ * 1000)}-0")
        await redis.hset(keys.events_deliveries(), f"d{n}", made_n.model_dump_json())
        await redis.zadd(keys.events_retries(), {f"d{n}": now + 60})
        await redis.hset(keys.events_dead_letter(), f"x{n}", made_n.model_dump_json())
    assert await sweep(redis, retention, now) == 2
    assert [f["event"] for _, f in await redis.xrange(keys.events_stream())] == [made[1].body]
    assert list(await redis.hgetall(keys.events_deliveries())) == ["d1"]
    assert await redis.zrange(keys.events_retries(), 0, -1) == ["d1"]
    assert list(await redis.hgetall(keys.events_dead_letter())) == ["x1"]


# --- the staff's copy, the console's buttons and the command line ----------------------------------


async def test_staff_export_a_conversation_for_an_access_request_and_it_is_audited(
    settings: Settings, redis: aioredis.Redis, records: Database, fake_twilio: FakeTwilio, receiver: Events
) -> None:
    async with asgi_gateway(settings) as client:
        conv, admin = await drive_conversation(client, settings, redis, records, fake_twilio)
        copy = await client.get(f"/api/v1/staff/conversations/{conv}/export", headers=admin)
        anonymous = await client.get(
            f"/api/v1/staff/conversations/{conv}/export", cookies={"x": "y"}, headers={"Cookie": ""}
        )
    assert copy.status_code == 200 and "attachment" in copy.headers["content-disposition"]
    assert "Mølleåvej" in copy.text and "Er du stadig ved hvalfangerhuset?" in copy.text
    assert "sølvpapir" not in copy.text  # the staff's internal note is not the citizen's data
    assert anonymous.status_code == 401
    [entry] = [e for e in await audit.entries(records) if e.action == "export"]
    assert (entry.staff, entry.conversation_id) == ("anne", keys.pseudonym(conv))


async def test_the_console_erase_button_is_for_admins_and_needs_a_reason(
    settings: Settings, redis: aioredis.Redis, records: Database, fake_twilio: FakeTwilio, receiver: Events
) -> None:
    async with asgi_gateway(settings) as client:
        conv, admin = await drive_conversation(client, settings, redis, records, fake_twilio)
        page = (await client.get(f"/staff/conversations/{conv}")).text
        form = {"csrf_token": admin[CSRF_HEADER]}
        assert t("staff.console.erase", "da") in page and f"/api/v1/staff/conversations/{conv}/export" in page
        no_reason = await client.post(f"/staff/conversations/{conv}/erase", data=form)
        assert no_reason.headers["location"].endswith("notice=erase_needs_reason")
        assert await redis.exists(keys.transcript(conv))
        done = await client.post(
            f"/staff/conversations/{conv}/erase", data={**form, "reason": "Borgeren ringede"}
        )
        assert done.status_code == 303 and done.headers["location"].endswith("notice=erased")
        assert not await redis.exists(keys.transcript(conv))
        shown = await client.get(done.headers["location"])
        assert t("staff.console.erased", "da") in shown.text

        async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as other:
            staff = await _staff(other, redis, records, "mette", Role.STAFF)
            assert (
                t("staff.console.erase", "da") not in (await other.get(f"/staff/conversations/{conv}")).text
            )
            refused = await other.post(
                f"/staff/conversations/{conv}/erase",
                data={"csrf_token": staff[CSRF_HEADER], "reason": "fordi"},
            )
            assert refused.status_code == 403


async def test_the_command_line_erases_and_audits_with_the_reason(
    settings: Settings,
    redis: aioredis.Redis,
    records: Database,
    fake_twilio: FakeTwilio,
    receiver: Events,
) -> None:
    async with asgi_gateway(settings) as client:
        conv, _ = await drive_conversation(client, settings, redis, records, fake_twilio)
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_HOST": settings.redis_host,
        "REDIS_PORT": str(settings.redis_port),
        "REDIS_DB": str(settings.redis_db),
        "PHONE_HASH_KEY": settings.phone_hash_key,  # the deployment's: it finds the number's link
    }
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "indgang.cli", "conversation", "erase", conv]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "--reason" in refused.stderr
    assert await redis.exists(keys.transcript(conv))
    done = subprocess.run(
        [*command, "--reason", "Brev fra borgeren"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # No gateway runs here to deliver `conversation.erased`: that one event waits in the queue.
    stored = await every_stored_text(redis)
    queued = [json.loads(f["event"]) for _, f in await redis.xrange(keys.events_stream())]
    assert [e["type"] for e in queued] == ["conversation.erased"]
    assert hits({k: v for k, v in stored.items() if k != keys.events_stream()}, conv) == []
    [entry] = [e for e in await audit.entries(records) if e.action == "erase"]
    assert entry.staff.startswith("cli:") and entry.detail == "Brev fra borgeren"


# What Rasa 3.6's own RedisTrackerStore does with bot/endpoints.yml, run in Rasa's environment.
RASA_SAVES_A_TRACKER = """
import asyncio, sys
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

store = TrackerStore.create(read_endpoint_config(sys.argv[1], "tracker_store"), Domain.empty())
asyncio.run(store.save(DialogueStateTracker.from_events(sys.argv[2], [UserUttered("hvalfangerhuset")])))
"""


@pytest.mark.stack
async def test_rasa_keeps_its_tracker_where_erasure_looks_for_as_long_as_the_conversation(
    records: Database, settings: Settings, redis: aioredis.Redis
) -> None:
    conv = "web-tracker-0123456789abcdef"
    stack = Stack(settings.model_copy(update={"conversation_ttl_seconds": 4321}))
    subprocess.run(
        [
            str(RASA_BIN.parent / "python"),
            "-c",
            RASA_SAVES_A_TRACKER,
            str(PROJECT_DIR / "bot/endpoints.yml"),
            conv,
        ],
        cwd=PROJECT_DIR,  # bot/endpoints.yml names the tracker store by its module path from here
        env={**stack.env(), "ACTION_SERVER_URL": "http://127.0.0.1:9"},
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert 4300 < await redis.ttl(keys.rasa_tracker(conv)) <= 4321  # record_exp is the retention
    assert await erase_conversation(records, redis, settings, conv, requested_by="citizen") >= 1
    assert not await redis.exists(keys.rasa_tracker(conv))


async def test_a_stop_outlives_the_erasure_without_naming_the_conversation(
    settings: Settings, redis: aioredis.Redis, records: Database, fake_twilio: FakeTwilio, receiver: Events
) -> None:
    async with asgi_gateway(settings) as client:
        await _sms(client, settings, "Hej, jeg sidder ved hvalfangerhuset")
        await _sms(client, settings, "STOP")
        conv = recipients.conversation_id(NUMBER, settings)
        admin = await _staff(client, redis, records, "anne", Role.ADMIN)
        erased = await client.post(
            f"/api/v1/staff/conversations/{conv}/erase", json={"reason": "Borgerens anmodning"}, headers=admin
        )
        assert erased.status_code == 200
        await _delivered(redis, receiver, "conversation.erased")
    assert await optout.opted_out(redis, conv)  # no SMS starts again because the data went
    assert hits(await every_stored_text(redis), conv) == []
