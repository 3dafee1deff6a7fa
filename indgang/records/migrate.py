"""Alembic migrations, run by `indgang db upgrade` and, in development, on start."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from indgang.records.db import prepare_engine, sqlite_file, sync_url
from indgang.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextmanager
def one_at_a_time(url: str) -> Iterator[None]:
    """For a SQLite file, a lock beside it: SQLite runs a migration's DDL outside any transaction,
    so two processes starting together (the action servers, the gateways) would each create half
    the tables. PostgreSQL's migration is one transaction: the second waits or fails and retries."""
    path = sqlite_file(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to `revision` (the newest by default); a database there already is
    left as it is. PostgreSQL migrates in one transaction: a failed migration changes nothing."""
    engine = create_engine(sync_url(url))
    prepare_engine(engine)
    try:
        with one_at_a_time(url), engine.begin() as connection:
            config = _config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def on_start(settings: Settings) -> None:
    """Every process that opens the database migrates it first, unless production says not to
    (DATABASE_MIGRATE_ON_START; there `indgang db upgrade` is a deploy step)."""
    if settings.database_migrate_on_start:
        upgrade(settings.database_url)


def current(url: str) -> str | None:
    """The database's revision (None before the first migration)."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    return ScriptDirectory.from_config(_config("sqlite://")).get_current_head()
