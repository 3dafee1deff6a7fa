"""The citizen web chat in a real browser (Playwright with Debian's Chromium).

Most tests run against the real gateway with the dialogue engine down (`live_gateway`): the
safety check, handoff, staff replies, erasure and every error path live in the gateway. The
guidance conversation needs the trained model and runs against the whole stack (`stack`).
Accessibility is checked with axe-core (node_modules, from package.json) and by keyboard alone;
screenshots for a human eye go to .run/screenshots/.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, Request, async_playwright, expect

from indgang import keys, transcript
from indgang.devstack import Stack
from indgang.erasure import erase_conversation
from indgang.outbound import deliver_to_citizen
from indgang.records.db import Database
from indgang.redis_store import connect
from indgang.settings import PROJECT_DIR, Settings
from webhook.citizen import TOKEN_HEADER

pytestmark = pytest.mark.anyio

CHROMIUM = {
    "executable_path": "/usr/bin/chromium",
    "args": [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ],
}
AXE = PROJECT_DIR / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = PROJECT_DIR / ".run" / "screenshots"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
WAIT_MS = 15_000
BOT_WAIT_MS = 60_000  # the real bot on a 2-core machine
STICKY_MIN_HEIGHT = 512  # chat.css keeps the message box in view from this viewport height (32em)

CRISIS_TEXT = "jeg vil ikke leve mere, jeg tænker på at tage mit eget liv"
CHILD_CONCERN_TEXT = "jeg er bekymret for et barn i min opgang"
ENGINE_DOWN_TEXT = "jeg har brug for hjælp til min økonomi"

expect.set_options(timeout=WAIT_MS)


@dataclass
class Chat:
    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    @property
    def input(self):
        return self.page.get_by_label(re.compile("^(Skriv din besked|Write your message)$"))

    async def say(self, text: str) -> None:
        await self.input.fill(text)
        await self.input.press("Enter")

    async def conversation_id(self) -> str | None:
        return await self.page.evaluate("sessionStorage.getItem('indgang.conversation')")

    async def token(self) -> str | None:
        """The conversation's token: kept only in the tab, never in localStorage."""
        return await self.page.evaluate("sessionStorage.getItem('indgang.token')")

    def messages(self, sender: str = ""):
        return self.page.locator(f"#messages li.msg{'.msg-' + sender if sender else ''}[data-id]")

    def chat_posts(self) -> list[dict]:
        return [
            r.post_data_json for r in self.requests if r.method == "POST" and r.url.endswith("/api/v1/chat")
        ]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(**CHROMIUM)
        yield launched
        await launched.close()


async def open_chat(
    browser: Browser, url: str, width: int = 390, height: int = 800, bypass_csp: bool = False
) -> Chat:
    # Reduced motion: no smooth scrolling, so screenshots and positions are final when taken.
    context = await browser.new_context(
        viewport={"width": width, "height": height}, bypass_csp=bypass_csp, reduced_motion="reduce"
    )
    page = await context.new_page()
    chat = Chat(page)
    page.on("pageerror", lambda error: chat.errors.append(str(error)))
    # A refused status is logged by Chrome as "Failed to load resource"; anything else is a fault.
    page.on(
        "console",
        lambda m: (
            chat.errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    page.on("request", lambda request: chat.requests.append(request))
    await page.goto(url)
    return chat


async def axe_violations(page: Page) -> list[dict]:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA)
    assert len(result["passes"]) > 10  # axe ran its rules over the page, not over nothing
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


async def no_sideways_scroll(page: Page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# --- with the dialogue engine down: everything the gateway does by itself --------------------


async def test_a_crisis_message_gets_a_banner_with_tap_to_call_links(
    browser: Browser, live_gateway: str
) -> None:
    chat = await open_chat(browser, live_gateway)
    await chat.say(CRISIS_TEXT)
    banner = chat.page.locator("#messages .crisis")
    await expect(banner).to_be_visible()
    await expect(banner.get_by_role("heading", name="Få hjælp nu")).to_be_visible()
    await expect(banner.locator('a[href="tel:112"]')).to_contain_text("Ring 112")
    await expect(banner.locator('a[href="tel:+4570201201"]')).to_contain_text("Livslinien")
    # Only the lines the reply names: the children's line is not in a reply about suicide.
    await expect(banner.locator('a[href="tel:116111"]')).to_have_count(0)
    await expect(chat.page.locator("#announce-crisis")).to_contain_text("112")
    assert await chat.page.locator("#announce-crisis").get_attribute("aria-live") == "assertive"
    await expect(chat.messages("user")).to_have_text([re.compile("ikke leve mere")])
    assert chat.errors == []


async def test_with_the_engine_down_the_danish_reply_shows_and_its_button_sends_the_payload(
    browser: Browser, live_gateway: str
) -> None:
    chat = await open_chat(browser, live_gateway)
    welcome_choices = chat.page.locator(".msg-welcome .choice")
    await expect(welcome_choices).to_have_count(3)
    await chat.say(ENGINE_DOWN_TEXT)
    reply = chat.messages("bot").last
    await expect(reply).to_contain_text("tekniske problemer")
    await expect(chat.input).to_have_value("")
    for index in range(3):  # answered: the first choices are history now
        await expect(welcome_choices.nth(index)).to_be_disabled()

    await reply.get_by_role("button", name="Tal med en medarbejder").click()
    await expect(chat.messages("user").last).to_have_text(re.compile("Tal med en medarbejder"))
    await expect(chat.messages("bot").last).to_contain_text("køen")
    assert chat.chat_posts()[-1]["text"] == "/request_human"
    assert "language" not in chat.chat_posts()[-1]  # no language chosen: the bot may follow the writer
    await expect(chat.page.locator("#announce-polite")).to_contain_text("køen")
    assert chat.errors == []


async def test_the_citizen_can_write_on_while_a_reply_is_coming(
    browser: Browser, live_gateway: str, redis: aioredis.Redis
) -> None:
    chat = await open_chat(browser, live_gateway)
    await chat.say("hej")
    await chat.say("er der nogen?")  # at once, without waiting for the first answer
    await expect(chat.messages("user")).to_have_text([re.compile("^Dig.*hej$"), re.compile("er der nogen")])
    await expect(chat.messages("bot")).to_have_count(2)
    await expect(chat.page.locator("li.is-pending")).to_have_count(0)
    await expect(chat.page.locator("#typing")).to_be_hidden()
    ids = await chat.messages().evaluate_all("items => items.map(li => li.dataset.id)")
    assert len(ids) == len(set(ids)) == 4  # each once, though they came by the reply and the stream
    assert chat.errors == []


async def test_offers_appear_as_cards_that_are_easy_to_scan(browser: Browser, live_gateway: str) -> None:
    chat = await open_chat(browser, live_gateway)
    await chat.say(CHILD_CONCERN_TEXT)
    cards = chat.page.locator("#messages .offer")
    await expect(cards.first).to_be_visible()
    count = await cards.count()
    assert count >= 1
    for index in range(count):
        card = cards.nth(index)
        await expect(card.get_by_role("heading", level=3)).to_have_count(1)
        await expect(card.locator(".badge[class*='access-']")).to_have_count(1)
        await expect(card.locator(".offer-next")).to_contain_text("Sådan kommer du i gang:")
    await expect(chat.page.locator("#messages .offers")).to_have_attribute(
        "aria-label", "Tilbud, der kan passe"
    )
    await expect(chat.page.locator("#announce-polite")).to_contain_text("tilbud vises under beskeden")
    assert chat.errors == []


async def test_a_staff_reply_arrives_live_and_the_conversation_survives_a_reload(
    browser: Browser, live_gateway: str, redis: aioredis.Redis, base_settings: Settings
) -> None:
    chat = await open_chat(browser, live_gateway)
    async with chat.page.expect_request(lambda r: "/events" in r.url):  # the page starts listening
        await chat.page.locator(".msg-welcome").get_by_role("button", name="Tal med en medarbejder").click()
    await expect(chat.messages("bot").last).to_contain_text("køen")
    conv = await chat.conversation_id()
    assert conv and conv.startswith("web-") and len(conv) == 36
    # The token travels in a header only (the stream too, read with fetch): never in a URL, so
    # it is in no access log; and it is kept for this tab alone.
    token = await chat.token()
    assert token and len(token) >= 22
    assert not [r.url for r in chat.requests if token in r.url]
    streams = [r for r in chat.requests if r.url.split("?")[0].endswith(f"/{conv}/events")]
    assert streams
    assert {(await r.all_headers()).get(TOKEN_HEADER.lower()) for r in streams} == {token}
    assert await chat.page.evaluate("Object.keys(localStorage)") == []

    before = len(chat.requests)
    await deliver_to_citizen(redis, base_settings, conv, "Hej, jeg hedder Mette. Hvad kan jeg hjælpe med?")
    staff = chat.messages("staff")
    await expect(staff).to_have_count(1)
    await expect(staff).to_contain_text("jeg hedder Mette")
    await expect(staff.locator(".msg-sender")).to_contain_text("Medarbejder fra kommunen")
    assert not [r.url for r in chat.requests[before:] if "/messages" in r.url]  # it came by the stream
    await expect(chat.page.locator("#announce-polite")).to_contain_text("jeg hedder Mette")

    shown = await chat.messages().all_inner_texts()
    await chat.page.reload()
    await expect(chat.messages()).to_have_count(len(shown))
    assert await chat.messages().all_inner_texts() == shown
    assert await chat.conversation_id() == conv
    await expect(chat.messages("user").first).to_contain_text("Tal med en medarbejder")  # not the payload
    await expect(chat.page.get_by_role("button", name="Afslut og slet samtalen")).to_be_visible()

    # still live after the reload
    await deliver_to_citizen(redis, base_settings, conv, "Er du der stadig?")
    await expect(chat.messages("staff")).to_have_count(2)
    assert chat.errors == []


async def test_the_citizen_ends_and_deletes_the_conversation(
    browser: Browser, live_gateway: str, redis: aioredis.Redis
) -> None:
    chat = await open_chat(browser, live_gateway)
    erase = chat.page.get_by_role("button", name="Afslut og slet samtalen")
    await expect(erase).to_be_hidden()  # nothing to delete yet
    await chat.say(ENGINE_DOWN_TEXT)
    await expect(chat.messages("bot")).to_have_count(1)
    conv = await chat.conversation_id()
    assert await redis.exists(keys.transcript(conv)) == 1

    await erase.click()
    dialog = chat.page.get_by_role("dialog", name="Vil du afslutte og slette samtalen?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Nej, fortsæt samtalen").click()
    await expect(dialog).to_be_hidden()
    await expect(erase).to_be_focused()
    assert await redis.exists(keys.transcript(conv)) == 1

    await erase.click()
    await dialog.get_by_role("button", name="Ja, slet samtalen").click()
    await expect(chat.page.locator("#composer-status")).to_contain_text("Samtalen er slettet")
    await expect(chat.messages()).to_have_count(0)
    await expect(chat.page.locator(".msg-welcome .choice").first).to_be_enabled()
    await expect(chat.input).to_be_focused()
    await expect(erase).to_be_hidden()
    assert await chat.conversation_id() is None and await chat.token() is None
    assert await redis.exists(*keys.conversation_keys(conv)) == 0

    await chat.say("hej igen")
    await expect(chat.messages("user")).to_have_count(1)
    fresh = await chat.conversation_id()
    assert fresh and fresh != conv
    assert chat.errors == []


async def test_the_citizen_downloads_a_copy_of_the_conversation(browser: Browser, live_gateway: str) -> None:
    chat = await open_chat(browser, live_gateway)
    download_button = chat.page.get_by_role("button", name="Hent en kopi af samtalen")
    await expect(download_button).to_be_hidden()  # nothing to copy yet
    await chat.say(ENGINE_DOWN_TEXT)
    await expect(chat.messages("bot")).to_have_count(1)
    async with chat.page.expect_download() as info:
        await download_button.click()
    download = await info.value
    copy = Path(await download.path()).read_text(encoding="utf-8")
    assert download.suggested_filename == "samtale.txt"
    assert f"Dig: {ENGINE_DOWN_TEXT}" in copy and "Assistenten:" in copy
    await expect(chat.page.locator("#composer-status")).to_contain_text("Kopien af samtalen er hentet")
    token = await chat.token()
    assert token and all(token not in r.url for r in chat.requests)  # in a header, never a URL
    assert chat.errors == []


async def test_a_conversation_erased_elsewhere_gives_way_to_a_new_one(
    records: Database, browser: Browser, live_gateway: str, redis: aioredis.Redis, base_settings: Settings
) -> None:
    """Staff erase it on the citizen's request (or its retention time ends): the tab's token
    opens nothing any more (403), so the next message starts a new conversation, not an error."""
    chat = await open_chat(browser, live_gateway)
    await chat.say("hej")
    await expect(chat.messages("bot")).to_have_count(1)
    old = await chat.conversation_id()
    await erase_conversation(records, redis, base_settings, old, requested_by="staff")

    await chat.say("er I der stadig?")
    await expect(chat.page.locator("li.is-pending")).to_have_count(0)
    await expect(chat.messages("user").last).to_contain_text("er I der stadig?")
    await expect(chat.page.locator("#composer-status")).to_have_text("")
    fresh = await chat.conversation_id()
    assert fresh and fresh != old and await chat.token()
    found, _ = await transcript.read(redis, fresh)
    assert [m.text for m in found if m.sender == "user"] == ["er I der stadig?"]
    assert await redis.exists(*keys.conversation_keys(old)) == 0
    assert chat.errors == []


async def test_writing_too_fast_shows_a_polite_wait_and_keeps_the_text(
    browser: Browser, live_gateway: str, base_settings: Settings, redis: aioredis.Redis
) -> None:
    chat = await open_chat(browser, live_gateway)
    await chat.say("hej")
    await expect(chat.messages("bot")).to_have_count(1)
    conv, mine = await chat.conversation_id(), {TOKEN_HEADER: await chat.token()}
    async with httpx.AsyncClient(base_url=live_gateway, timeout=30) as http:
        for _ in range(base_settings.chat_rate_limit):
            await http.post("/api/v1/chat", json={"conversation_id": conv, "text": "igen"}, headers=mine)
    await chat.say("en besked mere")
    await expect(chat.page.locator("#composer-status")).to_contain_text(re.compile(r"Vent \d+ sekunder"))
    await expect(chat.input).to_have_value("en besked mere")
    await expect(chat.page.locator("li.is-pending")).to_have_count(0)
    assert chat.errors == []


async def test_a_network_failure_shows_a_retry_hint_and_keeps_the_text(
    browser: Browser, live_gateway: str, redis: aioredis.Redis
) -> None:
    chat = await open_chat(browser, live_gateway)
    await chat.page.route("**/api/v1/chat", lambda route: route.abort("internetdisconnected"))
    await chat.say("kan I hjælpe mig")
    status = chat.page.locator("#composer-status")
    await expect(status).to_contain_text("tryk Send for at prøve igen")
    await expect(chat.input).to_have_value("kan I hjælpe mig")
    await expect(chat.page.locator("#messages li.msg-user")).to_have_count(0)

    await chat.page.unroute("**/api/v1/chat")
    await chat.page.get_by_role("button", name="Send", exact=True).click()
    await expect(chat.messages("user")).to_have_text([re.compile("kan I hjælpe mig")])
    await expect(status).to_have_text("")
    assert [e for e in chat.errors if "ERR_INTERNET_DISCONNECTED" not in e] == []


async def test_the_english_switch_changes_the_page_and_the_bots_language(
    browser: Browser, live_gateway: str, redis: aioredis.Redis
) -> None:
    chat = await open_chat(browser, live_gateway)
    await chat.page.get_by_role("link", name="English").click()
    await expect(chat.page.locator("html")).to_have_attribute("lang", "en")
    await expect(chat.page.get_by_role("heading", level=1)).to_have_text("Write to the municipality")
    await chat.say(ENGINE_DOWN_TEXT)  # Danish words, but the citizen chose English
    await expect(chat.messages("bot").last).to_contain_text("technical problems")
    assert chat.chat_posts()[-1]["language"] == "en"

    await chat.page.goto(live_gateway)  # the choice is remembered
    await expect(chat.page.locator("html")).to_have_attribute("lang", "en")
    await chat.page.get_by_role("link", name="Dansk").click()
    await expect(chat.page.locator("html")).to_have_attribute("lang", "da")
    assert chat.errors == []


async def test_the_chat_works_by_keyboard_alone(
    browser: Browser, live_gateway: str, redis: aioredis.Redis
) -> None:
    chat = await open_chat(browser, live_gateway)
    page = chat.page
    order = []
    for _ in range(8):
        await page.keyboard.press("Tab")
        order.append(
            await page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        )
    assert order == [
        "Gå til beskedfeltet",
        "English",
        "Akut fare? Ring 112",
        "Jeg har brug for hjælp",
        "Jeg er bekymret for en anden",
        "Tal med en medarbejder",
        "message",
        "Send",
    ]
    # A choice pressed with the keyboard leaves the focus in the message box, ready to write.
    await page.locator(".msg-welcome .choice").last.focus()
    await page.keyboard.press("Enter")
    await expect(chat.input).to_be_focused()
    await expect(chat.messages("bot").last).to_contain_text("køen")
    await page.keyboard.type("Hvornår svarer I?")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("Tak.")
    await page.keyboard.press("Enter")
    await expect(chat.messages("user").last).to_contain_text("Hvornår svarer I?\nTak.")
    assert chat.chat_posts()[-1]["text"] == "Hvornår svarer I?\nTak."
    # The skip link goes straight to the message box.
    await page.reload()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(chat.input).to_be_focused()
    assert chat.errors == []


async def test_axe_core_finds_no_wcag_violations(
    browser: Browser, live_gateway: str, redis: aioredis.Redis
) -> None:
    for language, width in (("da", 390), ("en", 320)):
        chat = await open_chat(browser, f"{live_gateway}/?lang={language}", width=width, bypass_csp=True)
        assert await axe_violations(chat.page) == []  # the empty page
        await chat.say(CHILD_CONCERN_TEXT)  # offer cards
        await expect(chat.page.locator(".offer").first).to_be_visible()
        await chat.say(ENGINE_DOWN_TEXT)  # a reply with a button; answered choices disabled
        await expect(chat.messages("bot")).to_have_count(2)
        await chat.say(CRISIS_TEXT)  # the crisis banner
        await expect(chat.page.locator(".crisis .call").first).to_be_visible()
        assert await axe_violations(chat.page) == [], language
        await chat.page.locator("#erase").click()
        await expect(chat.page.locator("#erase-dialog")).to_be_visible()
        assert await axe_violations(chat.page) == [], f"{language}, the erase dialog"
        await chat.page.context.close()


async def test_a_notice_after_the_emergency_reply_leaves_the_call_to_112_in_sight(
    browser: Browser, live_gateway: str, redis: aioredis.Redis, base_settings: Settings
) -> None:
    """A notice that comes on its own after the emergency reply (the queue watch telling the
    place in the queue) used to scroll to itself and take 112 out of sight on a small phone."""
    chat = await open_chat(browser, live_gateway, width=320, height=640)
    await chat.say(CRISIS_TEXT)
    call = chat.page.locator(".crisis .call").first
    await expect(call).to_be_in_viewport()
    conv = await chat.conversation_id()
    assert conv
    notice = "\n".join(["Du er stadig i køen, og en medarbejder svarer dig, så snart det er muligt."] * 6)
    await deliver_to_citizen(redis, base_settings, conv, notice, sender="bot")
    await expect(chat.messages("bot").last).to_contain_text("Du er stadig i køen")
    await expect(chat.page.locator("#announce-polite")).to_contain_text("Du er stadig i køen")
    await expect(call).to_be_in_viewport()
    await chat.say("tak, jeg har ringet")  # once they write again, the conversation follows them
    await expect(chat.messages("user").last).to_be_in_viewport()
    assert chat.errors == []
    await chat.page.context.close()


async def test_the_page_reflows_at_320_px_and_200_percent_zoom(
    browser: Browser, live_gateway: str, redis: aioredis.Redis
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # 320 CSS px is a small phone; 640 x 400 is a 1280 x 800 laptop screen at 200 % zoom.
    for name, width, height in (("320", 320, 640), ("zoom200", 640, 400), ("desktop", 1280, 900)):
        chat = await open_chat(browser, live_gateway, width=width, height=height)
        await chat.say(CHILD_CONCERN_TEXT)
        await expect(chat.page.locator(".offer").first).to_be_visible()
        await chat.say(CRISIS_TEXT)
        await expect(chat.page.locator(".crisis .call").first).to_be_visible()
        assert await no_sideways_scroll(chat.page), name
        send = chat.page.get_by_role("button", name="Send", exact=True)
        if height >= STICKY_MIN_HEIGHT:
            await expect(send).to_be_in_viewport()  # the message box stays in view while reading
            await expect(chat.page.locator(".crisis .call").first).to_be_in_viewport()  # 112 in sight
        else:
            await send.scroll_into_view_if_needed()  # too short to keep it: it follows the conversation
        await expect(send).to_be_in_viewport()
        box = await send.bounding_box()
        assert box and box["width"] >= 44 and box["height"] >= 44, name  # a target a thumb can hit
        await chat.page.screenshot(path=SCREENSHOTS / f"webchat-{name}-viewport.png")
        await chat.page.screenshot(path=SCREENSHOTS / f"webchat-{name}.png", full_page=True)
        assert chat.errors == []
        await chat.page.context.close()


@contextmanager
def municipality_site(html: str) -> Iterator[str]:
    """A municipality's own page, served from another origin (another port) on this machine."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


async def test_the_widget_embeds_the_chat_on_a_municipality_site(
    browser: Browser, live_gateway: str, redis: aioredis.Redis
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    html = (
        '<!doctype html><html lang="da"><head><meta charset="utf-8"><title>Kommune</title></head>'
        "<body><main><h1>Socialområdet</h1><p>Velkommen.</p></main>"
        f'<script src="{live_gateway}/widget.js" data-language="en" data-position="left"'
        ' data-title="Chat with us" async></script></body></html>'
    )
    with municipality_site(html) as site:
        await page.goto(site)
        await use_the_widget(page, errors)
    await context.close()


async def use_the_widget(page: Page, errors: list[str]) -> None:
    launcher = page.get_by_role("button", name="Chat with us")
    await expect(launcher).to_be_visible()
    box = await launcher.bounding_box()
    assert box and box["x"] < 100  # data-position="left"
    await expect(launcher).to_have_attribute("aria-expanded", "false")

    await launcher.click()
    frame_element = page.locator("iframe[title='Chat with us']")
    await expect(frame_element).to_be_visible()
    src = await frame_element.get_attribute("src") or ""
    assert "embed=1&lang=en" in src
    assert "token" not in src and "conversation" not in src  # they stay inside the frame
    frame = page.frame_locator("iframe[title='Chat with us']")
    await expect(frame.get_by_label("Write your message")).to_be_focused()
    await frame.get_by_label("Write your message").fill("hello, I need help with my debt")
    await frame.get_by_label("Write your message").press("Enter")
    await expect(frame.locator("#messages li.msg-bot[data-id]")).to_have_count(1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "webchat-widget-open.png")

    await frame.get_by_label("Write your message").press("Escape")  # closes, focus back on the launcher
    await expect(frame_element).to_be_hidden()
    await expect(page.get_by_role("button", name="Chat with us")).to_be_focused()
    await page.get_by_role("button", name="Chat with us").click()
    await frame.get_by_role("button", name="Close the chat").click()
    await expect(frame_element).to_be_hidden()
    assert errors == []


# --- the whole stack: the real bot -----------------------------------------------------------


async def test_a_guidance_conversation_in_the_browser_with_the_real_bot(
    browser: Browser, stack: Stack
) -> None:
    chat = await open_chat(browser, stack.gateway_url)
    await chat.say("hej")
    greeting = chat.messages("bot").last
    await expect(greeting).to_be_visible(timeout=BOT_WAIT_MS)
    await expect(greeting.locator(".choice").first).to_be_visible()

    await greeting.get_by_role("button", name="Jeg er pårørende").click()
    await expect(chat.messages("user").last).to_have_text(re.compile("Jeg er pårørende"))
    # the relatives' offers, then once in the conversation: may we ask in a week whether help came?
    await expect(chat.messages("bot")).to_have_count(3, timeout=BOT_WAIT_MS)
    consent = chat.messages("bot").last
    await expect(consent).to_contain_text("Må vi skrive til dig")
    await expect(consent.get_by_role("button", name="Ja")).to_be_visible()

    await chat.say("min søn på 15 har autisme og vi har brug for aflastning")
    await expect(chat.messages("bot")).to_have_count(4, timeout=BOT_WAIT_MS)
    cards = chat.messages("bot").last.locator(".offer")
    await expect(cards.first).to_be_visible()
    await expect(cards.get_by_role("heading", name="Aflastning")).to_have_count(1)
    await expect(cards.first.locator(".badge[class*='access-']")).to_have_count(1)
    await expect(cards.first.locator(".offer-next")).to_be_visible()

    await chat.say(CRISIS_TEXT)
    await expect(chat.page.locator(".crisis a[href='tel:112']")).to_be_visible(timeout=BOT_WAIT_MS)

    conv = await chat.conversation_id()
    store = connect(stack.settings)
    try:
        await deliver_to_citizen(
            store, stack.settings, conv, "Hej, det er Mette fra kommunen. Jeg er her nu."
        )
        await expect(chat.messages("staff")).to_contain_text("Mette fra kommunen")

        shown = await chat.messages().all_inner_texts()
        await chat.page.reload()
        await expect(chat.messages()).to_have_count(len(shown))

        await chat.page.get_by_role("button", name="Afslut og slet samtalen").click()
        await chat.page.get_by_role("button", name="Ja, slet samtalen").click()
        await expect(chat.messages()).to_have_count(0)
        assert await store.exists(keys.transcript(conv)) == 0
    finally:
        await store.aclose()
    assert chat.errors == []
