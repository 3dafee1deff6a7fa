"""The insight page in headless Chromium against the gateway alone (no Rasa: the page reads only
the counts in SQL): an admin logs in, reads the charts and their tables, changes the date range
with the form and downloads the CSV, in Danish and in English, and the page passes axe-core."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.async_api import Browser, expect
from test_browser_chat import axe_violations, browser  # noqa: F401 (fixture)

from indgang.insight import Insight, Metric, increment
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.staff.accounts import Role, add_account

pytestmark = pytest.mark.anyio
PASSWORD = "staff-kodeord-123"


async def test_an_admin_reads_insight_changes_the_range_and_downloads_the_csv(
    browser: Browser,  # noqa: F811
    live_gateway: str,
    redis: object,
    records: Database,
    base_settings: Settings,
) -> None:
    today = Insight(None, base_settings.booking_timezone).today()
    await increment(records, today, "web", Metric.CONVERSATION, by=14)
    await increment(records, today, "sms", Metric.CONVERSATION, by=2)
    await increment(records, today, "web", Metric.UNMET, "ukendt", by=5)
    await increment(records, today - timedelta(days=60), "sms", Metric.CRISIS, "acute", by=7)
    await add_account(records, redis, "anne", PASSWORD, Role.ADMIN, "Anne", replace=True)  # type: ignore[arg-type]

    context = await browser.new_context(
        viewport={"width": 1100, "height": 900}, bypass_csp=True, accept_downloads=True
    )
    page = await context.new_page()
    await page.goto(f"{live_gateway}/staff/login")
    await page.get_by_label("Brugernavn").fill("anne")
    await page.get_by_label("Adgangskode").fill(PASSWORD)
    await page.get_by_role("button", name="Log ind").click()
    await page.get_by_role("link", name="Indsigt").click()
    await expect(page).to_have_url(re.compile(r"/staff/insight$"))

    await expect(page.get_by_role("heading", name="Samtaler pr. dag og kanal")).to_be_visible()
    day = page.get_by_role("row", name=re.compile(str(today)))
    await expect(day.get_by_role("cell")).to_have_text(["<5", "14"])
    await expect(page.get_by_role("img", name=re.compile("Samtaler pr. dag og kanal"))).to_be_visible()
    await expect(page.get_by_role("row", name=re.compile("Ukendt"))).to_contain_text("5")
    assert await axe_violations(page) == []

    # The crisis 60 days ago is outside the last 30 days; a range that takes it in shows it.
    crises = page.locator("#fig-crises + p + div table")
    await expect(crises.get_by_role("cell", name="7", exact=True)).to_have_count(0)
    await page.get_by_label("Fra (dato)").fill(str(today - timedelta(days=63)))
    await page.get_by_label("Til og med (dato)").fill(str(today - timedelta(days=57)))
    await page.get_by_role("button", name="Vis").click()
    await expect(page).to_have_url(re.compile(r"start="))
    await expect(crises.get_by_role("cell", name="7", exact=True)).to_be_visible()

    async with page.expect_download() as download:
        await page.get_by_role("link", name="Hent tallene som CSV").click()
    saved = await (await download.value).path()
    csv = saved.read_text(encoding="utf-8")
    assert "Kriser pr. uge" in csv and ",7" in csv

    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Crises per week")).to_be_visible()
    assert await axe_violations(page) == []
    await context.close()
