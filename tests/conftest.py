"""Shared fixtures: a private real Redis for the whole run, the SQL database of durable records
(a SQLite file; PostgreSQL too for the record tests), and the real stack for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pg_server
import pytest
import redis.asyncio as aioredis
from fakes.twilio_api import FakeTwilio
from sqlalchemy import delete

from indgang.devstack import Stack, ensure_model, free_port
from indgang.records import migrate
from indgang.records.db import Database
from indgang.records.models import Base
from indgang.redis_store import connect
from indgang.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Tiers: `pytest -m "not stack and not browser"` runs the domain and action tests in under a
# minute, without Rasa or Chromium; `make test` runs everything.
_RASA_MODULES = frozenset({"test_nlu", "test_dialogue_stories"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__ if item.module else ""
        if "stack" in getattr(item, "fixturenames", ()) or module in _RASA_MODULES:
            item.add_marker(pytest.mark.stack)
        if module.startswith("test_browser"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_stack() -> Iterator[Stack]:
    """A private redis-server for the test run, so tests never touch a developer's own data."""
    stack = Stack(Settings(_env_file=None))
    stack.start_redis_if_needed(private=True)
    yield stack
    stack.stop_all()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The records of the test run in a SQLite file, migrated as `indgang db upgrade` does."""
    url = f"sqlite:///{tmp_path_factory.mktemp('records') / 'indgang.sqlite3'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A private database on PostgreSQL (pg_server says which server), migrated, dropped after."""
    with pg_server.server() as server, pg_server.private_database(server) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def catalogue_settings(sqlite_url: str) -> Settings:
    """Settings whose catalogue is the test run's SQL one (seeded from the files on first use,
    as in development), for tests of the search that need no Redis."""
    return Settings(_env_file=None, database_url=sqlite_url)


@pytest.fixture(scope="session")
def base_settings(redis_stack: Stack, sqlite_url: str) -> Settings:
    # Staff "always open", so what a waiting citizen is told does not depend on the test's clock.
    # The suite is one client (loopback) standing for many citizens: limits per client are
    # tested with their own settings (tests/test_client_limits.py).
    client_limits = dict.fromkeys(
        ("client_chat_limit", "client_offers_limit", "client_streams_limit"), 100_000
    )
    return redis_stack.settings.model_copy(
        update={"staff_opening_hours": "mon-sun 00:00-24:00", "database_url": sqlite_url, **client_limits}
    )


# The catalogue is the run's shared reference data, seeded once: tests that change it restore it
# themselves (tests/test_catalogue_store.py).
CATALOGUE_TABLES = frozenset({"catalogue_offers", "catalogue_history", "catalogue_version"})


async def empty_records(url: str) -> None:
    database = Database(url)
    try:
        async with database.transaction() as session:
            for table in reversed(Base.metadata.sorted_tables):
                if table.name not in CATALOGUE_TABLES:
                    await session.execute(delete(table))
    finally:
        await database.aclose()


@contextlib.asynccontextmanager
async def flushed_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """A client on `settings`' database, empty before and after, and so are the SQL records
    (modules with a database of their own build their `redis` fixture on it)."""
    client = connect(settings)
    await client.flushdb()
    await empty_records(settings.database_url)
    try:
        yield client
    finally:
        await client.flushdb()
        await empty_records(settings.database_url)
        await client.aclose()


@pytest.fixture
async def redis(base_settings: Settings) -> AsyncIterator[aioredis.Redis]:
    async with flushed_redis(base_settings) as client:
        yield client


@pytest.fixture
async def records(redis: aioredis.Redis, base_settings: Settings) -> AsyncIterator[Database]:
    """The records of the settings every gateway in a test gets (emptied with `redis`)."""
    database = Database(base_settings.database_url)
    yield database
    await database.aclose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """For the record tests: each runs on SQLite and on PostgreSQL, on empty tables."""
    url = request.getfixturevalue(f"{request.param}_url")
    await empty_records(url)
    database = Database(url)
    yield database
    await database.aclose()
    await empty_records(url)


@pytest.fixture(scope="session")
def stack(base_settings: Settings) -> Iterator[Stack]:
    """The real stack (trained model, action server, Rasa, gateway) on free ports."""
    settings = base_settings.model_copy(
        update={
            "gateway_port": free_port(),
            "rasa_url": f"http://127.0.0.1:{free_port()}",
            "action_server_url": f"http://127.0.0.1:{free_port()}",
            "replicas": 1,  # two are tested in tests/test_replicas.py
        }
    )
    running = Stack(settings)
    running.settings = settings.model_copy(update={"public_base_url": running.gateway_url})
    try:
        running.start(ensure_model())
        yield running
    finally:
        running.stop_all()


# --- the SMS channel: a local fake of Twilio's REST API, and settings pointing the SDK at it ---


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def sms_settings(base_settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    return fake_twilio.configure(base_settings)


# --- the web chat: the real gateway serving HTTP in this process, with the dialogue engine down ---


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The real gateway for `settings`, serving HTTP in this process on a free port; yields its URL."""
    import threading
    import time

    import uvicorn

    from webhook.main import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(settings.model_copy(update={"gateway_port": port})),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=2,
        proxy_headers=False,  # as webhook.main.run: the app reads X-Forwarded-For (TRUSTED_PROXIES)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # the lifespan loads the search model
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


@contextlib.asynccontextmanager
async def asgi_gateway(
    settings: Settings, clock: Callable[[], float] = time.time
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app with its lifespan, reached in-process as the proxy in front of it would;
    `clock` is the gateway's time for follow-ups (tests move it a week on)."""
    from webhook.main import create_app

    app = create_app(settings, clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.internal:8000") as client,
    ):
        yield client


def gateway_settings(base_settings: Settings) -> Settings:
    """Settings for a gateway on a free port, nothing listening where Rasa should be."""
    dead = f"http://127.0.0.1:{free_port()}"
    return base_settings.model_copy(
        update={"rasa_url": dead, "action_server_url": dead, "gateway_port": free_port()}
    )


@pytest.fixture(scope="session")
def live_gateway(base_settings: Settings) -> Iterator[str]:
    """The gateway (pages, SSE, chat API) on a free port, nothing listening where Rasa should be:
    for browser and streaming tests of everything that does not need the model. Yields its URL."""
    with serving(gateway_settings(base_settings)) as url:
        yield url
