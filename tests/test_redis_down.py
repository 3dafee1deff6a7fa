"""Fault injection: Redis dies under a running gateway, and comes back.

The gateway under test has its own redis-server (started here, killed here, restarted on the
same port), the real gateway serving real HTTP, and the real Twilio SDK talking to the fake
Twilio. Rasa is not running (its URL is dead): what is asserted here (the inline answers, the
spool, the replay into the transcript, the safety check and the staff queue) does not need the
engine, and the engine-down answer is itself an answer the replay sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from conftest import gateway_settings, serving
from fakes.twilio_api import FakeTwilio
from twilio.request_validator import RequestValidator

from indgang import conversation, handoff, keys, transcript
from indgang.devstack import PROJECT_DIR, free_port, redis_server_binary
from indgang.inbound import Inbound, offline_reply
from indgang.records import db as records
from indgang.redis_store import connect
from indgang.settings import Settings
from indgang.sms import recipients
from indgang.spool import Spool, SpooledMessage, SpoolReplay
from indgang.staff.accounts import Role, add_account
from webhook.staff_session import CSRF_HEADER

NUMBER = "+4520123499"
CRISIS = "Jeg vil slå mig selv ihjel i aften"
CALM = "Hvornår har jobcentret åbent?"
TWILIO_TIMEOUT_SECONDS = 15  # Twilio gives up on a webhook after this


class PrivateRedis:
    """A redis-server this test may kill and restart on the same port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        client = sync_redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except sync_redis.RedisError:
                time.sleep(0.1)
        raise TimeoutError("redis-server did not start")

    def pause(self, paused: bool) -> None:
        """A hung Redis: connections are accepted, nothing is answered (commands time out)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def settings(
    base_settings: Settings, private_redis: PrivateRedis, fake_twilio: FakeTwilio, tmp_path: Path
) -> Settings:
    update = {
        "redis_url": None,
        "redis_host": "127.0.0.1",
        "redis_port": private_redis.port,
        "redis_db": 0,
        "spool_dir": tmp_path / "spool",
        "spool_replay_interval_seconds": 0.2,
        "booking_scheduler_interval_seconds": 3600,
    }
    return fake_twilio.configure(gateway_settings(base_settings)).model_copy(update=update)


def _form(body: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "From": NUMBER,
        "To": "+4570000000", "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01",
    }  # fmt: skip


def _sms(url: str, settings: Settings, body: str) -> httpx.Response:
    form = _form(body)
    signed_url = f"{settings.public_base_url.rstrip('/')}/twilio/sms"
    signature = RequestValidator(settings.twilio_auth_token or "").compute_signature(signed_url, form)
    return httpx.post(f"{url}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}, timeout=30)


def _wait(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _spooled(settings: Settings) -> list[str]:
    """The spool's records, as raw lines (empty when there is no file)."""
    lines = []
    for f in sorted(Path(settings.spool_dir).glob("*.jsonl")):
        with contextlib.suppress(FileNotFoundError):  # the replay removed it since the glob
            lines += [line for line in f.read_text().splitlines() if line.strip()]
    return lines


async def _read(settings: Settings, conv: str) -> list[transcript.Message]:
    client = connect(settings)
    try:
        return (await transcript.read(client, conv))[0]
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_sms_while_redis_is_down_is_answered_inline_and_replayed_once_when_it_is_back(
    settings: Settings, private_redis: PrivateRedis, fake_twilio: FakeTwilio
) -> None:
    conv = recipients.conversation_id(recipients.canonical_number(NUMBER), settings)
    with serving(settings) as url:
        assert _sms(url, settings, "Hej").status_code == 200
        fake_twilio.wait_for(1)
        before = len(await _read(settings, conv))
        assert before == 2  # the greeting and the (engine-down) answer

        private_redis.kill()

        crisis = _sms(url, settings, CRISIS)
        assert crisis.status_code == 200, crisis.text
        assert crisis.headers["content-type"].startswith("application/xml")
        assert "112" in crisis.text and "70 201 201" in crisis.text  # 112 and Livslinien

        calm = _sms(url, settings, CALM)
        assert calm.status_code == 200, calm.text
        assert "tekniske problemer" in calm.text and "112" in calm.text
        assert "70 201 201" not in calm.text  # no alarm for a calm message

        # the signature is still checked first: a forged SMS is refused and never kept
        forged = httpx.post(
            f"{url}/twilio/sms", data=_form(CRISIS), headers={"X-Twilio-Signature": "forged"}, timeout=30
        )
        assert forged.status_code == 403

        records = _spooled(settings)
        assert len(records) == 2
        spool_file = next(Path(settings.spool_dir).glob("*.jsonl"))
        assert stat.S_IMODE(spool_file.stat().st_mode) == 0o600  # it holds personal data

        private_redis.start()  # an empty Redis on the same port, as after a crash without AOF

        _wait(lambda: not _spooled(settings))
        messages = await _read(settings, conv)
        users = [m.text for m in messages if m.sender == "user"]
        assert users == [CRISIS, CALM]  # in order, each once
        crisis_replies = [m for m in messages if m.sender == "bot" and m.crisis]
        # the emergency reply once; the calm question after it, before help has come, keeps 112
        # in sight (indgang.safety.danger_continues) without a second alarm
        assert [m.risk for m in crisis_replies] == ["acute", "acute"]
        assert "70 201 201" in crisis_replies[0].text and "70 201 201" not in crisis_replies[1].text

        client = connect(settings)
        try:
            assert conv in await handoff.queued(client)  # staff see it
            assert (await handoff.get(client, conv)).state == handoff.HandoffState.REQUESTED
            assert await client.exists(keys.sms_recipient(conv))
        finally:
            await client.aclose()

        # the citizen gets the bot's answers by SMS after the replay: the crisis reply urgently
        sent = fake_twilio.wait_for(3)
        assert any("70 201 201" in m["Body"] for m in sent[1:])

        time.sleep(1)  # further replay rounds change nothing
        assert [m.text for m in await _read(settings, conv) if m.sender == "user"] == [CRISIS, CALM]


@pytest.mark.anyio
async def test_a_crisis_sms_while_redis_hangs_is_answered_within_twilios_limit_and_replayed(
    settings: Settings, private_redis: PrivateRedis, fake_twilio: FakeTwilio
) -> None:
    """Redis that hangs, not refuses: commands time out (and may still run when it wakes)."""
    conv = recipients.conversation_id(recipients.canonical_number(NUMBER), settings)
    with serving(settings) as url:
        assert _sms(url, settings, "Hej").status_code == 200
        private_redis.pause(True)
        try:
            started = time.monotonic()
            crisis = _sms(url, settings, CRISIS)
            took = time.monotonic() - started
        finally:
            private_redis.pause(False)
        assert crisis.status_code == 200 and "112" in crisis.text and "70 201 201" in crisis.text
        assert took < TWILIO_TIMEOUT_SECONDS
        _wait(lambda: not _spooled(settings))
        messages = await _read(settings, conv)
        assert [m.text for m in messages if m.sender == "user"] == ["Hej", CRISIS]
        assert any(m.crisis for m in messages if m.sender == "bot")


@pytest.mark.anyio
async def test_web_chat_while_redis_is_down_answers_503_with_the_reply_and_replays_it(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    conv = "redis-down-" + secrets.token_hex(8)
    with serving(settings) as url:
        private_redis.kill()
        first = {"conversation_id": conv, "text": CRISIS}
        response = httpx.post(f"{url}/api/v1/chat", json=first, timeout=30)
        assert response.status_code == 503, response.text
        body = response.json()
        [reply] = body["replies"]
        assert reply["crisis"] is True and reply["risk"] == "acute"
        assert "112" in reply["text"]
        token = body["conversation_token"]

        # a message with somebody's guessed token is answered alike, and never stored
        other = httpx.post(
            f"{url}/api/v1/chat",
            json={"conversation_id": conv, "text": CALM},
            headers={"X-Conversation-Token": "not-the-token-" + secrets.token_hex(8)},
            timeout=30,
        )
        assert other.status_code == 503
        assert other.json()["replies"][0]["crisis"] is False
        assert "conversation_token" not in other.json()
        assert len(_spooled(settings)) == 2

        private_redis.start()
        _wait(lambda: not _spooled(settings))
        page = httpx.get(
            f"{url}/api/v1/chat/{conv}/messages", headers={"X-Conversation-Token": token}, timeout=30
        )
        assert page.status_code == 200
        messages = page.json()["messages"]
        assert [m["text"] for m in messages if m["from"] == "user"] == [CRISIS]
        assert any(m.get("crisis") for m in messages if m["from"] == "bot")


# --- the spool and its replay, against the suite's Redis --------------------------------------


def _replay(spool: Spool, redis: aioredis.Redis, handled: list[str], base_settings: Settings) -> SpoolReplay:
    async def handler(message: SpooledMessage) -> None:
        handled.append(message.text)

    return SpoolReplay(spool, redis, {"sms": handler, "web": handler}, base_settings)


@pytest.mark.anyio
async def test_a_record_replayed_before_a_crash_is_not_replayed_again(
    redis: aioredis.Redis, tmp_path: Path, base_settings: Settings
) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    first, second = SpooledMessage(channel="sms", text="a"), SpooledMessage(channel="sms", text="b")
    assert await spool.append(first) and await spool.append(second)
    assert stat.S_IMODE(spool.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool.path.parent.stat().st_mode) == 0o700
    # the gateway died after handling `first`, before removing it from the file
    await redis.set(keys.spool_replay(first.id), "done")
    handled: list[str] = []
    assert await _replay(spool, redis, handled, base_settings).replay() == 1
    assert handled == ["b"]
    assert await spool.pending() == [] and not spool.path.exists()


@pytest.mark.anyio
async def test_a_record_whose_replay_crashed_midway_waits_for_its_lease_and_is_not_lost(
    redis: aioredis.Redis, tmp_path: Path, base_settings: Settings
) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    first, second = SpooledMessage(channel="sms", text="a"), SpooledMessage(channel="web", text="b")
    await spool.append(first)
    await spool.append(second)
    await redis.set(keys.spool_replay(first.id), "pending", ex=keys.SPOOL_LEASE_SECONDS)
    handled: list[str] = []
    replay = _replay(spool, redis, handled, base_settings)
    assert await replay.replay() == 0  # the order is kept: nothing overtakes the crashed record
    assert handled == [] and len(await spool.pending()) == 2
    await redis.delete(keys.spool_replay(first.id))  # the lease ran out
    assert await replay.replay() == 2
    assert handled == ["a", "b"] and await spool.pending() == []


@pytest.mark.anyio
async def test_a_failed_replay_keeps_the_record_for_the_next_round(
    redis: aioredis.Redis, tmp_path: Path, base_settings: Settings
) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    await spool.append(SpooledMessage(channel="sms", text="a"))
    calls: list[str] = []

    async def flaky(message: SpooledMessage) -> None:
        calls.append(message.text)
        if len(calls) == 1:
            raise RuntimeError("the engine fell over")

    replay = SpoolReplay(spool, redis, {"sms": flaky}, base_settings)
    with pytest.raises(RuntimeError):
        await replay.replay()
    assert len(await spool.pending()) == 1
    assert await replay.replay() == 1
    assert calls == ["a", "a"] and await spool.pending() == []


@pytest.mark.anyio
async def test_a_torn_line_is_skipped_and_an_old_record_expires_unreplayed(
    redis: aioredis.Redis, tmp_path: Path, base_settings: Settings
) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    old = SpooledMessage(
        channel="sms", text="old", at=time.time() - base_settings.conversation_ttl_seconds - 1
    )
    await spool.append(old)
    with spool.path.open("a") as torn:
        torn.write('{"id": "x", "chan')  # the power went mid-write
    await spool.append(SpooledMessage(channel="sms", text="new"))
    handled: list[str] = []
    assert await _replay(spool, redis, handled, base_settings).replay() == 1
    assert handled == ["new"] and not spool.path.exists()


@pytest.mark.anyio
async def test_a_full_spool_keeps_nothing_more_and_the_answer_says_so(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 600)
    assert await spool.append(SpooledMessage(channel="sms", text="x" * 100))
    assert not await spool.append(SpooledMessage(channel="sms", text="y" * 200))
    assert [m.text for m in await spool.pending()] == ["x" * 100]
    saved, _ = offline_reply("Hvornår har I åbent?", None, True)
    unsaved, _ = offline_reply("Hvornår har I åbent?", None, False)
    assert "gemt" in saved.text and "gemt" not in unsaved.text and "Prøv igen" in unsaved.text
    english, lang = offline_reply("When are you open?", "en", True)
    assert lang == "en" and "technical problems" in english.text


@pytest.mark.anyio
async def test_a_spooled_web_message_cannot_take_over_an_existing_conversation(
    redis: aioredis.Redis, base_settings: Settings
) -> None:
    """While Redis is down nothing can check a token: an attacker who sends "the first message"
    of a victim's conversation id gets a token of its own, which the replay must refuse."""
    conv = "victim-" + secrets.token_hex(8)
    victim_token = await conversation.start_web(redis, conv, base_settings.conversation_ttl_seconds)
    assert victim_token
    database = records.connect(base_settings)
    inbound = Inbound(redis, database, _NoEngine(), base_settings)
    forged = SpooledMessage(
        channel="web", text="Hej", conversation_id=conv, token=conversation.new_token(), new_conversation=True
    )
    guessed = SpooledMessage(channel="web", text="Hej igen", conversation_id=conv, token="guess")
    await inbound.replay_web(forged)
    await inbound.replay_web(guessed)
    await database.aclose()
    assert (await transcript.read(redis, conv))[0] == []
    assert await conversation.token_matches(redis, conv, victim_token)


class _NoEngine:
    """Never reached: a refused message must not get as far as the dialogue engine."""

    async def send(self, *_: object) -> list[object]:
        raise AssertionError("a refused spooled message reached the engine")


# --- every route while Redis is down: an answer, never a 500 ----------------------------------

STAFF_PASSWORD = "korrekt-hest-batteri"
WEB_ID = "redisdown" + "a" * 16


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found[1]


def _signed(settings: Settings, path: str, form: dict[str, str]) -> dict[str, str]:
    url = f"{settings.public_base_url.rstrip('/')}{path}"
    signature = RequestValidator(settings.twilio_auth_token or "").compute_signature(url, form)
    return {"X-Twilio-Signature": signature}


def _api_calls(settings: Settings, token: str) -> dict[tuple[str, str], dict[str, Any]]:
    """One call for every operation in the OpenAPI schema: (method, path template) -> what to
    send, valid enough to reach the part that needs Redis."""
    conv = f"/api/v1/staff/conversations/{WEB_ID}"
    mine = {"X-Conversation-Token": token}
    sms_form = _form(CALM)
    status_form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32}
    status_path = f"/twilio/status?conversation={WEB_ID}"
    return {
        ("GET", "/healthz"): {"url": "/healthz"},
        ("GET", "/readyz"): {"url": "/readyz"},
        ("POST", "/api/v1/chat"): {
            "url": "/api/v1/chat", "json": {"conversation_id": WEB_ID, "text": CALM}, "headers": mine
        },
        ("POST", "/api/v1/followup"): {
            "url": "/api/v1/followup", "headers": {"X-Followup-Key": "k" * 32}
        },
        ("GET", "/api/v1/chat/{conversation_id}/messages"): {
            "url": f"/api/v1/chat/{WEB_ID}/messages", "headers": mine
        },
        ("GET", "/api/v1/chat/{conversation_id}/export"): {
            "url": f"/api/v1/chat/{WEB_ID}/export", "headers": mine
        },
        ("GET", "/api/v1/offers"): {"url": "/api/v1/offers?q=jeg+har+brug+for+et+sted+at+bo"},
        ("GET", "/api/v1/bookings/{booking_id}.ics"): {"url": "/api/v1/bookings/bk_0123abcd.ics?token=x"},
        ("POST", "/twilio/sms"): {
            "url": "/twilio/sms", "data": sms_form, "headers": _signed(settings, "/twilio/sms", sms_form)
        },
        ("POST", "/twilio/status"): {
            "url": status_path, "data": status_form, "headers": _signed(settings, status_path, status_form)
        },
        ("GET", "/api/v1/chat/{conversation_id}/events"): {
            "url": f"/api/v1/chat/{WEB_ID}/events", "headers": mine
        },
        ("DELETE", "/api/v1/chat/{conversation_id}"): {"url": f"/api/v1/chat/{WEB_ID}", "headers": mine},
        ("GET", "/api/v1/crisis-lines"): {"url": "/api/v1/crisis-lines"},
        ("GET", "/api/v1/staff/conversations"): {"url": "/api/v1/staff/conversations"},
        ("POST", "/api/v1/staff/conversations/{conversation_id}/open"): {
            "url": f"{conv}/open", "json": {"reason": "borgeren ringede"}
        },
        ("POST", "/api/v1/staff/conversations/{conversation_id}/takeover"): {"url": f"{conv}/takeover"},
        ("POST", "/api/v1/staff/conversations/{conversation_id}/messages"): {
            "url": f"{conv}/messages", "json": {"text": "Hej"}
        },
        ("POST", "/api/v1/staff/conversations/{conversation_id}/notes"): {
            "url": f"{conv}/notes", "json": {"text": "Note"}
        },
        ("POST", "/api/v1/staff/conversations/{conversation_id}/release"): {"url": f"{conv}/release"},
        ("POST", "/api/v1/staff/conversations/{conversation_id}/close"): {"url": f"{conv}/close"},
        ("GET", "/api/v1/staff/bookings"): {"url": "/api/v1/staff/bookings"},
        ("POST", "/api/v1/staff/bookings/{booking_id}/no-show"): {
            "url": "/api/v1/staff/bookings/bk_0123abcd/no-show", "json": {"no_show": True}
        },
        ("POST", "/api/v1/staff/conversations/{conversation_id}/erase"): {
            "url": f"{conv}/erase", "json": {"reason": "borgeren bad om det"}
        },
        ("GET", "/api/v1/staff/conversations/{conversation_id}/export"): {"url": f"{conv}/export"},
    }  # fmt: skip


def _page_calls(csrf: str) -> list[dict[str, Any]]:
    """The HTML pages and their forms (outside the schema)."""
    conv = f"/staff/conversations/{WEB_ID}"
    form = {"csrf_token": csrf}
    return [
        {"method": "GET", "url": "/"},
        {"method": "GET", "url": "/widget.js"},
        {"method": "GET", "url": "/staff/login"},
        {"method": "GET", "url": "/staff/login/totp"},
        {"method": "POST", "url": "/staff/login/totp", "data": {**form, "code": "123456"}},
        {"method": "GET", "url": "/staff/account"},
        {"method": "POST", "url": "/staff/password", "data": {**form, "current": "x", "new": "y" * 12}},
        {"method": "GET", "url": "/staff/totp"},
        {"method": "POST", "url": "/staff/totp", "data": {**form, "code": "123456"}},
        {"method": "GET", "url": "/staff"},
        {"method": "GET", "url": "/staff/inbox/events"},
        {"method": "GET", "url": conv},
        {"method": "GET", "url": f"{conv}/events"},
        {"method": "POST", "url": f"{conv}/open", "data": {**form, "reason": "borgeren ringede"}},
        {"method": "POST", "url": f"{conv}/erase", "data": {**form, "reason": "borgeren bad om det"}},
        {"method": "POST", "url": f"{conv}/takeover", "data": form},
        {"method": "POST", "url": f"{conv}/reply", "data": {**form, "text": "Hej"}},
        {"method": "GET", "url": "/staff/audit"},
        {"method": "GET", "url": "/staff/webhooks"},
        {"method": "POST", "url": "/staff/webhooks/1-0/retry", "data": form},
        {"method": "GET", "url": "/metrics"},
        {"method": "GET", "url": "/docs"},
        {"method": "POST", "url": "/staff/logout", "data": form},
        # last: a login attempt while the accounts cannot be read
        {"method": "POST", "url": "/staff/login", "data": {**form, "username": "anna", "password": "x" * 12}},
    ]


def _answer(client: httpx.Client, method: str, call: dict[str, Any]) -> httpx.Response:
    """The status and the body; a stream that opened is read no further."""
    call = dict(call)
    headers = {**client.headers, **call.pop("headers", {})}
    with client.stream(method, call.pop("url"), headers=headers, **call) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
        return response


@pytest.mark.anyio
async def test_every_route_answers_while_redis_is_down_never_500(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    """The attack: a staff member logged in, a citizen with a conversation, then Redis dies and
    every operation of the OpenAPI schema and every page is called. Each must answer as it does
    without Redis (the offer search and the crisis lines work) or with 503, Retry-After and the
    API's one error body (a short Danish/English page for HTML), never a 500 or a traceback."""
    with serving(settings) as url:
        store, db = connect(settings), records.connect(settings)
        try:
            await add_account(
                db, store, "anna", STAFF_PASSWORD, Role.ADMIN, display_name="Anna", replace=True
            )
        finally:
            await store.aclose()
            await db.aclose()
        first = {"conversation_id": WEB_ID, "text": "Hej"}
        citizen = httpx.post(f"{url}/api/v1/chat", json=first, timeout=30)
        token = citizen.json()["conversation_token"]
        with httpx.Client(base_url=url, timeout=30) as staff:
            form = staff.get("/staff/login")
            logged_in = staff.post(
                "/staff/login",
                data={"username": "anna", "password": STAFF_PASSWORD, "csrf_token": _csrf(form)},
            )
            assert logged_in.status_code == 303
            csrf = _csrf(staff.get("/staff"))
            staff.headers[CSRF_HEADER] = csrf

            schema = staff.get("/openapi.json").json()
            operations = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
            calls = _api_calls(settings, token)
            assert operations == set(calls)  # a new route joins this test

            private_redis.kill()
            answers = {f"{m} {p}": _answer(staff, m, c) for (m, p), c in calls.items()}
            for call in _page_calls(csrf):
                page = dict(call)
                method = page.pop("method")
                answers[f"{method} {call['url']}"] = _answer(staff, method, page)
            assert staff.get("/openapi.json").status_code == 200

    failed = {n: r.status_code for n, r in answers.items() if r.status_code >= 500 and r.status_code != 503}
    assert failed == {}
    for name, response in answers.items():
        assert "Traceback" not in response.text and "ConnectionError" not in response.text, name
        if response.status_code != 503 or name.endswith("/readyz"):
            continue
        assert response.headers.get("retry-after", "").isdigit(), name
        content_type = response.headers["content-type"]
        method, _, path = name.partition(" ")
        if (method, path) in calls:  # the contract says so
            assert "503" in schema["paths"][path][method.lower()]["responses"], name
        if content_type.startswith("application/json"):
            body = response.json()
            assert body.get("error") == "unavailable" or "replies" in body, (name, body)
        elif name == "POST /twilio/sms":
            assert "tekniske problemer" in response.text, response.text
        else:
            assert content_type.startswith("text/html"), (name, content_type)
            assert "lige nu" in response.text and "right now" in response.text, (name, response.text)
    assert answers["GET /api/v1/offers"].status_code == 200
    assert answers["GET /api/v1/offers"].json()["offers"]
    assert answers["GET /api/v1/crisis-lines"].status_code == 200
    assert answers["POST /twilio/sms"].status_code == 200  # TwiML: Twilio does not retry a 5xx


# --- one spool directory, several gateways ----------------------------------------------------

_WRITER = """
import asyncio, sys
from pathlib import Path
from indgang.spool import Spool, SpooledMessage

async def main(directory: str, name: str, count: int) -> None:
    spool = Spool(Path(directory), 1 << 24)
    for n in range(count):
        assert await spool.append(SpooledMessage(channel="sms", text=f"{name}-{n}"))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.mark.anyio
async def test_two_gateways_spooling_into_one_directory_while_two_replay_lose_and_double_nothing(
    redis: aioredis.Redis, tmp_path: Path, base_settings: Settings
) -> None:
    """Two gateway processes append to the same spool directory while two others replay it
    (removing each record as it goes): every record is handled exactly once, in order."""
    directory, count = tmp_path / "spool", 300
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(directory), name, str(count)], env=env)
        for name in ("a", "b")
    ]
    handled: list[str] = []
    replays = [_replay(Spool(directory, 1 << 24), redis, handled, base_settings) for _ in range(2)]
    while any(w.poll() is None for w in writers):
        await asyncio.gather(*(r.replay() for r in replays))
    assert [w.returncode for w in writers] == [0, 0]
    await replays[0].replay()  # what came after the last round
    expected = {f"{name}-{n}" for name in ("a", "b") for n in range(count)}
    assert len(handled) == len(expected) and set(handled) == expected
    assert [m for m in handled if m.startswith("a")] == [f"a-{n}" for n in range(count)]  # in order
    assert await Spool(directory, 1 << 24).pending() == []
