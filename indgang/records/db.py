"""The one way to reach the SQL database of durable records.

DATABASE_URL names it as `sqlite:///path` or `postgresql://user@host/db`; the async driver
(aiosqlite, psycopg 3) is chosen here, so a URL copied from psql or a backup script just works.
The `Database` is made once per process by its entry point and handed to whoever needs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from indgang.settings import Settings

# backend -> (the async driver, the blocking one Alembic uses)
_DRIVERS = {
    "sqlite": ("sqlite+aiosqlite", "sqlite"),
    "postgresql": ("postgresql+psycopg", "postgresql+psycopg"),
}
SQLITE_BUSY_MILLISECONDS = 5000  # the gateway, the CLI and a migration may write at once
# The database is unreachable (refused, timed out, locked too long): the gateway answers 503.
UNREACHABLE = (OperationalError, InterfaceError)


def _url(url: str, asynchronous: bool) -> URL:
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ValueError(f"DATABASE_URL: {backend!r} is not supported; use sqlite:/// or postgresql://")
    return parsed.set(drivername=_DRIVERS[backend][0 if asynchronous else 1])


def async_url(url: str) -> URL:
    return _url(url, asynchronous=True)


def sync_url(url: str) -> URL:
    """For Alembic, which migrates through a plain (blocking) connection."""
    return _url(url, asynchronous=False)


def sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def prepare_engine(engine: Any) -> None:
    """SQLite: create the file's folder; write-ahead log (readers never wait for the writer) and a
    busy timeout, so two processes writing at once wait their turn instead of failing."""
    path = sqlite_file(str(engine.url))
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MILLISECONDS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class Database:
    """An async engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_async_engine(async_url(url), pool_pre_ping=True)
        prepare_engine(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed at the end of the block (rolled back on an error)."""
        async with self._sessions() as session, session.begin():
            yield session

    async def aclose(self) -> None:
        await self.engine.dispose()


def connect(settings: Settings) -> Database:
    return Database(settings.database_url)
