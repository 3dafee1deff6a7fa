"""Production mode and the gateway's transport edges, over real HTTP and real processes: no
published default key opens anything, production refuses weak secrets at start-up and says
which, `indgang run` makes its own local secrets, HSTS and a Secure cookie in production, and a
413 for any body over 16 KiB, chunked or not."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import httpx
import itsdangerous
import pytest
import redis.asyncio as aioredis
from conftest import serving

from indgang.devstack import free_port, launcher_settings
from indgang.records.db import Database
from indgang.settings import PROJECT_DIR, PUBLISHED_DEFAULTS, SECRET_FIELDS, Settings
from indgang.staff.accounts import Role, add_account
from webhook.staff_session import SESSION_COOKIE

PUBLISHED = "change-me-in-production"  # what main shipped as the default of every secret


def forged_cookie(secret: str, username: str) -> str:
    """A staff session cookie as Starlette's SessionMiddleware signs it, with `secret`."""
    session = {"user": username, "at": int(time.time()), "csrf": "forged"}
    return itsdangerous.TimestampSigner(secret).sign(b64encode(json.dumps(session).encode())).decode()


@pytest.mark.anyio
async def test_a_staff_cookie_signed_with_the_published_default_key_is_refused(
    live_gateway: str, redis: aioredis.Redis, records: Database
) -> None:
    """On main this cookie opened the audit log: every secret defaulted to the published one."""
    await add_account(records, redis, "revisor", "langt-nok-kodeord", Role.ADMIN, display_name="Revisor")
    async with httpx.AsyncClient(base_url=live_gateway, timeout=30) as client:
        client.cookies.set(SESSION_COOKIE, forged_cookie(PUBLISHED, "revisor"))
        audit = await client.get("/staff/audit")
        assert audit.status_code == 303 and audit.headers["location"] == "/staff/login"
        assert (await client.get("/api/v1/staff/conversations")).status_code == 401


def test_in_development_an_unset_secret_is_random_and_a_published_default_is_refused() -> None:
    first, second = Settings(_env_file=None), Settings(_env_file=None)
    for name in SECRET_FIELDS:
        value = getattr(first, name)
        assert len(value) >= 32 and value != getattr(second, name) and value not in PUBLISHED_DEFAULTS
    with pytest.raises(ValueError, match="STAFF_SESSION_SECRET is a published default"):
        Settings(_env_file=None, staff_session_secret=PUBLISHED)
    assert Settings(_env_file=None, webhook_urls="http://127.0.0.1:9/hook").webhook_url_list  # local receiver


def strong_secrets() -> dict[str, str]:
    return {name: f"{name}-{'x' * 40}" for name in SECRET_FIELDS}


def test_production_takes_strong_secrets_and_https_webhooks_only() -> None:
    database = {"database_url": "postgresql://indgang@db.internal/indgang"}
    settings = Settings(_env_file=None, indgang_env="production", **database, **strong_secrets())
    assert settings.production and settings.staff_cookie_secure is True
    with pytest.raises(ValueError, match="DATABASE_URL is unset"):
        Settings(_env_file=None, indgang_env="production", **strong_secrets())
    with pytest.raises(ValueError, match=r"WEBHOOK_URLS has http://receiver\.example: only https://"):
        Settings(
            _env_file=None,
            indgang_env="production",
            webhook_urls="https://ok.example/hook,http://receiver.example/hook?key=kept-out-of-the-message",
            **strong_secrets(),
        )
    with pytest.raises(ValueError, match="STAFF_COOKIE_SECURE is false"):
        Settings(_env_file=None, indgang_env="production", staff_cookie_secure=False, **strong_secrets())


def production_env(**secrets: str) -> dict[str, str]:
    """The test's environment without any secret, in production, with `secrets` set."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in {*SECRET_FIELDS, "database_url"}}
    return {**env, "INDGANG_ENV": "production", "GATEWAY_PORT": str(free_port()), **secrets}


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "webhook.main"],
        ["-m", "actions.server", "--port", "0"],
        ["-m", "indgang.cli", "run"],
        ["-m", "indgang.cli", "staff", "add", "mette", "--name", "Mette", "--password-stdin"],
    ],
    ids=["gateway", "action-server", "launcher", "cli"],
)
def test_production_with_a_default_secret_exits_non_zero_saying_which(command: list[str]) -> None:
    env = production_env(STAFF_SESSION_SECRET=PUBLISHED, PHONE_HASH_KEY="kort-nøgle")
    done = subprocess.run(
        [sys.executable, *command],
        env=env,
        cwd=PROJECT_DIR,
        input="",
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode != 0
    assert "refusing to start" in done.stderr
    for problem in (
        "STAFF_SESSION_SECRET is a published default",
        "PHONE_HASH_KEY is shorter than 32 characters",
        "WEBHOOK_SECRET is unset",
        "RASA_AUTH_TOKEN is unset",
        "DATABASE_URL is unset",
    ):
        assert problem in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "kort-nøgle" not in done.stderr  # a message, no values


def test_the_launcher_makes_local_secrets_once_that_only_the_user_can_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [*SECRET_FIELDS, "indgang_env"]:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)  # no developer's .env
    secrets_file = tmp_path / ".run" / "secrets.env"
    first = launcher_settings(secrets_file)
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    stored = dict(line.split("=", 1) for line in secrets_file.read_text().splitlines())
    for name in SECRET_FIELDS:
        assert getattr(first, name) == stored[name.upper()] and len(stored[name.upper()]) >= 32
    # One the developer wrote by hand (no newline at the end) is kept; the missing ones are added.
    handmade = tmp_path / "handmade.env"
    handmade.write_text("PHONE_HASH_KEY=" + "p" * 40)
    assert launcher_settings(handmade).phone_hash_key == "p" * 40
    assert len(handmade.read_text().splitlines()) == len(SECRET_FIELDS)
    # A restart keeps them (logins and phone hashes survive), and tightens a file made too open.
    secrets_file.chmod(0o644)
    second = launcher_settings(secrets_file)
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert [getattr(second, n) for n in SECRET_FIELDS] == [getattr(first, n) for n in SECRET_FIELDS]
    # What the operator sets wins over the local file.
    monkeypatch.setenv("WEBHOOK_SECRET", "w" * 40)
    assert launcher_settings(secrets_file).webhook_secret == "w" * 40


@pytest.fixture(scope="module")
def production_gateway(base_settings: Settings) -> Iterator[str]:
    dead = f"http://127.0.0.1:{free_port()}"
    values = {**base_settings.model_dump(), "staff_cookie_secure": None, "rasa_url": dead}
    settings = Settings(_env_file=None, **{**values, "indgang_env": "production", "action_server_url": dead})
    with serving(settings) as url:
        yield url


def test_production_sends_hsts_and_a_secure_staff_cookie(production_gateway: str, live_gateway: str) -> None:
    page = httpx.get(f"{production_gateway}/staff/login", timeout=30)
    assert page.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "; secure" in page.headers["set-cookie"].lower()
    assert "strict-transport-security" in httpx.get(f"{production_gateway}/healthz").headers
    # Development over plain http on the developer's machine: neither.
    page = httpx.get(f"{live_gateway}/staff/login", timeout=30)
    assert "strict-transport-security" not in page.headers
    assert "secure" not in page.headers["set-cookie"].lower()


def chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    """A JSON chat message of about `total` bytes, sent in chunks: no Content-Length."""
    head, tail = b'{"conversation_id": "chunked-' + os.urandom(8).hex().encode() + b'", "text": "', b'"}'
    body = head + b"x" * (total - len(head) - len(tail)) + tail
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_over_16_kib_is_a_413_and_one_under_it_goes_through(live_gateway: str) -> None:
    too_big = httpx.post(f"{live_gateway}/api/v1/chat", content=chunks(17_000), timeout=30)
    assert "content-length" not in too_big.request.headers
    assert too_big.status_code == 413 and too_big.json()["error"] == "body_too_large"
    # A small chunked message is read whole and answered (the engine is down here: 503 and a reply).
    small = httpx.post(
        f"{live_gateway}/api/v1/chat",
        content=chunks(1_000, size=100),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert small.status_code == 503 and small.json()["replies"], small.text
