"""Staff accounts (SQL records, on SQLite and PostgreSQL): argon2 hashes, clear refusals, and
the `indgang staff add` command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis.asyncio as aioredis

from indgang.records.db import Database
from indgang.redis_store import redis_url
from indgang.settings import PROJECT_DIR, Settings
from indgang.staff.accounts import AccountError, Role, add_account, authenticate, get_account

pytestmark = pytest.mark.anyio


async def test_accounts_refuse_bad_names_short_passwords_and_duplicates(
    db: Database, redis: aioredis.Redis
) -> None:
    with pytest.raises(AccountError, match="username"):
        await add_account(db, redis, "<script>", "langt-nok-kodeord")
    with pytest.raises(AccountError, match="at least"):
        await add_account(db, redis, "mette", "kort")
    await add_account(db, redis, "Mette", "langt-nok-kodeord", Role.ADMIN, "Mette Hansen")
    with pytest.raises(AccountError, match="exists"):
        await add_account(db, redis, "mette", "et-andet-kodeord", display_name="Mette")
    member = await authenticate(db, "METTE ", "langt-nok-kodeord")
    assert member is not None and member.is_admin and member.display_name == "Mette Hansen"


@pytest.mark.parametrize("role", list(Role))
async def test_every_account_needs_a_display_name_since_every_role_replies_to_citizens(
    db: Database, redis: aioredis.Redis, role: Role
) -> None:
    """Citizens read the display name on staff replies: never the login name by default."""
    for missing in (None, "", "   "):
        with pytest.raises(AccountError, match="display name"):
            await add_account(db, redis, "jonas", "langt-nok-kodeord", role, missing)
    assert await get_account(db, "jonas") is None
    member = await add_account(db, redis, "jonas", "langt-nok-kodeord", role, " Jonas Berg ")
    assert member.display_name == "Jonas Berg" == (await get_account(db, "jonas")).display_name


async def test_the_cli_adds_an_account_that_can_log_in(
    records: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    """On one database (the command is the same on both; it is slow to start)."""
    env = {**os.environ, "REDIS_URL": redis_url(base_settings), "DATABASE_URL": records.url}
    command = [
        sys.executable,
        "-m",
        "indgang.cli",
        "staff",
        "add",
        "jonas",
        "--role",
        "admin",
        "--password-stdin",
    ]
    unnamed = subprocess.run(
        command,
        input="hemmeligt-kodeord\n",
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unnamed.returncode == 2 and "--name" in unnamed.stderr
    assert await get_account(records, "jonas") is None
    command += ["--name", "Jonas"]
    done = subprocess.run(
        command,
        input="hemmeligt-kodeord\n",
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "jonas (admin)" in done.stdout
    assert (await get_account(records, "jonas")).role == Role.ADMIN
    assert await authenticate(records, "jonas", "hemmeligt-kodeord") is not None
    again = subprocess.run(
        command,
        input="hemmeligt-kodeord\n",
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "exists" in again.stderr
