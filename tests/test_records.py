"""Durable records in SQL (indgang/records), each test on SQLite and on PostgreSQL: they
survive a Redis flush, the schema migrates by one command, a second factor's code opens one
login only, and `indgang db import-redis` moves what lived in Redis once, losing nothing."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import pg_server
import pyotp
import pytest
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from conftest import asgi_gateway, gateway_settings

from indgang import keys
from indgang.devstack import free_port
from indgang.records import migrate
from indgang.records.db import Database
from indgang.records.import_redis import import_all
from indgang.redis_store import redis_url
from indgang.settings import PROJECT_DIR, Settings
from indgang.staff import audit, sessions
from indgang.staff.accounts import (
    Role,
    add_account,
    authenticate,
    enrol_totp,
    get_account,
    remove_account,
    use_totp_code,
)

pytestmark = pytest.mark.anyio
PASSWORD = "langt-nok-kodeord"


async def test_the_schema_is_at_the_newest_migration(db: Database) -> None:
    assert migrate.head() is not None
    assert migrate.current(db.url) == migrate.head()
    migrate.upgrade(db.url)  # a database already there is left as it is
    assert migrate.current(db.url) == migrate.head()


async def test_accounts_and_the_audit_log_survive_a_redis_flush(db: Database, redis: aioredis.Redis) -> None:
    await add_account(db, redis, "mette", PASSWORD, Role.ADMIN, "Mette")
    session = await sessions.start(redis, "mette", sessions.Stage.FULL, 600)
    await audit.record(db, "mette", "view", "conv-1", detail="page")
    await redis.flushdb()
    member = await authenticate(db, "mette", PASSWORD)
    assert member is not None and member.is_admin and member.display_name == "Mette"
    [entry] = await audit.entries(db)
    assert (entry.staff, entry.action, entry.detail) == ("mette", "view", "page")
    assert entry.conversation_id == keys.pseudonym("conv-1") != "conv-1"
    assert datetime.fromisoformat(entry.at).tzinfo is not None
    assert await sessions.get(redis, session.id) is None  # sessions are the session store's: gone


async def test_the_audit_log_lists_the_newest_first(db: Database) -> None:
    for action in ("login", "inbox", "view"):
        await audit.record(db, "bo", action)
    assert [e.action for e in await audit.entries(db)] == ["view", "inbox", "login"]
    assert [e.action for e in await audit.entries(db, limit=1)] == ["view"]


async def test_removing_an_account_ends_its_sessions_and_leaves_its_audit_trail(
    db: Database, redis: aioredis.Redis
) -> None:
    await add_account(db, redis, "jonas", PASSWORD, display_name="Jonas")
    session = await sessions.start(redis, "jonas", sessions.Stage.FULL, 600)
    await audit.record(db, "jonas", "login")
    assert await remove_account(db, redis, "jonas") == 1
    assert await get_account(db, "jonas") is None and await sessions.get(redis, session.id) is None
    assert [e.staff for e in await audit.entries(db)] == ["jonas"]


async def test_a_second_factor_code_opens_one_login_even_when_two_race(
    db: Database, redis: aioredis.Redis
) -> None:
    await add_account(db, redis, "mette", PASSWORD, display_name="Mette")
    secret = pyotp.random_base32()
    await enrol_totp(db, "mette", secret, used_step=0)
    code = pyotp.TOTP(secret).now()
    results = await asyncio.gather(*(use_totp_code(db, "mette", code) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert not await use_totp_code(db, "mette", code)
    assert not await use_totp_code(db, "mette", "000000" if code != "000000" else "111111")


async def _legacy_records(redis: aioredis.Redis) -> tuple[str, list[str]]:
    """What an installation before SQL kept in Redis: two accounts (one with TOTP, one
    disabled), an account's session set beside them, and three audit entries."""
    password_hash = PasswordHasher().hash(PASSWORD)
    secret = pyotp.random_base32()
    await redis.hset(
        keys.staff_account("anne"),
        mapping={"password_hash": password_hash, "role": "admin", "display_name": "Anne",
                 "totp_secret": secret, "totp_last_step": 7},
    )  # fmt: skip
    await redis.hset(
        keys.staff_account("bo"),
        mapping={"password_hash": password_hash, "role": "staff", "display_name": "Bo", "disabled": "1"},
    )
    await redis.sadd(keys.staff_account_sessions("anne"), "a-session-digest")
    ids = []
    for month, action in ((1, "login"), (2, "inbox"), (3, "account_added")):
        entry = {"at": f"2026-0{month}-01T10:00:00+00:00", "staff": "anne", "action": action}
        ids.append(await redis.xadd(keys.staff_audit(), {**entry, "conversation_id": "", "detail": ""}))
    return secret, ids


async def test_import_from_redis_moves_every_record_once(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    secret, _ = await _legacy_records(redis)
    await add_account(db, redis, "carl", PASSWORD, display_name="Carl")  # made in SQL already
    first = await import_all(db, redis, base_settings)
    assert (first["staff accounts"].found, first["staff accounts"].added) == (2, 2)
    assert (first["audit entries"].found, first["audit entries"].added) == (3, 3)
    again = await import_all(db, redis, base_settings)
    assert (again["staff accounts"].added, again["audit entries"].added) == (0, 0)

    later = {"at": "2026-04-01T10:00:00+00:00", "staff": "bo", "action": "login"}
    await redis.xadd(keys.staff_audit(), later)
    assert (await import_all(db, redis, base_settings))["audit entries"].added == 1  # only the new one
    await redis.flushdb()
    anne = await authenticate(db, "anne", PASSWORD)
    assert anne is not None and anne.is_admin and anne.has_totp
    assert not await use_totp_code(db, "anne", pyotp.TOTP(secret).at(datetime(1970, 1, 1, tzinfo=UTC)))
    assert await use_totp_code(db, "anne", pyotp.TOTP(secret).now())
    assert (await get_account(db, "bo")).disabled and await authenticate(db, "bo", PASSWORD) is None
    assert await get_account(db, "carl") is not None
    entries = await audit.entries(db)
    assert [(e.staff, e.action, e.at[:10]) for e in entries] == [
        ("bo", "login", "2026-04-01"),
        ("anne", "account_added", "2026-03-01"),
        ("anne", "inbox", "2026-02-01"),
        ("anne", "login", "2026-01-01"),
    ]


async def test_the_import_command_migrates_and_imports(
    tmp_path: os.PathLike[str], redis: aioredis.Redis, base_settings: Settings
) -> None:
    """`indgang db import-redis` on a database that does not exist yet (SQLite: the command is
    the same on PostgreSQL, and slow to start)."""
    await _legacy_records(redis)
    url = f"sqlite:///{tmp_path}/fresh.sqlite3"
    env = {**os.environ, "REDIS_URL": redis_url(base_settings), "DATABASE_URL": url}
    command = [sys.executable, "-m", "indgang.cli", "db", "import-redis"]
    done = subprocess.run(command, env=env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "staff accounts: 2 found, 2 added" in done.stdout
    assert "audit entries: 3 found, 3 added" in done.stdout
    assert migrate.current(url) == migrate.head()
    database = Database(url)
    try:
        assert len(await audit.entries(database)) == 3
    finally:
        await database.aclose()


def test_a_private_postgres_is_started_where_none_answers() -> None:
    """What the suite does on a machine without PostgreSQL at TEST_DATABASE_URL."""
    with pg_server.private_server() as server:
        assert pg_server.answers(server)
        with pg_server.private_database(server) as url:
            migrate.upgrade(url)
            assert migrate.current(url) == migrate.head()
    assert not pg_server.answers(server)


async def test_a_login_while_the_database_is_down_answers_503_not_500(
    redis: aioredis.Redis, base_settings: Settings
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    update = {"database_url": dead, "database_migrate_on_start": False}
    async with asgi_gateway(gateway_settings(base_settings).model_copy(update=update)) as client:
        form = await client.get("/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text
        login = {"username": "mette", "password": PASSWORD, "csrf_token": token[1]}
        refused = await client.post("/staff/login", data=login)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert "Traceback" not in refused.text


def test_an_unsupported_database_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="mysql"):
        Database("mysql://someone@127.0.0.1/indgang")
