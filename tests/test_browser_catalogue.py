"""Editing the offer catalogue in headless Chromium against the gateway (no Rasa needed): an
editor logs in to the catalogue, makes a mistake and gets the form back filled with the problem
named, saves, marks the offer as checked and undoes it, and finds it in the list; a citizen's
offer cards in the web chat say whether the information was checked. Every page passes axe-core."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Locator, Page, expect
from test_browser_chat import CRISIS_TEXT, axe_violations, browser, open_chat  # noqa: F401 (fixture)

from indgang.catalogue import load_catalogue, store
from indgang.i18n import t
from indgang.records.db import Database
from indgang.settings import PACKAGE_DIR
from indgang.staff.accounts import Role, add_account

pytestmark = pytest.mark.anyio
PASSWORD = "redaktoer-kodeord-1"


def tx(key: str) -> str:
    return t(f"staff.console.catalogue.{key}", "da")


def field(page: Page, name: str) -> Locator:
    """A form field by its accessible name (its label without the required mark)."""
    role = {"type": "combobox", "access": "combobox", "source_year": "spinbutton"}.get(name, "textbox")
    return page.get_by_role(role, name=tx(f"field.{name}"), exact=True)


@pytest.fixture
async def catalogue(records: Database) -> AsyncIterator[Database]:
    yield records
    await store.run(records, store.clear)
    await store.run(records, store.seed, load_catalogue(PACKAGE_DIR / "catalogue" / "data").offers)


async def test_an_editor_keeps_an_offer_current_in_the_browser(
    browser: Browser,  # noqa: F811
    live_gateway: str,
    catalogue: Database,
    redis: aioredis.Redis,
) -> None:
    await add_account(catalogue, redis, "ella", PASSWORD, Role.EDITOR, display_name="Ella", replace=True)
    context = await browser.new_context(viewport={"width": 1100, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    await page.goto(f"{live_gateway}/staff/login")
    await page.get_by_label("Brugernavn").fill("ella")
    await page.get_by_label("Adgangskode").fill(PASSWORD)
    await page.get_by_role("button", name="Log ind").click()
    await expect(page).to_have_url(re.compile(r"/staff/catalogue$"))  # an editor's start page
    await expect(page.get_by_role("link", name=t("staff.console.inbox", "da"))).to_have_count(0)
    assert await axe_violations(page) == []

    await page.get_by_role("link", name=tx("new")).click()
    await field(page, "id").fill("test-kaffestuen")
    await field(page, "type").select_option("vaerested")
    await field(page, "title_da").fill("Kaffestuen Zebra")
    for name, text in (
        ("summary_da", "Et sted at drikke kaffe."),
        ("summary_en", "A place to have coffee."),
        ("next_step_da", "Kom forbi."),
        ("next_step_en", "Drop in."),
        ("source_document", "Vejle Kommune"),
        ("source_year", "2026"),
    ):
        await field(page, name).fill(text)
    await field(page, "municipality").fill("Vejle")
    await field(page, "access").select_option("open")
    await page.get_by_label(tx("audience.adult"), exact=True).check()
    await page.get_by_role("button", name=tx("save")).click()  # the English name is missing

    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text(tx("field.title_en"))
    await expect(alert).to_contain_text(tx("errors.required"))
    await expect(field(page, "title_da")).to_have_value("Kaffestuen Zebra")  # kept
    await expect(field(page, "title_en")).to_have_attribute("aria-invalid", "true")
    assert await axe_violations(page) == []
    await alert.get_by_role("link", name=tx("field.title_en")).click()
    await expect(field(page, "title_en")).to_be_focused()
    await page.keyboard.type("Zebra coffee room")
    await page.get_by_role("button", name=tx("save")).click()

    await expect(page).to_have_url(re.compile(r"/staff/catalogue/test-kaffestuen\?notice=created$"))
    await expect(page.get_by_role("status")).to_contain_text(tx("notice.created"))
    assert await axe_violations(page) == []
    await page.get_by_role("button", name=tx("action.check")).click()
    await expect(page.get_by_role("status")).to_contain_text(tx("notice.check"))
    await page.get_by_role("button", name=tx("action.undo")).click()
    await expect(page.get_by_role("status")).to_contain_text(tx("notice.undo"))
    history = page.locator("table").last
    await expect(history.locator("tbody tr")).to_have_count(3)
    await expect(history.locator("tbody tr").first).to_contain_text(tx("change.undo"))
    assert (await store.run(catalogue, store.stored, "test-kaffestuen")).offer.assured_date is None

    await page.get_by_role("link", name=tx("back")).click()
    await page.get_by_label(tx("search"), exact=True).fill("zebra")
    await page.get_by_role("button", name=tx("filter")).click()
    rows = page.locator("table tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Kaffestuen Zebra")
    await expect(rows.first).to_contain_text(tx("stale"))  # never checked: flagged
    assert await axe_violations(page) == []
    await context.close()


async def test_offer_cards_in_the_web_chat_ask_to_confirm_unchecked_information(
    browser: Browser,  # noqa: F811
    live_gateway: str,
) -> None:
    chat = await open_chat(browser, live_gateway, bypass_csp=True)
    await chat.say(CRISIS_TEXT)  # answered by the gateway itself, with offers, while Rasa is down
    cards = chat.page.locator("#messages .offer")
    await expect(cards.first).to_be_visible()
    await expect(cards.first.locator(".offer-confirm")).to_have_text(t("offers.stale", "da"))
    assert await axe_violations(chat.page) == []
