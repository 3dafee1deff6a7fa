"""The staff console's edges over real HTTP (the gateway in-process, a real Redis): sessions
expire, a forged cookie opens nothing, no other site may frame the console, and an admin's
retry of a failed outbound event really sends it again (the gateway's own dispatcher, to a real
local receiver)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from base64 import b64encode

import httpx
import itsdangerous
import pytest
import redis.asyncio as aioredis
from test_staff_console import Login, http, login, waiting_conversation  # noqa: F401 (fixtures)
from test_webhooks_out import Receiver

from indgang import keys
from indgang.events import EventType, new_event
from indgang.i18n import t
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.staff import audit
from indgang.staff.accounts import Role
from indgang.webhooks import dead_letters
from indgang.webhooks.dispatcher import Delivery
from webhook.staff_session import CSRF_HEADER, SESSION_COOKIE

pytestmark = pytest.mark.anyio


def signed_cookie(settings: Settings, session: dict[str, object]) -> str:
    """A cookie as the gateway signs them, with any content: what someone who knows (or guessed)
    the signing secret can make."""
    signer = itsdangerous.TimestampSigner(settings.staff_session_secret)
    return signer.sign(b64encode(json.dumps(session).encode())).decode()


async def test_a_login_expires_after_the_session_time(
    login: Login,  # noqa: F811
    redis: aioredis.Redis,
    base_settings: Settings,
) -> None:
    client = await login("mette")
    [digest] = await redis.smembers(keys.staff_account_sessions("mette"))
    ttl = await redis.ttl(keys.staff_session(digest))
    assert base_settings.staff_session_seconds - 60 < ttl <= base_settings.staff_session_seconds
    assert (await client.get("/staff")).status_code == 200  # still within the working day

    await redis.pexpire(keys.staff_session(digest), 1)  # the working day is over
    await asyncio.sleep(0.05)
    page = await client.get("/staff")
    assert page.status_code == 303 and page.headers["location"] == "/staff/login?expired=1"
    form = await client.get(page.headers["location"])
    assert t("staff.console.session_expired", "da") in form.text
    assert (await client.get("/api/v1/staff/conversations")).status_code == 401
    assert (await client.get("/staff/inbox/events")).status_code == 303  # the live inbox stops too


async def test_the_signing_secret_alone_opens_no_session(
    login: Login,  # noqa: F811
    live_gateway: str,
    base_settings: Settings,
) -> None:
    """The cookie names a session; the login itself is in Redis. A cookie forged with the signing
    secret (the published default, say) that names a user, or guesses an id, is nobody."""
    await login("anne", Role.ADMIN)
    async with httpx.AsyncClient(base_url=live_gateway, timeout=30) as forger:
        for forged in (
            {"user": "anne", "at": int(time.time()), "csrf": "x"},
            {"sid": "anne"},
            {"sid": ""},
        ):
            forger.cookies.set(SESSION_COOKIE, signed_cookie(base_settings, forged))
            assert (await forger.get("/staff/audit")).status_code == 303
            assert (await forger.get("/api/v1/staff/conversations")).status_code == 401


async def test_no_other_site_may_frame_the_console_or_cache_it(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    client = await login("mette")
    for response in (await client.get("/staff"), await http.get("/staff/login")):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
    # The citizen chat stays embeddable: the widget frames it on the municipality's own site.
    assert "frame-ancestors" not in (await http.get("/")).headers["content-security-policy"]


async def test_listing_the_inbox_is_audited(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    records: Database,
) -> None:
    conv = await waiting_conversation(http)
    client = await login("mette")
    listed = (await client.get("/api/v1/staff/conversations")).json()
    assert [item["conversation_id"] for item in listed["waiting"]] == [conv]
    newest = (await audit.entries(records))[0]
    assert (newest.staff, newest.action) == ("mette", "inbox")


async def test_an_admin_sends_a_dead_letter_again_from_the_console(
    login: Login,  # noqa: F811
    redis: aioredis.Redis,
    records: Database,
) -> None:
    receiver = Receiver()
    try:
        event = new_event(EventType.HANDOFF_REQUESTED, {"conversation_id": "c-<b>dead</b>"})
        letter = Delivery(
            id=f"0-1_{uuid.uuid4().hex[:12]}",
            url=receiver.url,
            body=json.dumps(event),
            attempts=12,
            last_error="HTTP 503",
            failed_at="2026-11-23T10:00:00+00:00",
        )  # what the dispatcher keeps after the last attempt
        await redis.hset(keys.events_dead_letter(), letter.id, letter.model_dump_json())

        staff = await login("mette")
        assert (await staff.get("/staff/webhooks")).status_code == 403
        assert (await staff.post(f"/staff/webhooks/{letter.id}/retry")).status_code == 403

        admin = await login("anne", Role.ADMIN)
        page = await admin.get("/staff/webhooks")
        assert event["id"] in page.text and "HTTP 503" in page.text
        token = admin.headers.pop(CSRF_HEADER)
        assert (await admin.post(f"/staff/webhooks/{letter.id}/retry")).status_code == 403  # no token
        assert len(await dead_letters(redis)) == 1

        retried = await admin.post(f"/staff/webhooks/{letter.id}/retry", data={"csrf_token": token})
        assert retried.status_code == 303 and retried.headers["location"] == "/staff/webhooks"
        await receiver.wait_for(1, seconds=10)  # the gateway's dispatcher picks it up
        [(headers, body)] = receiver.received
        assert json.loads(body)["id"] == event["id"] and headers["X-Indgang-Delivery-Attempt"] == "1"
        deadline = time.monotonic() + 5
        while await redis.hexists(keys.events_deliveries(), letter.id):
            assert time.monotonic() < deadline, "the delivery was not marked done"
            await asyncio.sleep(0.05)
        assert await dead_letters(redis) == []
        assert "HTTP 503" not in (await admin.get("/staff/webhooks")).text
        logged = {(e.staff, e.action, e.detail) for e in await audit.entries(records)}
        assert ("anne", "webhook_retry", letter.id) in logged
    finally:
        receiver.close()
