"""Alembic migrations, run by `indgang db upgrade` and, in development, on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from indgang.records.db import prepare_engine, sync_url
from indgang.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to `revision` (the newest by default); a database there already is
    left as it is. PostgreSQL migrates in one transaction: a failed migration changes nothing."""
    engine = create_engine(sync_url(url))
    prepare_engine(engine)
    try:
        with engine.begin() as connection:
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
