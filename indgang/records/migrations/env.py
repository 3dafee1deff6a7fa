"""Alembic's environment: migrates the connection indgang.records.migrate hands it (the
database of DATABASE_URL), or, for `alembic` run by hand, the URL in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from indgang.records.db import prepare_engine, sync_url
from indgang.records.models import Base

config = context.config


def _migrate(connection: object) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _migrate(connection)
else:
    engine = create_engine(sync_url(config.get_main_option("sqlalchemy.url") or ""))
    prepare_engine(engine)
    with engine.connect() as opened:
        _migrate(opened)
