"""The offer catalogue in SQL (indgang/catalogue/store.py), each test on SQLite and on PostgreSQL:
seeded once from the files, every change with its history and an undo, a stale edit refused,
the search index rebuilt without a restart, and the catalogue intact after a Redis flush."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from booking_helpers import MONDAY, at, request
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from indgang.booking import Slot, book, calendar_for, get_booking
from indgang.catalogue import hsds, load_catalogue, store
from indgang.catalogue.loader import CatalogueError
from indgang.catalogue.models import LocalText, Offer
from indgang.catalogue.store import CatalogueSource
from indgang.insight import Metric, increment
from indgang.offer_cards import offer_card
from indgang.records.db import Database
from indgang.records.models import InsightCount
from indgang.search import LiveSearch, Ranking
from indgang.settings import PACKAGE_DIR, Settings
from indgang.staff import audit
from indgang.staff.accounts import Role, add_account, authenticate

pytestmark = pytest.mark.anyio
SHIPPED = PACKAGE_DIR / "catalogue" / "data"


@pytest.fixture
async def catalogue(db: Database) -> AsyncIterator[Database]:
    """An empty catalogue on `db`'s backend; the files' offers are put back after the test (the
    run's other tests share the SQLite catalogue)."""
    await store.run(db, store.clear)
    yield db
    await store.run(db, store.clear)
    await store.run(db, store.seed, load_catalogue(SHIPPED).offers)


async def count_of(db: Database, metric: Metric) -> int:
    async with db.transaction() as session:
        return sum(row.count for row in (await session.scalars(select(InsightCount))) if row.metric == metric)


def an_offer(**changes: object) -> Offer:
    base = load_catalogue(SHIPPED).offers[0]
    return base.model_copy(update={"id": "test-vaerested", **changes})


async def test_the_files_seed_an_empty_catalogue_once(catalogue: Database) -> None:
    shipped = load_catalogue(SHIPPED).offers
    assert await store.run(catalogue, store.seed, shipped) == len(shipped)
    assert await store.run(catalogue, store.seed, shipped) == 0  # staff's work is never overwritten
    offers = await store.run(catalogue, store.all_offers)
    assert sorted(s.offer.id for s in offers) == sorted(o.id for o in shipped)
    by_id = {s.offer.id: s.offer for s in offers}
    assert all(by_id[o.id] == o for o in shipped)  # nothing lost on the way into SQL
    [seeded] = await store.run(catalogue, store.history, shipped[0].id)
    assert (seeded.action, seeded.staff, seeded.before) == ("seed", store.SEED_STAFF, None)


async def test_every_change_is_in_the_history_and_the_last_one_can_be_undone(catalogue: Database) -> None:
    created = await store.run(catalogue, store.create, "mette", an_offer())
    assert created.revision == 1
    summary = created.offer.summary.model_copy(update={"da": "Nyt værested i Vejle"})
    edited = await store.run(
        catalogue, store.edit, "jonas", created.offer.model_copy(update={"summary": summary}), 1
    )
    retired = await store.run(catalogue, store.set_status, "mette", "test-vaerested", edited.revision, False)
    assert retired.offer.status == "inactive" and retired.revision == 3

    changes = await store.run(catalogue, store.history, "test-vaerested")
    assert [(c.action, c.staff) for c in changes] == [
        ("retire", "mette"),
        ("edit", "jonas"),
        ("create", "mette"),
    ]
    assert changes[1].before["summary"]["da"] != changes[1].after["summary"]["da"] == "Nyt værested i Vejle"

    undone = await store.run(catalogue, store.undo, "anne", "test-vaerested", retired.revision)
    assert undone is not None and undone.offer == edited.offer and undone.offer.status == "active"
    redone = await store.run(catalogue, store.undo, "anne", "test-vaerested", undone.revision)
    assert redone is not None and redone.offer.status == "inactive"  # undoing an undo redoes it
    assert [c.action for c in await store.run(catalogue, store.history, "test-vaerested")][:2] == [
        "undo",
        "undo",
    ]


async def test_undoing_a_create_removes_the_offer_but_a_seeded_offer_has_nothing_to_undo(
    catalogue: Database,
) -> None:
    await store.run(catalogue, store.create, "mette", an_offer())
    assert await store.run(catalogue, store.undo, "mette", "test-vaerested", 1) is None
    with pytest.raises(store.UnknownOffer):
        await store.run(catalogue, store.stored, "test-vaerested")
    await store.run(catalogue, store.seed, load_catalogue(SHIPPED).offers[:1])
    seeded = load_catalogue(SHIPPED).offers[0].id
    with pytest.raises(store.NothingToUndo):
        await store.run(catalogue, store.undo, "mette", seeded, 1)


async def test_an_edit_made_on_an_older_revision_is_refused_not_written(catalogue: Database) -> None:
    await store.run(catalogue, store.create, "mette", an_offer())
    first = an_offer(url="https://first.example")
    await store.run(catalogue, store.edit, "mette", first, 1)
    with pytest.raises(store.StaleEdit):  # jonas opened the form at revision 1 as well
        await store.run(catalogue, store.edit, "jonas", an_offer(url="https://second.example"), 1)
    with pytest.raises(store.StaleEdit):
        await store.run(catalogue, store.mark_checked, "jonas", "test-vaerested", 1, date.today())
    kept = await store.run(catalogue, store.stored, "test-vaerested")
    assert kept.offer.url == "https://first.example" and kept.revision == 2
    with pytest.raises(store.DuplicateOffer):
        await store.run(catalogue, store.create, "jonas", an_offer())


async def test_marking_checked_sets_the_assured_date_and_the_citizen_sees_it(catalogue: Database) -> None:
    await store.run(catalogue, store.create, "mette", an_offer())
    today = date(2026, 12, 2)
    checked = await store.run(catalogue, store.mark_checked, "mette", "test-vaerested", 1, today)
    assert checked.offer.assured_date == today
    card = offer_card(checked.offer, "da", stale_days=365, today=today)
    assert card.checked == "Oplysningerne er sidst tjekket 2. december 2026." and card.confirm is None
    english = offer_card(checked.offer, "en", stale_days=365, today=today + timedelta(days=400))
    assert english.checked == "Information last checked 2 December 2026."
    assert english.confirm and "municipality" in english.confirm  # older than the limit: confirm it
    never = offer_card(an_offer(), "da", stale_days=365, today=today)
    assert never.checked is None and never.confirm and "kommunen" in never.confirm


async def test_the_search_index_follows_the_catalogue_without_a_restart(catalogue: Database) -> None:
    await store.run(catalogue, store.seed, load_catalogue(SHIPPED).offers)
    now = [0.0]
    source = CatalogueSource(catalogue.url, check_seconds=5, stale_days=365, clock=lambda: now[0])
    live = LiveSearch(source, None, None, Ranking(semantic_weight=0), seed=load_catalogue(SHIPPED))
    before = live.current()
    assert before.search("værested")  # the index works
    new = an_offer(id="test-kaffestuen", title=LocalText(da="Kaffestuen Zebra", en="Zebra coffee room"))
    await store.run(catalogue, store.create, "mette", new)
    assert live.current() is before  # not asked again within CATALOGUE_CHECK_SECONDS
    now[0] = 6.0
    after = live.current()
    assert after is not before and after.catalogue.get("test-kaffestuen") is not None
    assert after.needs is before.needs  # the need classifier is not retrained for an edit
    assert "test-kaffestuen" in [h.offer.id for h in after.search("kaffestuen zebra", limit=10)]
    stored = await store.run(catalogue, store.stored, "test-kaffestuen")
    await store.run(catalogue, store.set_status, "mette", "test-kaffestuen", stored.revision, False)
    now[0] = 12.0
    assert live.current().catalogue.get("test-kaffestuen") is None  # retired: shown to nobody


def test_while_the_database_is_down_the_search_serves_the_seed_files() -> None:
    from indgang.devstack import free_port

    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    source = CatalogueSource(dead, check_seconds=0, stale_days=365, fallback=SHIPPED)
    catalogue = source.current()
    assert catalogue.version == -1 and len(catalogue.offers) == len(load_catalogue(SHIPPED).offers)
    assert catalogue.of_type("akut_hjaelp")  # the crisis reply's offers are there
    with pytest.raises(OperationalError):
        CatalogueSource(dead, check_seconds=0, stale_days=365).current()


async def test_an_empty_catalogue_says_how_to_seed_it(catalogue: Database) -> None:
    source = CatalogueSource(catalogue.url, check_seconds=0, stale_days=365)
    with pytest.raises(CatalogueError, match="indgang catalogue seed"):
        source.current()


async def test_hsds_export_and_import_carry_status_and_assured_date(catalogue: Database) -> None:
    offer = an_offer(status="inactive", assured_date=date(2026, 3, 1))
    assert hsds.import_json(hsds.export_json([offer])) == [offer]
    [row] = hsds.import_csv(hsds.export_csv([offer]))
    assert (row.status, row.assured_date) == ("inactive", date(2026, 3, 1))
    created, replaced = await store.run(catalogue, store.put_many, [offer], "import", "import", False)
    assert (created, replaced) == (1, 0)
    with pytest.raises(store.DuplicateOffer):
        await store.run(catalogue, store.put_many, [offer], "import", "import", False)
    assert (await store.run(catalogue, store.stored, offer.id)).offer == offer


async def test_every_durable_record_survives_a_redis_flush(
    catalogue: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    """Issue 20's promise in one test: accounts, audit, bookings, the catalogue and the insight
    counts are in SQL, so flushing every Redis database loses none of them."""
    await store.run(catalogue, store.seed, load_catalogue(SHIPPED).offers)
    await store.run(catalogue, store.create, "mette", an_offer())
    await add_account(catalogue, redis, "anne", "et langt og godt kodeord", role=Role.ADMIN, display_name="A")
    await audit.record(catalogue, "anne", "catalogue")
    person = (await calendar_for(catalogue, base_settings)).directory.get("mette")
    assert person is not None
    booked = await book(catalogue, redis, base_settings, Slot(person, at(4, 10)), request(), MONDAY)
    await increment(catalogue, MONDAY.date(), "web", Metric.CONVERSATION)

    await redis.flushall()

    assert (await store.run(catalogue, store.stored, "test-vaerested")).offer == an_offer()
    assert len(await store.run(catalogue, store.history, "test-vaerested")) == 1
    source = CatalogueSource(catalogue.url, check_seconds=0, stale_days=365)
    assert source.current().get("test-vaerested") is not None
    assert await authenticate(catalogue, "anne", "et langt og godt kodeord") is not None
    assert [e.action for e in await audit.entries(catalogue)] == ["catalogue"]
    assert await get_booking(catalogue, booked.id) == booked
    assert await count_of(catalogue, Metric.CONVERSATION) == 1


def test_the_cli_seeds_exports_and_imports_through_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from indgang.cli import main
    from indgang.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("DATABASE_MIGRATE_ON_START", "false")  # as production: seeding is a command
    get_settings.cache_clear()
    try:
        from indgang.records import migrate

        migrate.upgrade(get_settings().database_url)
        main(["catalogue", "seed"])
        assert f"seeded {len(load_catalogue(SHIPPED).offers)} offers" in capsys.readouterr().out
        sheet = tmp_path / "vejle.csv"
        sheet.write_text("navn,beskrivelse,paragraf\nKilden,Et værested,SEL § 104\n", encoding="utf-8")
        imports = ["catalogue", "import", str(sheet), "--municipality", "vejle"]
        main([*imports, "--source-document", "Vejle", "--source-year", "2025"])
        assert "imported 1 new offers" in capsys.readouterr().out
        with pytest.raises(SystemExit, match="use --force"):
            main([*imports, "--source-document", "Vejle", "--source-year", "2025"])
        exported = tmp_path / "catalogue.json"
        main(["catalogue", "export", "json", "-o", str(exported)])
        offers = hsds.import_json(exported.read_text(encoding="utf-8"))
        assert (
            "vejle-kilden" in {o.id for o in offers}
            and len(offers) == len(load_catalogue(SHIPPED).offers) + 1
        )
    finally:
        get_settings.cache_clear()


def test_processes_that_start_together_migrate_and_seed_once(tmp_path: Path) -> None:
    """The action servers and the gateway prepare a new database at the same moment (development)."""
    from concurrent.futures import ThreadPoolExecutor

    url = f"sqlite:///{tmp_path / 'race.sqlite3'}"
    sources = [CatalogueSource(url, check_seconds=0, stale_days=365) for _ in range(3)]
    with ThreadPoolExecutor(len(sources)) as pool:
        list(pool.map(lambda source: store._prepare(source, url, SHIPPED), sources))
    with sources[0].sessions() as session:
        assert len(store.all_offers(session)) == len(load_catalogue(SHIPPED).offers)
        assert store.version(session) == 1  # seeded by one of them, once
