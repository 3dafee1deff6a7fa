"""What the SQL records cost per staff request: writing an audit entry (every staff page and API
call writes one) and reading an account (every staff request reads one), on SQLite and on
PostgreSQL, against the Redis stream and hash they replace. Prints p50/p95 in milliseconds.

    .venv/bin/python benchmarks/records.py [--n 500] [--postgres postgresql://postgres@127.0.0.1/postgres]

It makes its own SQLite file, PostgreSQL database (dropped after) and Redis (a private server,
as the tests start one)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pg_server

from indgang.devstack import Stack
from indgang.records import migrate
from indgang.records.db import Database
from indgang.records.models import StaffAccount
from indgang.redis_store import connect
from indgang.settings import Settings
from indgang.staff import audit
from indgang.staff.accounts import get_account


async def timed(n: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    for _ in range(20):  # warm the pool and caches
        await call()
    took = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        took.append((time.perf_counter() - start) * 1000)
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.95)]


async def sql(name: str, url: str, n: int) -> None:
    migrate.upgrade(url)
    db = Database(url)
    async with db.transaction() as session:
        session.add(StaffAccount(username="mette", password_hash="x", role="staff", display_name="Mette"))
    try:
        write = await timed(n, lambda: audit.record(db, "mette", "view", "conv-1", "page"))
        read = await timed(n, lambda: get_account(db, "mette"))
    finally:
        await db.aclose()
    print(f"| {name} | {write[0]:.2f} | {write[1]:.2f} | {read[0]:.2f} | {read[1]:.2f} |")


async def redis_baseline(settings: Settings, n: int) -> None:
    redis = connect(settings)
    account = {"role": "staff", "display_name": "Mette", "password_hash": "x"}
    await redis.hset("bench:account", mapping=account)
    entry = {"at": "2026-11-30T12:00:00+00:00", "staff": "mette", "action": "view", "detail": "page"}
    try:
        write = await timed(n, lambda: redis.xadd("bench:audit", entry))
        read = await timed(n, lambda: redis.hgetall("bench:account"))
    finally:
        await redis.aclose()
    print(f"| Redis (before) | {write[0]:.2f} | {write[1]:.2f} | {read[0]:.2f} | {read[1]:.2f} |")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--postgres", default=pg_server.DEFAULT_SERVER_URL)
    args = parser.parse_args()
    print("| store | audit write p50 | p95 | account read p50 | p95 |")
    print("|---|---|---|---|---|")
    stack = Stack(Settings(_env_file=None))
    stack.start_redis_if_needed(private=True)
    try:
        await redis_baseline(stack.settings, args.n)
    finally:
        stack.stop_all()
    with tempfile.TemporaryDirectory() as folder:
        await sql("SQLite (WAL)", f"sqlite:///{folder}/bench-{secrets.token_hex(4)}.sqlite3", args.n)
    with pg_server.private_database(args.postgres) as url:
        await sql("PostgreSQL 15 (local)", url, args.n)


if __name__ == "__main__":
    asyncio.run(main())
