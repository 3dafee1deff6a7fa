"""The staff console in headless Chromium against the real stack (Rasa, actions, gateway, Redis):
a staff member logs in, sees a citizen's request for a person appear live, takes it over and
answers; the answer arrives live in the citizen's web chat; the conversation is handed back and
the bot answers the citizen's next message again. Two-step verification is enrolled from the QR
page and asked for at the next login. The console's pages pass axe-core."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page, expect
from test_browser_chat import BOT_WAIT_MS, axe_violations, browser, open_chat  # noqa: F401 (fixture)

from indgang.devstack import Stack
from indgang.i18n import t
from indgang.records import db as records
from indgang.redis_store import connect
from indgang.staff.accounts import Role, add_account

pytestmark = pytest.mark.anyio

PASSWORD = "staff-kodeord-123"


async def staff_login(chromium: Browser, stack: Stack, name: str) -> Page:
    redis, db = connect(stack.settings), records.connect(stack.settings)
    try:
        await add_account(db, redis, name, PASSWORD, Role.ADMIN, display_name=name.capitalize(), replace=True)
    finally:
        await redis.aclose()
        await db.aclose()
    # bypass_csp: axe-core is injected as a script; the console itself runs only its own file.
    context = await chromium.new_context(viewport={"width": 1100, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{stack.gateway_url}/staff")
    await expect(page).to_have_url(re.compile(r"/staff/login$"))
    assert await axe_violations(page) == []
    await page.get_by_label("Brugernavn").fill(name)
    await page.get_by_label("Adgangskode").fill(PASSWORD)
    await page.get_by_role("button", name="Log ind").click()
    await expect(page).to_have_url(re.compile(r"/staff$"))
    return page


async def test_staff_take_over_answer_live_and_hand_back(browser: Browser, stack: Stack) -> None:  # noqa: F811
    staff = await staff_login(browser, stack, f"mette{uuid.uuid4().hex[:4]}")
    waiting = staff.locator("#inbox section").first
    chat = await open_chat(browser, f"{stack.gateway_url}/")

    # The citizen asks the real bot for a person; the inbox shows it without a reload.
    request = "må jeg tale med en medarbejder om min søn"
    await chat.say(request)
    await expect(chat.messages("bot").last).to_contain_text(
        t("bot.handoff.requested", "da"), timeout=BOT_WAIT_MS
    )
    entry = waiting.get_by_role("link", name=re.compile("min søn"))
    await expect(entry).to_be_visible(timeout=20_000)
    assert await axe_violations(staff) == []

    await entry.click()
    await expect(staff.locator("#transcript")).to_contain_text(request)
    await staff.get_by_role("button", name="Tag over").click()
    reply_box = staff.get_by_label("Svar til borgeren")
    await expect(reply_box).to_be_visible()
    assert await axe_violations(staff) == []

    # A canned reply fills the box; the staff member edits it and sends.
    await staff.locator("[data-canned]").nth(1).click()
    await expect(reply_box).to_have_value(re.compile("fortælle lidt mere"))
    await reply_box.fill("Hej, jeg hedder Mette. Hvor gammel er din søn?")
    await staff.get_by_role("button", name="Send").click()
    await expect(chat.messages("staff")).to_contain_text("Hvor gammel er din søn?")

    # The citizen's answer reaches the open conversation page live, not the bot.
    await chat.say("han er 16 <b>og</b> går ikke i skole")
    await expect(staff.locator("#transcript li").last).to_contain_text("han er 16 <b>og</b> går ikke i skole")
    bot_replies = await chat.messages("bot").count()

    await staff.get_by_role("button", name="Giv tilbage til assistenten").click()
    await expect(staff).to_have_url(re.compile(r"/staff$"))
    await expect(chat.messages("bot").last).to_contain_text(t("staff.released", "da"))

    # Rasa's tracker has the staff turn, so the bot knows what was said.
    conversation_id = await chat.conversation_id()
    async with httpx.AsyncClient() as http:
        tracker = (
            await http.get(
                f"{stack.settings.rasa_url}/conversations/{conversation_id}/tracker",
                params={"token": stack.settings.rasa_auth_token},
            )
        ).json()
    staff_turns = [
        e for e in tracker["events"] if e["event"] == "bot" and "Hvor gammel" in (e.get("text") or "")
    ]
    assert staff_turns and staff_turns[0]["metadata"]["staff"].startswith("Mette")

    await chat.say("hej")
    await expect(chat.messages("bot")).to_have_count(bot_replies + 2, timeout=BOT_WAIT_MS)
    await expect(chat.messages("bot").last).to_contain_text(t("bot.greet.text", "da")[:20])
    assert chat.errors == []


async def test_two_step_verification_is_enrolled_by_qr_page_and_asked_for_at_login(
    browser: Browser,  # noqa: F811
    stack: Stack,
) -> None:
    name = f"jonas{uuid.uuid4().hex[:4]}"
    staff = await staff_login(browser, stack, name)
    await staff.get_by_role("link", name=t("staff.console.account", "da")).click()
    assert await axe_violations(staff) == []
    await staff.get_by_role("link", name=t("staff.console.totp_enable", "da")).click()
    await expect(staff.locator("figure.qr svg")).to_be_visible()
    assert await axe_violations(staff) == []
    secret = (await staff.locator("#totp-secret").inner_text()).replace(" ", "")
    await staff.get_by_label(t("staff.console.totp_code", "da")).fill(pyotp.TOTP(secret).now())
    await staff.get_by_role("button", name=t("staff.console.totp_enable", "da")).click()
    await expect(staff.get_by_text(t("staff.console.totp_on", "da"))).to_be_visible()

    await staff.get_by_role("button", name="Log ud").click()
    await staff.get_by_label("Brugernavn").fill(name)
    await staff.get_by_label("Adgangskode").fill(PASSWORD)
    await staff.get_by_role("button", name="Log ind").click()
    await expect(staff).to_have_url(re.compile(r"/staff/login/totp$"))
    assert await axe_violations(staff) == []
    # the enrolment spent this time step's code; the next one is accepted too (clock drift)
    await staff.get_by_label(t("staff.console.totp_code", "da")).fill(pyotp.TOTP(secret).at(time.time() + 30))
    await staff.get_by_role("button", name="Log ind").click()
    await expect(staff).to_have_url(re.compile(r"/staff$"))
