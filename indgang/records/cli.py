"""`indgang db ...`: migrate the database of durable records, and move the records that lived in
Redis into it."""

from __future__ import annotations

import argparse
import asyncio

from indgang.records import db as records
from indgang.records import migrate
from indgang.records.import_redis import import_all
from indgang.redis_store import connect
from indgang.settings import get_settings


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("db", help="the SQL database of durable records (DATABASE_URL)")
    commands = group.add_subparsers(dest="db_command", required=True)
    commands.add_parser("upgrade", help="migrate to the newest schema (a deploy step)").set_defaults(
        func=upgrade_command
    )
    commands.add_parser("current", help="print the schema's revision and the newest one").set_defaults(
        func=current_command
    )
    commands.add_parser(
        "import-redis",
        help="copy staff accounts, audit log, bookings and follow-up counts from Redis, once (repeatable)",
    ).set_defaults(func=import_command)


def upgrade_command(_args: argparse.Namespace) -> None:
    migrate.upgrade(get_settings().database_url)
    print(f"database at revision {migrate.head()}")


def current_command(_args: argparse.Namespace) -> None:
    print(f"database at revision {migrate.current(get_settings().database_url)}; newest {migrate.head()}")


def import_command(_args: argparse.Namespace) -> None:
    settings = get_settings()
    migrate.upgrade(settings.database_url)

    async def run() -> None:
        db, redis = records.connect(settings), connect(settings)
        try:
            for kind, counts in (await import_all(db, redis, settings)).items():
                print(f"{kind}: {counts}")
        finally:
            await redis.aclose()
            await db.aclose()

    asyncio.run(run())
