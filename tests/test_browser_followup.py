"""The web follow-up in the real page (Chromium) against the real gateway with the engine down:
the page keeps the key the consent's answer carried, and on a later visit (a new tab) continues
in the conversation the gateway asks the question in. The gateway's own timing is tested with
an injected clock in test_followup.py; here the follow-up is made due in Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from insight_helpers import wait_counted
from playwright.async_api import Browser, expect
from test_browser_chat import browser, open_chat  # noqa: F401  (the fixture)

from indgang import followup, keys
from indgang.i18n import t
from indgang.insight import Metric
from indgang.settings import Settings

pytestmark = pytest.mark.anyio


async def test_the_page_keeps_the_followup_key_and_asks_on_the_next_visit(
    browser: Browser,  # noqa: F811
    live_gateway: str,
    redis: aioredis.Redis,
    base_settings: Settings,
) -> None:
    chat = await open_chat(browser, live_gateway)
    await chat.say("Hej")
    await expect(chat.messages("bot").first).to_be_visible()
    conv = await chat.conversation_id()
    assert conv
    assert await followup.ask_consent(redis, base_settings, conv, "web", "da", ["krisecenter"])
    await chat.say("Ja")
    await expect(chat.messages("bot").last).to_contain_text("Tak. Vi spørger")
    key = await chat.page.evaluate("localStorage.getItem('indgang.followup')")
    assert key and key != await chat.token()
    followup_id = await redis.get(keys.followup_of(conv))
    await redis.hset(keys.followup(followup_id), "due", "0")  # a week has gone by

    later = await chat.page.context.new_page()  # a new tab: the old conversation's token is not there
    await later.goto(live_gateway)
    question = later.locator("#messages li.msg.msg-bot[data-id]").last
    await expect(question).to_contain_text(t("followup.question", "da"))
    assert await later.evaluate("localStorage.getItem('indgang.followup')") is None
    await question.get_by_role("button", name="Nej").click()
    offer = later.locator("#messages li.msg.msg-bot[data-id]").last
    await expect(offer).to_contain_text(t("followup.answer_not", "da"))
    await expect(offer.get_by_role("button", name="Book en samtale")).to_be_enabled()
    await expect(offer.get_by_role("button", name="Tal med en medarbejder")).to_be_enabled()
    assert chat.errors == []
    outcomes = await wait_counted(base_settings.database_url, Metric.FOLLOWUP, "krisecenter:no")
    assert outcomes["krisecenter:no"] >= 1
