"""The console's catalogue pages over real HTTP (the gateway in-process, no Rasa): an editor
creates, edits, checks, retires, restores and undoes, a bad form comes back filled with the
problem in words, a stale edit is refused, every change is audited, and citizens see when an
offer was last checked. Attacks: a citizen, a caseworker, a missing or forged CSRF token, and an
editor trying admin pages and conversations."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import date

import httpx
import pytest
import redis.asyncio as aioredis
from conftest import gateway_settings, serving
from test_staff_console import Login, http, login  # noqa: F401 (fixtures)

from indgang.catalogue import load_catalogue, store
from indgang.i18n import t
from indgang.records.db import Database
from indgang.settings import PACKAGE_DIR, Settings
from indgang.staff import audit
from indgang.staff.accounts import Role
from webhook.staff_session import CSRF_HEADER

pytestmark = pytest.mark.anyio
SHIPPED = PACKAGE_DIR / "catalogue" / "data"
NEW_ID = "test-kaffestuen"


def offer_form(**changes: str | list[str]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {
        "id": NEW_ID,
        "type": "vaerested",
        "title_da": "Kaffestuen Zebra",
        "title_en": "Zebra coffee room",
        "summary_da": "Et sted at drikke kaffe og møde andre.",
        "summary_en": "A place to have coffee and meet people.",
        "next_step_da": "Kom forbi på hverdage.",
        "next_step_en": "Drop in on weekdays.",
        "audience": ["adult"],
        "access": "open",
        "municipality": "Vejle",
        "source_document": "Vejle Kommune",
        "source_year": "2026",
        "revision": "0",
    }
    return form | changes


def revision(page: httpx.Response) -> str:
    found = re.search(r'name="revision" value="(\d+)"', page.text)
    assert found, page.text
    return found[1]


@pytest.fixture
async def catalogue(records: Database) -> AsyncIterator[Database]:
    """The run's catalogue, put back as the files have it after the test."""
    yield records
    await store.run(records, store.clear)
    await store.run(records, store.seed, load_catalogue(SHIPPED).offers)


async def test_an_editor_creates_edits_checks_retires_restores_and_undoes(
    login: Login,  # noqa: F811
    catalogue: Database,
) -> None:
    editor = await login("ella", Role.EDITOR)
    listing = await editor.get("/staff/catalogue")
    assert listing.status_code == 200 and t("staff.console.catalogue.title", "da") in listing.text
    assert t("staff.console.catalogue.stale", "da") in listing.text  # seeded offers were never checked

    for bad, problems in (
        (offer_form(title_en="", municipality="Atlantis"), ("required", "unknown_municipality")),
        (offer_form(age_min="12", age_max="7"), ("age_order",)),
        (offer_form(id="Kaffe Stuen!", source_year="sidste år"), ("id_pattern", "number")),
    ):
        refused = await editor.post("/staff/catalogue/new", data=bad)
        assert refused.status_code == 422
        assert "Kaffestuen Zebra" in refused.text and "Et sted at drikke" in refused.text  # nothing lost
        for key in problems:
            assert t(f"staff.console.catalogue.errors.{key}", "da") in refused.text
    with pytest.raises(store.UnknownOffer):
        await store.run(catalogue, store.stored, NEW_ID)

    created = await editor.post("/staff/catalogue/new", data=offer_form())
    assert (
        created.status_code == 303
        and created.headers["location"] == f"/staff/catalogue/{NEW_ID}?notice=created"
    )
    page = await editor.get(created.headers["location"])
    assert revision(page) == "1" and t("staff.console.catalogue.notice.created", "da") in page.text

    edited = await editor.post(
        f"/staff/catalogue/{NEW_ID}", data=offer_form(title_da="Kaffestuen Zebra 2", revision="1")
    )
    assert edited.status_code == 303
    for action, expect in (("check", "2"), ("retire", "3"), ("restore", "4"), ("undo", "5")):
        done = await editor.post(f"/staff/catalogue/{NEW_ID}/{action}", data={"revision": expect})
        assert done.status_code == 303, (action, done.text)
    stored = await store.run(catalogue, store.stored, NEW_ID)
    assert stored.offer.status == "inactive"  # the restore was undone
    assert stored.offer.title.da == "Kaffestuen Zebra 2" and stored.offer.assured_date is not None
    history = await store.run(catalogue, store.history, NEW_ID)
    assert [c.action for c in history] == ["undo", "restore", "retire", "check", "edit", "create"]
    assert {c.staff for c in history} == {"ella"}
    page = await editor.get(f"/staff/catalogue/{NEW_ID}")
    assert t("staff.console.catalogue.change.undo", "da") in page.text and "ella" in page.text

    async def listed(**query: str) -> bool:
        found = await editor.get("/staff/catalogue", params={"q": "zebra", **query})
        return f'href="/staff/catalogue/{NEW_ID}"' in found.text

    assert await listed() and await listed(type="vaerested") and not await listed(type="akut_hjaelp")
    assert await listed(status="inactive") and not await listed(status="active")
    assert not await listed(stale="true")  # checked today

    logged = [(e.staff, e.action, e.detail) for e in await audit.entries(catalogue)]
    for action in ("create", "edit", "check", "retire", "restore", "undo"):
        assert ("ella", f"catalogue_{action}", NEW_ID) in logged


async def test_a_stale_edit_is_refused_and_keeps_what_was_typed(
    login: Login,  # noqa: F811
    catalogue: Database,
) -> None:
    ella = await login("ella", Role.EDITOR)
    anne = await login("anne", Role.ADMIN)  # admins edit the catalogue too
    assert (await ella.post("/staff/catalogue/new", data=offer_form())).status_code == 303
    first = await anne.post(
        f"/staff/catalogue/{NEW_ID}", data=offer_form(title_da="Annes navn", revision="1")
    )
    assert first.status_code == 303
    late = await ella.post(f"/staff/catalogue/{NEW_ID}", data=offer_form(title_da="Ellas navn", revision="1"))
    assert late.status_code == 409
    assert "Ellas navn" in late.text and t("staff.console.catalogue.conflict", "da")[:40] in late.text
    assert (await store.run(catalogue, store.stored, NEW_ID)).offer.title.da == "Annes navn"
    stale_check = await ella.post(f"/staff/catalogue/{NEW_ID}/retire", data={"revision": "1"})
    assert stale_check.status_code == 409
    assert (await store.run(catalogue, store.stored, NEW_ID)).offer.status == "active"


async def test_who_may_not_change_the_catalogue_changes_nothing(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    catalogue: Database,
    redis: aioredis.Redis,
) -> None:
    seeded = load_catalogue(SHIPPED).offers[0].id
    before = await store.run(catalogue, store.stored, seeded)

    # a citizen (no login)
    for attempt in (
        http.get("/staff/catalogue"),
        http.post("/staff/catalogue/new", data=offer_form()),
        http.post(f"/staff/catalogue/{seeded}/retire", data={"revision": "1"}),
    ):
        answer = await attempt
        assert answer.status_code == 303 and answer.headers["location"].startswith("/staff/login")

    # a caseworker without the role
    mette = await login("mette", Role.STAFF)
    assert (await mette.get("/staff/catalogue")).status_code == 403
    assert (await mette.post("/staff/catalogue/new", data=offer_form())).status_code == 403
    assert (await mette.post(f"/staff/catalogue/{seeded}/retire", data={"revision": "1"})).status_code == 403

    # an editor without the CSRF token, and with a forged one
    ella = await login("ella", Role.EDITOR)
    token = ella.headers.pop(CSRF_HEADER)
    assert (await ella.post(f"/staff/catalogue/{seeded}/retire", data={"revision": "1"})).status_code == 403
    forged = {"revision": "1", "csrf_token": token[:-4] + "AAAA"}
    assert (await ella.post(f"/staff/catalogue/{seeded}/retire", data=forged)).status_code == 403
    assert (
        await ella.post("/staff/catalogue/new", data={**offer_form(), "csrf_token": "x"})
    ).status_code == 403
    ella.headers[CSRF_HEADER] = token

    # an editor trying admin pages and conversations
    for path in (
        "/staff/audit",
        "/staff/webhooks",
        "/docs",
        "/metrics",
        "/api/v1/staff/conversations",
        "/staff/conversations/abc",
    ):
        assert (await ella.get(path)).status_code == 403, path
    inbox = await ella.get("/staff")
    assert inbox.status_code == 303 and inbox.headers["location"] == "/staff/catalogue"
    assert (await ella.post("/staff/conversations/abc/erase", data={})).status_code == 403

    assert await store.run(catalogue, store.stored, seeded) == before
    with pytest.raises(store.UnknownOffer):
        await store.run(catalogue, store.stored, NEW_ID)
    assert not [e for e in await audit.entries(catalogue) if e.action.startswith("catalogue_")]


@pytest.fixture
def quick_gateway(base_settings: Settings) -> Iterator[str]:
    """A gateway that asks after every query whether the catalogue changed."""
    with serving(gateway_settings(base_settings).model_copy(update={"catalogue_check_seconds": 0})) as url:
        yield url


async def test_citizens_see_when_an_offer_was_last_checked(
    quick_gateway: str, catalogue: Database, redis: aioredis.Redis
) -> None:
    async with httpx.AsyncClient(base_url=quick_gateway, timeout=30) as citizen:
        query = {"q": "værested", "limit": 3}
        [first, *_] = (await citizen.get("/api/v1/offers", params=query)).json()["offers"]
        assert first["checked"] is None and first["confirm"] == t("offers.stale", "da")  # never checked
        stored = await store.run(catalogue, store.stored, first["id"])
        today = (
            await store.run(catalogue, store.mark_checked, "ella", first["id"], stored.revision, date.today())
        ).offer
        answer = (await citizen.get("/api/v1/offers", params={**query, "language": "en"})).json()["offers"]
        shown = next(o for o in answer if o["id"] == first["id"])
        assert shown["assured_date"] == today.assured_date.isoformat()
        assert shown["checked"].startswith("Information last checked ") and shown["confirm"] is None
