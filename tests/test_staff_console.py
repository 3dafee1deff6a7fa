"""The staff console and API over real HTTP (the gateway in-process, a real Redis, Rasa down):
login, CSRF, the take-over race, replies and notes, release, escaping, and the audit log."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as aioredis
from booking_helpers import MONDAY, at, request
from sqlalchemy import update

from indgang import handoff, keys, transcript
from indgang.booking import Slot, book, calendar_for, get_booking
from indgang.i18n import t
from indgang.records.db import Database
from indgang.records.models import BookingRow, StaffAccount
from indgang.settings import Settings
from indgang.staff import audit
from indgang.staff.accounts import Role, add_account, authenticate
from webhook.citizen import TOKEN_HEADER
from webhook.staff_session import CSRF_HEADER

pytestmark = pytest.mark.anyio

PASSWORD = "korrekt-hest-batteri"
Login = Callable[..., Awaitable[httpx.AsyncClient]]
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & <b>fed</b>'


@pytest.fixture
async def http(live_gateway: str, redis: aioredis.Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_gateway, timeout=30) as client:
        yield client


@pytest.fixture
async def login(live_gateway: str, redis: aioredis.Redis, records: Database) -> AsyncIterator[Login]:
    """Log in as a (new) staff member: a browser-like client with the CSRF header for the API."""
    clients: list[httpx.AsyncClient] = []

    async def log_in(name: str, role: Role = Role.STAFF, replace: bool = True) -> httpx.AsyncClient:
        """`replace=False` logs in to the account as it is (another device of the same person)."""
        if replace:
            await add_account(
                records, redis, name, PASSWORD, role, display_name=name.capitalize(), replace=True
            )
        client = httpx.AsyncClient(base_url=live_gateway, timeout=30)
        clients.append(client)
        form = await client.get("/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text
        response = await client.post(
            "/staff/login", data={"username": name, "password": PASSWORD, "csrf_token": token[1]}
        )
        assert response.status_code == 303 and response.headers["location"] == "/staff"
        page = await client.get("/staff", follow_redirects=True)  # an editor's start page is the catalogue
        client.headers[CSRF_HEADER] = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
        return client

    yield log_in
    for client in clients:
        await client.aclose()


async def citizen_waiting(
    http: httpx.AsyncClient, text: str = "jeg har brug for hjælp"
) -> tuple[str, dict[str, str]]:
    """A citizen on the web chat who asks for a person (the engine is down here: the gateway's
    own path to a person): the conversation's id, and the header that opens it as its citizen."""
    conv = f"staff-{uuid.uuid4().hex}"
    first = await http.post("/api/v1/chat", json={"conversation_id": conv, "text": text})
    mine = {TOKEN_HEADER: first.json()["conversation_token"]}
    response = await http.post(
        "/api/v1/chat", json={"conversation_id": conv, "text": "/request_human"}, headers=mine
    )
    assert response.headers["content-type"] == "application/json", response.text
    turn = response.json()
    assert turn["handoff"] == "requested", turn
    return conv, mine


async def waiting_conversation(http: httpx.AsyncClient, text: str = "jeg har brug for hjælp") -> str:
    return (await citizen_waiting(http, text))[0]


async def test_pages_and_api_need_a_login(http: httpx.AsyncClient) -> None:
    page = await http.get("/staff")
    assert page.status_code == 303 and page.headers["location"] == "/staff/login"
    api = await http.post("/api/v1/staff/conversations/x/takeover")
    assert api.status_code == 401 and api.json()["error"] == "unauthorized"
    assert (await http.get("/api/v1/staff/bookings")).status_code == 401


async def test_a_wrong_password_is_refused_and_a_right_one_logs_in(
    login: Login, http: httpx.AsyncClient, redis: aioredis.Redis, records: Database
) -> None:
    await add_account(records, redis, "mette", PASSWORD, display_name="Mette")
    assert await authenticate(records, "mette", "forkert-kodeord") is None
    assert await authenticate(records, "ukendt", PASSWORD) is None
    async with records.transaction() as session:
        stored = (await session.get(StaffAccount, "mette")).password_hash
    assert stored.startswith("$argon2") and PASSWORD not in stored

    form = await http.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
    wrong = await http.post(
        "/staff/login", data={"username": "mette", "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 401 and t("staff.console.login_failed", "da") in wrong.text
    right = await http.post(
        "/staff/login", data={"username": "Mette", "password": PASSWORD, "csrf_token": token}
    )
    cookie = right.headers["set-cookie"].lower()
    assert right.status_code == 303 and "httponly" in cookie and "samesite=strict" in cookie
    client = await login("mette")
    assert (await client.get("/staff")).status_code == 200
    logout = await client.post("/staff/logout", data={"csrf_token": client.headers[CSRF_HEADER]})
    assert logout.status_code == 303
    assert (await client.get("/staff")).status_code == 303  # logged out
    logins = [e.action for e in await audit.entries(records) if e.action != "inbox"]  # each page is audited
    assert logins[:2] == ["logout", "login"]
    assert (
        await http.post("/staff/login", data={"username": "mette", "password": PASSWORD})
    ).status_code == 403


async def test_every_post_needs_the_csrf_token(
    login: Login, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv = await waiting_conversation(http)
    client = await login("mette")
    token = client.headers.pop(CSRF_HEADER)
    assert (await client.post(f"/api/v1/staff/conversations/{conv}/takeover")).status_code == 403
    wrong = await client.post(f"/api/v1/staff/conversations/{conv}/takeover", headers={CSRF_HEADER: "forged"})
    assert wrong.status_code == 403
    form = await client.post(f"/staff/conversations/{conv}/takeover", data={"text": ""})
    assert form.status_code == 403
    assert (await handoff.get(redis, conv)).state == handoff.HandoffState.REQUESTED
    ok = await client.post(f"/api/v1/staff/conversations/{conv}/takeover", headers={CSRF_HEADER: token})
    assert ok.status_code == 200 and ok.json()["handoff"] == "active"


async def test_two_staff_taking_over_at_once_exactly_one_wins(
    login: Login, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    mette = await login("mette")
    jonas = await login("jonas")
    for _ in range(25):
        conv = await waiting_conversation(http)
        url = f"/api/v1/staff/conversations/{conv}/takeover"
        first, second = await asyncio.gather(mette.post(url), jonas.post(url))
        assert sorted([first.status_code, second.status_code]) == [200, 409]
        loser = first if first.status_code == 409 else second
        assert loser.json()["error"] == "conflict"
        winner = "mette" if first.status_code == 200 else "jonas"
        assert (await handoff.get(redis, conv)).staff == winner


async def test_staff_answer_on_the_citizens_channel_and_notes_stay_internal(
    login: Login, http: httpx.AsyncClient, redis: aioredis.Redis, records: Database
) -> None:
    conv, mine = await citizen_waiting(http)
    client = await login("mette")
    base = f"/api/v1/staff/conversations/{conv}"
    refused = await client.post(f"{base}/messages", json={"text": "Hej"})
    assert refused.status_code == 409  # not taken over yet
    assert (await client.post(f"{base}/takeover")).status_code == 200

    # While staff hold it, the citizen's messages go to staff, not to the bot.
    turn = (
        await http.post("/api/v1/chat", json={"conversation_id": conv, "text": "er der nogen?"}, headers=mine)
    ).json()
    assert turn["replies"] == [] and turn["handoff"] == "active"

    sent = await client.post(f"{base}/messages", json={"text": "Hej, jeg hedder Mette."})
    assert sent.status_code == 201 and sent.json()["from"] == "staff"
    note = await client.post(f"{base}/notes", json={"text": "Ringer tilbage i morgen"})
    assert note.status_code == 201
    assert (await client.post(f"{base}/messages", json={"text": ""})).status_code == 422

    citizen = (await http.get(f"/api/v1/chat/{conv}/messages", headers=mine)).json()["messages"]
    texts = [(m["from"], m["text"]) for m in citizen]
    assert ("staff", "Hej, jeg hedder Mette.") in texts
    assert all("Ringer tilbage" not in text for _, text in texts)
    page = await client.get(f"/staff/conversations/{conv}")
    assert "Ringer tilbage i morgen" in page.text and "er der nogen?" in page.text

    released = await client.post(f"{base}/release")
    assert released.status_code == 200 and released.json()["handoff"] == "none"
    assert (await client.post(f"{base}/release")).status_code == 409
    last = (await http.get(f"/api/v1/chat/{conv}/messages", headers=mine)).json()["messages"][-1]
    assert last["text"] == t("staff.released", "da")
    events = [json.loads(f["event"])["type"] for _, f in await redis.xrange(keys.events_stream())]
    assert events.count("handoff.taken") == 1 and events.count("handoff.released") == 1
    actions = {(e.action, e.conversation_id) for e in await audit.entries(records)}
    conv = keys.pseudonym(conv)  # the audit log outlives conversations: it names them by pseudonym
    assert {
        ("take_over", conv),
        ("reply", conv),
        ("note", conv),
        ("view", conv),
        ("release", conv),
    } <= actions


async def test_the_console_buttons_work_as_plain_forms(
    login: Login, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv = await waiting_conversation(http)
    client = await login("mette")
    token = {"csrf_token": client.headers.pop(CSRF_HEADER)}
    taken = await client.post(f"/staff/conversations/{conv}/takeover", data=token)
    assert taken.status_code == 303 and taken.headers["location"] == f"/staff/conversations/{conv}"
    empty = await client.post(f"/staff/conversations/{conv}/reply", data={**token, "text": "  "})
    assert empty.headers["location"].endswith("?notice=empty_text")
    await client.post(f"/staff/conversations/{conv}/reply", data={**token, "text": "Hej fra {staff}"})
    messages, _ = await transcript.read(redis, conv)
    assert messages[-1].sender == "staff" and messages[-1].text == "Hej fra Mette"
    closed = await client.post(f"/staff/conversations/{conv}/close", data=token)
    assert closed.status_code == 303 and closed.headers["location"] == "/staff"
    assert (await handoff.get(redis, conv)).state == handoff.HandoffState.CLOSED


async def test_citizen_text_is_escaped_on_every_page(
    login: Login, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv = await waiting_conversation(http, HOSTILE)
    client = await login("mette")
    for url in ("/staff", f"/staff/conversations/{conv}"):
        html = (await client.get(url)).text
        assert "&lt;script&gt;" in html, url
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>fed</b>" not in html


async def test_the_inbox_puts_urgent_first_then_oldest(
    login: Login, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    older = await waiting_conversation(http, "jeg vil gerne tale med nogen")
    newer = await waiting_conversation(http, "hjælp med bolig")
    urgent = f"staff-{uuid.uuid4().hex}"
    crisis = await http.post(
        "/api/v1/chat", json={"conversation_id": urgent, "text": "jeg vil ikke leve mere"}
    )
    assert crisis.json()["replies"][0]["crisis"] is True
    client = await login("mette")
    listed = (await client.get("/api/v1/staff/conversations")).json()
    assert [i["conversation_id"] for i in listed["waiting"]] == [urgent, older, newer]
    assert listed["waiting"][0]["priority"] == "urgent"
    await client.post(f"/api/v1/staff/conversations/{older}/takeover")
    listed = (await client.get("/api/v1/staff/conversations")).json()
    assert [i["conversation_id"] for i in listed["mine"]] == [older]


async def test_the_audit_log_is_for_admins(
    login: Login, http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv = await waiting_conversation(http)
    staff = await login("mette")
    admin = await login("anne", Role.ADMIN)
    await staff.get(f"/staff/conversations/{conv}")
    assert (await staff.get("/staff/audit")).status_code == 403
    page = await admin.get("/staff/audit")
    # the log outlives conversations, so it names them by pseudonym
    assert page.status_code == 200 and keys.pseudonym(conv) in page.text and "mette" in page.text
    assert (await admin.get("/staff/webhooks")).status_code == 200


async def test_bookings_are_listed_for_staff(login: Login, records: Database) -> None:
    client = await login("mette")
    listed = await client.get("/api/v1/staff/bookings")
    assert listed.status_code == 200 and listed.json() == {"bookings": []}
    assert (await audit.entries(records))[0].action == "bookings"


async def test_staff_mark_a_no_show_and_a_citizen_cannot(
    login: Login, http: httpx.AsyncClient, records: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    """From the bookings list a tovholder marks that the citizen did not come, once the meeting
    has begun; the mark is in the list and in the audit log. Without a staff session (a citizen),
    or without the CSRF header (another site's form), nothing changes."""
    mette = (await calendar_for(records, base_settings)).directory.get("mette")
    booking = await book(records, redis, base_settings, Slot(mette, at(4, 10)), request(), now=MONDAY)
    path = f"/api/v1/staff/bookings/{booking.id}/no-show"
    client = await login("mette")
    assert (await client.post(path, json={"no_show": True})).status_code == 404  # not yet begun
    began = datetime.now(UTC) - timedelta(minutes=30)  # the meeting's time, moved into the past
    async with records.transaction() as session:
        await session.execute(
            update(BookingRow)
            .where(BookingRow.id == booking.id)
            .values(starts_at=began, ends_at=began + timedelta(hours=1))
        )
    assert (await http.post(path, json={"no_show": True})).status_code == 401
    forged = await client.post(path, json={"no_show": True}, headers={CSRF_HEADER: ""})
    assert forged.status_code == 403
    assert not (await get_booking(records, booking.id)).no_show
    marked = await client.post(path, json={"no_show": True})
    assert marked.status_code == 200 and marked.json()["no_show"] is True
    [listed] = (await client.get("/api/v1/staff/bookings")).json()["bookings"]
    assert listed["id"] == booking.id and listed["no_show"] is True
    entry = next(e for e in await audit.entries(records) if e.action == "booking_no_show")
    assert (entry.staff, entry.detail) == ("mette", "no_show")
