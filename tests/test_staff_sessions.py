"""Staff sessions live in Redis and can be ended: a copied cookie stops working after logout, a
password change, or when the account is disabled or removed, and an open live stream of that
account ends at once. Only the holder (or an admin) may close a conversation. Real HTTP, real
Redis, and the real `indgang staff` command in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pyotp
import pytest
import redis.asyncio as aioredis
from test_staff_console import PASSWORD, Login, http, login, waiting_conversation  # noqa: F401 (fixtures)

from indgang import handoff
from indgang.records.db import Database
from indgang.redis_store import redis_url
from indgang.settings import PROJECT_DIR, Settings
from indgang.staff import audit
from indgang.staff.accounts import Role, authenticate, enrol_totp, get_account
from webhook.staff_session import CSRF_HEADER, SESSION_COOKIE

pytestmark = pytest.mark.anyio


def staff_command(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url(settings), "DATABASE_URL": settings.database_url}
    return subprocess.run(
        [sys.executable, "-m", "indgang.cli", "staff", *args],
        input=stdin,
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def copy_of(client: httpx.AsyncClient, base_url: str) -> httpx.AsyncClient:
    """Another browser holding a copy of the client's session cookie (and its CSRF token)."""
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    thief = httpx.AsyncClient(
        base_url=base_url, timeout=30, headers={CSRF_HEADER: client.headers[CSRF_HEADER]}
    )
    thief.cookies.set(SESSION_COOKIE, cookie)
    return thief


async def is_in(client: httpx.AsyncClient) -> bool:
    page = await client.get("/staff")
    api = await client.get("/api/v1/staff/conversations")
    assert (page.status_code == 200) == (api.status_code == 200), (page.status_code, api.status_code)
    if page.status_code != 200:
        assert page.status_code == 303 and page.headers["location"].startswith("/staff/login")
        assert api.status_code == 401
    return page.status_code == 200


async def test_a_cookie_copied_before_logout_is_worth_nothing_after_it(
    login: Login,  # noqa: F811
    live_gateway: str,
) -> None:
    client = await login("mette")
    async with copy_of(client, live_gateway) as thief:
        assert await is_in(thief)  # the copy works while the login lasts (it is the same session)
        logout = await client.post("/staff/logout", data={"csrf_token": client.headers[CSRF_HEADER]})
        assert logout.status_code == 303
        assert not await is_in(thief)
        assert not await is_in(client)


async def test_a_password_change_ends_every_other_session_of_the_account(
    login: Login,  # noqa: F811
    live_gateway: str,
    records: Database,
) -> None:
    client = await login("mette")
    async with copy_of(client, live_gateway) as thief:
        other_device = await login("mette", replace=False)
        colleague = await login("jonas")
        token = client.headers[CSRF_HEADER]
        short = await client.post(
            "/staff/password",
            data={"csrf_token": token, "current": PASSWORD, "new": "kort", "repeat": "kort"},
        )
        assert short.status_code == 400 and await is_in(thief)  # refused: nothing changed
        wrong = await client.post(
            "/staff/password",
            data={
                "csrf_token": token,
                "current": "forkert-kodeord",
                "new": "nyt-langt-kodeord",
                "repeat": "nyt-langt-kodeord",
            },
        )
        assert wrong.status_code == 400 and await is_in(thief)
        changed = await client.post(
            "/staff/password",
            data={
                "csrf_token": token,
                "current": PASSWORD,
                "new": "nyt-langt-kodeord",
                "repeat": "nyt-langt-kodeord",
            },
        )
        assert changed.status_code == 303
        # The cookie that made the change goes on being valid: a change is no logout. Its copy
        # was the same session, so the thief keeps it too; every other session has ended.
        assert await is_in(client) and await is_in(thief)
        assert not await is_in(other_device)
        assert await is_in(colleague)
        assert await authenticate(records, "mette", "nyt-langt-kodeord") is not None
        assert ("mette", "password_changed") in {(e.staff, e.action) for e in await audit.entries(records)}


async def test_changing_a_password_on_the_command_line_ends_every_session(
    login: Login,  # noqa: F811
    base_settings: Settings,
) -> None:
    client = await login("mette")
    assert await is_in(client)
    done = staff_command(
        base_settings,
        *("add", "mette", "--name", "Mette", "--replace", "--password-stdin"),
        stdin="et-nyt-kodeord\n",
    )
    assert done.returncode == 0, done.stderr
    assert not await is_in(client)


@pytest.mark.parametrize("command", ["disable", "remove"])
async def test_disabling_or_removing_an_account_ends_its_sessions_and_open_streams(
    command: str,
    login: Login,  # noqa: F811
    live_gateway: str,
    http: httpx.AsyncClient,  # noqa: F811
    records: Database,
    base_settings: Settings,
) -> None:
    conv = await waiting_conversation(http)
    client = await login("mette")
    colleague = await login("jonas")
    async with copy_of(client, live_gateway) as thief:
        async with (
            client.stream("GET", "/staff/inbox/events") as inbox_stream,
            client.stream("GET", f"/staff/conversations/{conv}/events") as conversation_stream,
        ):
            assert inbox_stream.status_code == 200 and conversation_stream.status_code == 200
            started = time.monotonic()
            done = staff_command(base_settings, command, "mette")
            assert done.returncode == 0, done.stderr
            ran = time.monotonic() - started
            for stream in (inbox_stream, conversation_stream):
                ended = time.monotonic()
                async for _ in stream.aiter_raw():
                    assert time.monotonic() - ended < 8, "the stream went on after the account ended"
                # the stream closed (the server ended it) within a few seconds of the command
                assert time.monotonic() - started < ran + 8
        assert not await is_in(client) and not await is_in(thief)
    assert await is_in(colleague)
    form = await http.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
    again = await http.post(
        "/staff/login", data={"username": "mette", "password": PASSWORD, "csrf_token": token}
    )
    assert again.status_code == 401
    logged = {(e.action, e.detail) for e in await audit.entries(records)}
    assert (f"account_{command}d", "mette") in logged


async def test_an_enabled_account_logs_in_again(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    base_settings: Settings,
) -> None:
    await login("mette")
    assert staff_command(base_settings, "disable", "mette").returncode == 0
    assert staff_command(base_settings, "enable", "mette").returncode == 0
    client = await login("mette", replace=False)
    assert await is_in(client)
    assert "no account" in staff_command(base_settings, "disable", "ukendt").stderr


async def test_only_the_holder_or_an_admin_closes_a_conversation(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    redis: aioredis.Redis,
) -> None:
    mette = await login("mette")
    jonas = await login("jonas")
    admin = await login("anne", Role.ADMIN)

    held = await waiting_conversation(http)
    assert (await mette.post(f"/api/v1/staff/conversations/{held}/takeover")).status_code == 200
    refused = await jonas.post(f"/api/v1/staff/conversations/{held}/close")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    form = await jonas.post(
        f"/staff/conversations/{held}/close", data={"csrf_token": jonas.headers[CSRF_HEADER]}
    )
    assert form.status_code == 303 and form.headers["location"].endswith("?notice=not_yours_to_close")
    assert (await handoff.get(redis, held)).state == handoff.HandoffState.ACTIVE
    assert (await mette.post(f"/api/v1/staff/conversations/{held}/close")).status_code == 200

    waiting = await waiting_conversation(http)  # nobody holds it: not anybody's to close
    assert (await jonas.post(f"/api/v1/staff/conversations/{waiting}/close")).status_code == 403
    assert (await admin.post(f"/api/v1/staff/conversations/{waiting}/close")).status_code == 200
    other = await waiting_conversation(http)
    assert (await jonas.post(f"/api/v1/staff/conversations/{other}/takeover")).status_code == 200
    assert (await admin.post(f"/api/v1/staff/conversations/{other}/close")).status_code == 200
    assert (await handoff.get(redis, other)).state == handoff.HandoffState.CLOSED


async def test_resetting_a_lost_second_factor_ends_the_sessions_and_turns_it_off(
    login: Login,  # noqa: F811
    records: Database,
    base_settings: Settings,
) -> None:
    client = await login("mette")
    await enrol_totp(records, "mette", pyotp.random_base32(), used_step=0)
    assert (await get_account(records, "mette")).has_totp
    done = staff_command(base_settings, "reset-totp", "mette")
    assert done.returncode == 0, done.stderr
    assert not (await get_account(records, "mette")).has_totp
    assert not await is_in(client)
    logged = {(e.staff, e.action, e.detail) for e in await audit.entries(records)}
    assert ("cli", "totp_reset", "mette") in logged
