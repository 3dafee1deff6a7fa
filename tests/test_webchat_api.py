"""The web chat's server side: the page, the widget script, the crisis lines, the live stream of
new messages (SSE) and erasure. Against the real gateway over HTTP and a real Redis, with the
dialogue engine down (none of this needs it)."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from typing import get_args

import anyio
import httpx
import pytest
import redis.asyncio as aioredis

from indgang import conversation, keys, transcript
from indgang.catalogue.models import Access
from indgang.i18n import LOCALES_DIR, catalog
from indgang.outbound import deliver_to_citizen
from indgang.settings import Settings
from webhook.citizen import TOKEN_HEADER
from webhook.routers.pages import page_texts
from webhook.templating import STATIC_DIR, TEMPLATES_DIR

pytestmark = pytest.mark.anyio

CHAT_JS = STATIC_DIR / "chat" / "chat.js"
TTL = 3600


@pytest.fixture
async def http(live_gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_gateway, timeout=30) as client:
        yield client


def _config(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="indgang-config">(.*?)</script>', html, re.S)
    assert found, "the page carries its texts and settings as JSON"
    return json.loads(found.group(1))


def _new_id() -> str:
    return f"web-{uuid.uuid4().hex}"


async def _own(redis: aioredis.Redis) -> tuple[str, dict[str, str]]:
    """A new web conversation and the header that opens it (as its first message would give)."""
    conv = _new_id()
    token = await conversation.start_web(redis, conv, TTL)
    assert token
    return conv, {TOKEN_HEADER: token}


# --- the page -------------------------------------------------------------------------------


async def test_the_page_is_danish_by_default_and_locked_to_its_own_files(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="da">' in response.text
    assert "<h1>Skriv med kommunen</h1>" in response.text
    assert 'href="tel:112"' in response.text  # the emergency number is one tap away on every page
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    config = _config(response.text)
    assert config["language"] == "da"
    assert config["chosen_language"] is None  # the bot may answer in the language the citizen writes
    assert config["texts"] == page_texts("da")
    assert config["texts"]["erase.button"] == "Afslut og slet samtalen"


async def test_the_english_switch_serves_the_page_in_english_and_the_bot_is_told(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    page = (await http.get("/", params={"lang": "en"})).text
    assert '<html lang="en">' in page
    assert "Write your message" in page
    assert 'href="?lang=da"' in page  # and back to Danish
    config = _config(page)
    assert config["chosen_language"] == "en"
    assert config["texts"]["composer.send"] == "Send"

    unknown = _config((await http.get("/", params={"lang": "fr"})).text)
    assert (unknown["language"], unknown["chosen_language"]) == ("da", None)


async def test_the_embedded_variant_has_a_close_button_and_keeps_it_when_switching_language(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    page = (await http.get("/", params={"embed": "1"})).text
    assert 'class="is-embedded"' in page
    assert 'data-action="close-embed"' in page
    assert 'href="?lang=en&amp;embed=1"' in page
    assert 'data-action="close-embed"' not in (await http.get("/")).text


async def test_every_asset_comes_from_the_gateway_itself(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    page = (await http.get("/")).text
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert not [r for r in references if r.startswith(("http:", "https:", "//"))], references
    assets = [r for r in references if r.startswith("/static/")]
    assert {a.split("?")[0] for a in assets} == {"/static/chat/chat.css", "/static/chat/chat.js"}
    for asset in assets:
        response = await http.get(asset)
        assert response.status_code == 200, asset
        kind = "text/css" if ".css" in asset else "javascript"
        assert kind in response.headers["content-type"]


async def test_the_widget_script_carries_its_texts_in_both_languages_and_is_valid_javascript(
    http: httpx.AsyncClient, redis: aioredis.Redis, tmp_path
) -> None:
    response = await http.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age" in response.headers["cache-control"]
    script = response.text
    for lang in ("da", "en"):
        assert json.dumps(page_texts(lang)["widget.open"], ensure_ascii=False) in script
    assert "{{" not in script and "{%" not in script
    target = tmp_path / "widget.js"
    target.write_text(script, encoding="utf-8")
    for path in (target, CHAT_JS):
        checked = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr


async def test_the_crisis_lines_are_served_emergency_first_with_tap_to_call_links(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    da = (await http.get("/api/v1/crisis-lines")).json()
    en = (await http.get("/api/v1/crisis-lines", params={"language": "en"})).json()
    assert da["language"] == "da" and en["language"] == "en"
    assert da["lines"][0]["emergency"] is True and da["lines"][0]["tel_uri"] == "tel:112"
    livslinien = next(line for line in da["lines"] if line["id"] == "livslinien")
    assert livslinien["number"] == "70 201 201" and livslinien["tel_uri"] == "tel:+4570201201"
    assert [line["id"] for line in da["lines"]] == [line["id"] for line in en["lines"]]
    assert da["lines"][0]["audience"] != en["lines"][0]["audience"]
    assert (await http.get("/api/v1/crisis-lines", params={"language": "fr"})).status_code == 422


# --- the translation files ------------------------------------------------------------------


def _keys(language: str) -> set[str]:
    return {k for k in catalog(language) if k.startswith("webchat.")}


async def test_danish_and_english_have_the_same_page_texts() -> None:
    assert (LOCALES_DIR / "da" / "webchat.yaml").is_file() and (LOCALES_DIR / "en" / "webchat.yaml").is_file()
    assert _keys("da") == _keys("en")
    assert [b["payload"] for b in page_texts("da")["welcome.buttons"]][-1] == "/request_human"


async def test_every_text_the_page_uses_is_in_the_translation_files() -> None:
    script = CHAT_JS.read_text(encoding="utf-8")
    template = (TEMPLATES_DIR / "chat.html").read_text(encoding="utf-8")
    used = set(re.findall(r'\bT\("([a-z_.]+)"', script)) | set(re.findall(r'texts\["([a-z_.]+)"\]', script))
    used |= set(re.findall(r"""\bt\(["']([a-z_.]+)["']""", template))
    used = {u for u in used if not u.endswith(".")}  # prefixes of keys built at run time, as below
    used |= {f"sender.{who}" for who in ("user", "bot", "staff")}  # built from the message's sender
    used |= {f"offers.access.{kind}" for kind in get_args(Access)}  # built from the offer's access
    for language in ("da", "en"):
        missing = sorted(u for u in used if f"webchat.{u}" not in catalog(language))
        assert missing == [], f"{language}: {missing}"
    assert len(used) > 30  # the scan found the texts, not nothing


# --- erasure --------------------------------------------------------------------------------


async def test_the_citizen_can_end_and_delete_the_conversation(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv = _new_id()
    sent = await http.post("/api/v1/chat", json={"conversation_id": conv, "text": "jeg har brug for hjælp"})
    assert sent.status_code == 503  # the engine is down, but the message and the reply are kept
    assert await redis.exists(keys.transcript(conv), keys.conversation(conv)) == 2
    mine = {TOKEN_HEADER: sent.json()["conversation_token"]}

    erased = await http.delete(f"/api/v1/chat/{conv}", headers=mine)
    assert erased.status_code == 200
    body = erased.json()
    assert body["conversation_id"] == conv and body["erased"] is True and body["deleted_keys"] >= 2
    assert await redis.exists(*keys.conversation_keys(conv)) == 0
    events = [json.loads(fields["event"]) for _, fields in await redis.xrange(keys.events_stream())]
    assert {"type": "conversation.erased", "conversation_id": conv} in [
        {"type": e["type"], "conversation_id": e["data"]["conversation_id"]} for e in events
    ]
    # The token went with the conversation: it opens nothing now, not even a second erasure.
    assert (await http.get(f"/api/v1/chat/{conv}/messages", headers=mine)).status_code == 403
    assert (await http.delete(f"/api/v1/chat/{conv}", headers=mine)).status_code == 403


async def test_an_sms_conversation_is_not_erased_from_the_web(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv = "sms-" + uuid.uuid4().hex
    await conversation.touch(redis, conv, "sms", "da", TTL)
    response = await http.delete(f"/api/v1/chat/{conv}")
    assert response.status_code == 422  # an SMS id is never reachable through the web API
    assert await redis.exists(keys.conversation(conv)) == 1
    assert (await http.delete("/api/v1/chat/bad id!")).status_code in (404, 422)


# --- the live stream ------------------------------------------------------------------------


async def _events(response: httpx.Response, wanted: int) -> list[dict]:
    """The first `wanted` message events of an open SSE response (id and parsed data)."""
    found: list[dict] = []
    event: dict = {}
    async for line in response.aiter_lines():
        if line.startswith("id:"):
            event["id"] = line[3:].strip()
        elif line.startswith("data:"):
            event["data"] = json.loads(line[5:].strip())
        elif line == "" and "data" in event:
            found.append(event)
            event = {}
            if len(found) == wanted:
                return found
    raise AssertionError("the stream ended early")


async def test_new_messages_stream_live_as_server_sent_events(
    http: httpx.AsyncClient, redis: aioredis.Redis, base_settings: Settings
) -> None:
    conv, mine = await _own(redis)
    first = await transcript.append(redis, conv, "user", "hej", TTL, channel="web")
    with anyio.fail_after(15):
        async with http.stream(
            "GET", f"/api/v1/chat/{conv}/events", params={"after": first.id}, headers=mine
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            # Written while the page listens: a staff note (never shown), then a staff reply.
            await transcript.append(redis, conv, "staff", "intern note", TTL, internal=True)
            reply = await deliver_to_citizen(
                redis, base_settings, conv, "Hej, jeg hedder Mette.", staff="mette"
            )
            [event] = await _events(response, 1)
    assert event["id"] == reply.id
    assert event["data"]["from"] == "staff" and event["data"]["text"] == "Hej, jeg hedder Mette."
    assert event["data"]["id"] == reply.id


async def test_a_reconnecting_page_resumes_after_its_last_event_id(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv, mine = await _own(redis)
    written = [await transcript.append(redis, conv, "bot", f"besked {n}", TTL) for n in range(3)]
    with anyio.fail_after(15):
        async with http.stream(
            "GET", f"/api/v1/chat/{conv}/events", headers={"Last-Event-ID": written[0].id, **mine}
        ) as response:
            events = await _events(response, 2)
        async with http.stream("GET", f"/api/v1/chat/{conv}/events", headers=mine) as response:
            everything = await _events(response, 3)
    assert [e["data"]["text"] for e in events] == ["besked 1", "besked 2"]
    assert [e["id"] for e in everything] == [m.id for m in written]


async def test_a_stream_with_a_bad_cursor_is_a_422(http: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    conv, mine = await _own(redis)
    response = await http.get(f"/api/v1/chat/{conv}/events", params={"after": "not-a-cursor"}, headers=mine)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_cursor"


async def test_metadata_is_small_or_refused(http: httpx.AsyncClient) -> None:
    """Metadata is never identity and never stored; a client cannot push kilobytes of it along."""
    body = {"conversation_id": _new_id(), "text": "hej", "metadata": {"note": "x" * 2000}}
    response = await http.post("/api/v1/chat", json=body)
    assert response.status_code == 422
    assert "metadata" in response.text


async def test_the_citizen_downloads_their_own_conversation_and_no_one_else_can(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv, mine = await _own(redis)
    await transcript.append(redis, conv, "user", "min søn drikker", TTL, channel="web")
    await transcript.append(
        redis, conv, "bot", "Det kan måske hjælpe:", TTL, offers=[{"title": "Gratis alkoholbehandling"}]
    )
    await transcript.append(redis, conv, "staff", "intern note om familien", TTL, internal=True)
    copy = await http.get(f"/api/v1/chat/{conv}/export", headers=mine)
    assert copy.status_code == 200 and copy.headers["content-type"].startswith("text/plain")
    assert "attachment" in copy.headers["content-disposition"]
    assert "Dig: min søn drikker" in copy.text and "Gratis alkoholbehandling" in copy.text
    assert "intern note" not in copy.text  # staff notes are not part of what the citizen was told
    # the attack: another's copy, with no token, a wrong one, or one's own token on another id
    _, theirs = await _own(redis)
    for headers in ({}, {TOKEN_HEADER: "guess"}, theirs):
        assert (await http.get(f"/api/v1/chat/{conv}/export", headers=headers)).status_code == 403
