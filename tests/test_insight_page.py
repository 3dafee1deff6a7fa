"""The insight page (/staff/insight) and its CSV over real HTTP (the gateway in-process, Rasa
down): for admins only, every small cell suppressed on the page and in the CSV alike, the date
range, and the charts drawn on the server."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import httpx
import pytest
from test_staff_console import Login, http, login  # noqa: F401 (fixtures)

from indgang.catalogue.taxonomy import offer_types
from indgang.insight import Figures, Insight, Metric, Row, Table, increment
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.staff.accounts import Role, add_account, remove_account
from webhook.insight_view import as_csv, shown_tables

pytestmark = pytest.mark.anyio
PAGES = ("/staff/insight", "/staff/insight.csv")


async def _seed(records: Database, settings: Settings) -> Insight:
    today = Insight(None, settings.booking_timezone).today()
    await increment(records, today, "web", Metric.CONVERSATION, by=12)
    await increment(records, today, "sms", Metric.CONVERSATION, by=3)
    await increment(records, today, "web", Metric.NEED, "raadgivning", by=6)
    await increment(records, today, "sms", Metric.NEED, "krisecenter", by=2)
    await increment(records, today - timedelta(days=40), "web", Metric.NEED, "stofbehandling", by=9)
    return Insight(None, settings.booking_timezone)


async def test_only_an_admin_sees_insight_or_its_csv(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    records: Database,
    base_settings: Settings,
) -> None:
    await _seed(records, base_settings)
    for path in PAGES:  # nobody logged in: to the login form, nothing shown
        anonymous = await http.get(path)
        assert anonymous.status_code == 303 and anonymous.headers["location"] == "/staff/login", path
    caseworker = await login("mette")
    for path in PAGES:
        refused = await caseworker.get(path)
        assert refused.status_code == 403 and "raadgivning" not in refused.text, path
    admin = await login("anne", Role.ADMIN)
    for path in PAGES:
        assert (await admin.get(path)).status_code == 200, path
        assert (await admin.post(path)).status_code == 405  # nothing here changes anything


async def test_an_account_made_staff_again_loses_insight_at_once(
    login: Login,  # noqa: F811
    records: Database,
    redis: object,
) -> None:
    admin = await login("anne", Role.ADMIN)
    assert (await admin.get("/staff/insight")).status_code == 200
    await add_account(records, redis, "anne", "langt-nok-kodeord", Role.STAFF, "Anne", replace=True)  # type: ignore[arg-type]
    assert (await admin.get("/staff/insight")).status_code in (303, 403)
    await remove_account(records, redis, "anne")  # type: ignore[arg-type]
    assert (await admin.get("/staff/insight.csv")).status_code == 303


async def test_the_page_suppresses_small_cells_and_draws_each_chart_beside_its_table(
    login: Login,  # noqa: F811
    records: Database,
    base_settings: Settings,
) -> None:
    insight = await _seed(records, base_settings)
    admin = await login("anne", Role.ADMIN)
    page = await admin.get("/staff/insight")
    assert page.status_code == 200
    html = page.text
    today = insight.today()
    assert f'value="{today - timedelta(days=29)}"' in html and f'value="{today}"' in html  # 30 days
    row = re.search(rf"<tr><th scope=\"row\">{today}</th>(.*?)</tr>", html)
    assert row and row[1] == "<td>&lt;5</td><td>12</td>"  # SMS 3: suppressed; web 12
    needs = dict(re.findall(r'<th scope="row">([^<]+)</th><td>([^<]+)</td>', html))
    assert needs[offer_types()["krisecenter"].da] == "&lt;5"
    assert offer_types()["stofbehandling"].da not in html  # 40 days ago: outside the range
    assert html.count("<svg") == 8 and html.count('role="img"') == 8
    assert "<script>" not in html.split("</header>")[1]  # the page needs no script of its own
    conversations = html.split('id="fig-conversations"')[1].split("</section>")[0]
    assert ">12<" in conversations and ">3<" not in conversations  # not in the chart either


async def test_the_csv_has_the_same_figures_with_the_same_suppression(
    login: Login,  # noqa: F811
    records: Database,
    base_settings: Settings,
) -> None:
    insight = await _seed(records, base_settings)
    admin = await login("anne", Role.ADMIN)
    today = insight.today()
    response = await admin.get("/staff/insight.csv", params={"start": str(today), "end": str(today)})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["Tal", "Række", "Kolonne", "Værdi"]
    conversations = {r[2]: r[3] for r in rows if r[0] == "Samtaler pr. dag og kanal"}
    assert conversations == {"SMS": "<5", "Webchat": "12"}
    needs = {r[1]: r[3] for r in rows if r[0] == "Behov efter tilbudstype"}
    assert sorted(needs.values()) == ["6", "<5"]
    assert all(value == "<5" or int(value) >= 5 for *_, value in rows[1:])  # only counts have values here
    day = {"start": str(today), "end": str(today)}
    english = await admin.get("/staff/insight.csv", params={**day, "lang": "en"})
    assert english.text.startswith("Figure,Row,Column,Value")


async def test_the_date_range_is_checked(
    login: Login,  # noqa: F811
    records: Database,
    base_settings: Settings,
) -> None:
    insight = await _seed(records, base_settings)
    admin = await login("anne", Role.ADMIN)
    today = insight.today()
    long_ago = today - timedelta(days=40)
    earlier = await admin.get("/staff/insight.csv", params={"start": str(long_ago), "end": str(long_ago)})
    assert any(r[3] == "9" for r in csv.reader(io.StringIO(earlier.text)))
    backwards = await admin.get("/staff/insight", params={"start": str(today), "end": str(long_ago)})
    assert backwards.status_code == 422 and 'role="alert"' in backwards.text and "<svg" not in backwards.text
    too_long = await admin.get("/staff/insight.csv", params={"start": "2020-01-01", "end": str(today)})
    assert too_long.status_code == 422
    assert (await admin.get("/staff/insight", params={"start": "i går"})).status_code == 422


def test_a_hostile_category_is_escaped_in_the_chart_and_defused_in_the_csv() -> None:
    """Categories are the project's own (offer types, scores), but a theme or type that reached
    the table otherwise must neither run in the page nor as a spreadsheet formula."""
    hostile = '=HYPERLINK("http://x")<script>'
    table = Table("unmet", "theme", ("turns",), ("count",), (0,), (Row(hostile, (7,)),))
    found = Figures(date(2026, 11, 2), date(2026, 11, 2), (table,))
    [shown] = shown_tables(found, "da")
    assert "<script>" not in shown.chart and "&lt;script&gt;" in shown.chart
    rows = list(csv.reader(io.StringIO(as_csv(found, "en"))))
    assert rows[1] == ["Needs no offer fitted", "'" + hostile, "Times", "7"]
