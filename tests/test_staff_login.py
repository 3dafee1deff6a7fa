"""Staff login over real HTTP: growing delays per client and per account instead of a lock-out,
argon2 off the event loop, and the optional TOTP second factor (required for admins in
production), with real codes from pyotp. Clients are told apart by `X-Forwarded-For`, which the
gateway trusts from loopback as it trusts a local reverse proxy."""

from __future__ import annotations

import asyncio
import html
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pyotp
import pytest
import redis.asyncio as aioredis
from conftest import gateway_settings, serving
from test_staff_console import PASSWORD, Login, http, login  # noqa: F401 (fixtures)

from indgang.i18n import t
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.staff import audit
from indgang.staff.accounts import Role, add_account, get_account

pytestmark = pytest.mark.anyio

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """One client (its own address and cookies) using the login form."""

    def __init__(self, base_url: str, address: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30, headers={"X-Forwarded-For": address})

    async def token(self, path: str = "/staff/login") -> str:
        return CSRF.search((await self.http.get(path)).text)[1]

    async def log_in(self, username: str, password: str) -> httpx.Response:
        data = {"username": username, "password": password, "csrf_token": await self.token()}
        return await self.http.post("/staff/login", data=data)

    async def code(self, code: str) -> httpx.Response:
        data = {"code": code, "csrf_token": await self.token("/staff/login/totp")}
        return await self.http.post("/staff/login/totp", data=data)

    async def is_in(self) -> bool:
        return (await self.http.get("/staff")).status_code == 200


@pytest.fixture
async def browsers(live_gateway: str, redis: aioredis.Redis) -> AsyncIterator[dict[str, Browser]]:
    made: dict[str, Browser] = {}

    class Browsers(dict[str, Browser]):
        def __missing__(self, address: str) -> Browser:
            made[address] = self[address] = Browser(live_gateway, address)
            return made[address]

    yield Browsers()
    for browser in made.values():
        await browser.http.aclose()


async def test_an_attacker_guessing_cannot_lock_the_real_user_out(
    browsers: dict[str, Browser], redis: aioredis.Redis, records: Database
) -> None:
    await add_account(records, redis, "mette", PASSWORD, display_name="Mette")
    attacker = browsers["203.0.113.7"]
    answers = [(await attacker.log_in("mette", f"gæt-nummer-{n}")).status_code for n in range(10)]
    assert answers[:5] == [401] * 5 and 429 in answers  # slowed down after a few failures
    # The real user, from her own machine, logs in at once.
    real = browsers["198.51.100.20"]
    assert (await real.log_in("mette", PASSWORD)).status_code == 303 and await real.is_in()
    failed = [e for e in await audit.entries(records) if e.action == "login_failed"]
    assert len(failed) == answers.count(401) and failed[0].staff == "mette"
    assert failed[0].detail == "203.0.113.7"


async def test_the_delay_grows_with_each_failure_and_says_how_long(
    browsers: dict[str, Browser], redis: aioredis.Redis, records: Database
) -> None:
    await add_account(records, redis, "mette", PASSWORD, display_name="Mette")
    attacker = browsers["203.0.113.8"]
    for n in range(5):
        assert (await attacker.log_in("mette", f"forkert-{n}")).status_code == 401
    waits = []
    for n in range(3):
        refused = await attacker.log_in("mette", PASSWORD)  # even the right password waits its turn
        assert refused.status_code == 429
        assert (
            t("staff.console.login_throttled", "da", seconds=refused.headers["retry-after"]) in refused.text
        )
        waits.append(int(refused.headers["retry-after"]))
        await asyncio.sleep(waits[-1] + 0.1)
        assert (await attacker.log_in("mette", f"igen-forkert-{n}")).status_code == 401
    assert waits[0] >= 1 and waits[1] > waits[0] and waits[2] > waits[1]


async def test_a_burst_of_parallel_guesses_is_counted_before_any_is_checked(
    browsers: dict[str, Browser], redis: aioredis.Redis, records: Database
) -> None:
    await add_account(records, redis, "mette", PASSWORD, display_name="Mette")
    burst = browsers["203.0.113.10"]
    tokens = [await burst.token() for _ in range(20)]  # one cookie: the last token counts
    data = [{"username": "mette", "password": f"gæt-{n}", "csrf_token": tokens[-1]} for n in range(20)]
    answers = await asyncio.gather(*(burst.http.post("/staff/login", data=d) for d in data))
    codes = [a.status_code for a in answers]
    assert codes.count(401) == 5 and codes.count(429) == 15


async def test_spraying_one_password_over_many_usernames_is_slowed_down(
    browsers: dict[str, Browser], redis: aioredis.Redis, records: Database
) -> None:
    await add_account(records, redis, "mette", PASSWORD, display_name="Mette")
    sprayer = browsers["203.0.113.9"]
    answers = [(await sprayer.log_in(f"bruger{n}", "Sommer2026!")).status_code for n in range(30)]
    assert answers.count(401) <= 6 and answers.count(429) >= 24
    assert (await browsers["198.51.100.21"].log_in("mette", PASSWORD)).status_code == 303


async def test_many_clients_guessing_one_account_get_delays_of_at_most_a_minute(
    browsers: dict[str, Browser], redis: aioredis.Redis, records: Database
) -> None:
    await add_account(records, redis, "mette", PASSWORD, display_name="Mette")
    answers = [(await browsers[f"203.0.113.{n}"].log_in("mette", "forkert-kodeord")) for n in range(30, 60)]
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled and all(int(a.headers["retry-after"]) <= 60 for a in throttled)
    assert [a.status_code for a in answers[:20]] == [401] * 20


async def test_password_checks_run_beside_the_event_loop_not_on_it(
    browsers: dict[str, Browser],
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    logins = [browsers[f"192.0.2.{n}"] for n in range(8)]
    tokens = [await b.token() for b in logins]

    async def log_in(browser: Browser, token: str) -> int:
        data = {"username": "ukendt", "password": "noget-forkert", "csrf_token": token}
        return (await browser.http.post("/staff/login", data=data)).status_code

    async def health_latencies() -> list[float]:
        found = []
        await asyncio.sleep(0.05)  # the logins are in the gateway
        for _ in range(10):
            started = time.perf_counter()
            assert (await http.get("/healthz")).status_code == 200
            found.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
        return found

    started = time.perf_counter()
    *codes, latencies = await asyncio.gather(
        *(log_in(b, tk) for b, tk in zip(logins, tokens, strict=True)), health_latencies()
    )
    took = time.perf_counter() - started
    assert codes == [401] * 8
    print(f"8 logins: {took:.2f} s; /healthz meanwhile: max {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < 0.5


# --- the second factor ------------------------------------------------------------------------


def not_a_code(secret: str) -> str:
    """A code that is none of those accepted now (the steps before, now and after)."""
    accepted = {pyotp.TOTP(secret).at(time.time() + drift) for drift in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in accepted)


async def enrol(client: httpx.AsyncClient) -> str:
    """Enrol TOTP from the console as a logged-in staff member; the secret."""
    page = await client.get("/staff/totp")
    assert page.status_code == 200 and "<svg" in page.text  # the QR code, inline
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text)[1].replace(" ", "")
    link = html.unescape(re.search(r'href="(otpauth://[^"]+)"', page.text)[1])  # opens the app on a phone
    assert link == pyotp.TOTP(secret).provisioning_uri(name="mette", issuer_name="Indgang")
    token = CSRF.search(page.text)[1]
    wrong = await client.post("/staff/totp", data={"csrf_token": token, "code": not_a_code(secret)})
    assert wrong.status_code == 400 and t("staff.console.totp_wrong", "da") in wrong.text
    done = await client.post("/staff/totp", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 303
    return secret


async def test_with_totp_enrolled_a_login_needs_the_code(
    login: Login,  # noqa: F811
    browsers: dict[str, Browser],
    records: Database,
) -> None:
    client = await login("mette")
    assert "/staff/totp" in (await client.get("/staff/account")).text
    secret = await enrol(client)
    assert (await get_account(records, "mette")).has_totp
    assert ("mette", "totp_enrolled") in {(e.staff, e.action) for e in await audit.entries(records)}
    assert t("staff.console.totp_on", "da") in (await client.get("/staff/account")).text

    browser = browsers["198.51.100.30"]
    first = await browser.log_in("mette", PASSWORD)
    assert first.status_code == 303 and first.headers["location"] == "/staff/login/totp"
    assert not await browser.is_in()  # the password alone is not a login
    assert (await browser.http.get("/api/v1/staff/conversations")).status_code == 401
    assert (await browser.code("123")).status_code == 422
    wrong = await browser.code(not_a_code(secret))
    assert wrong.status_code == 401 and t("staff.console.totp_wrong", "da") in wrong.text
    # Enrolment used this time step's code; the next step's is accepted too (clocks drift).
    code = pyotp.TOTP(secret).at(time.time() + 30)
    right = await browser.code(code)
    assert right.status_code == 303 and right.headers["location"] == "/staff"
    assert await browser.is_in()

    # The same code does not open a second session (a code seen over a shoulder is spent).
    again = browsers["198.51.100.31"]
    assert (await again.log_in("mette", PASSWORD)).headers["location"] == "/staff/login/totp"
    assert (await again.code(code)).status_code == 401
    assert not await again.is_in()


async def test_guessing_the_code_is_slowed_down_too(
    login: Login,  # noqa: F811
    browsers: dict[str, Browser],
) -> None:
    secret = await enrol(await login("mette"))
    guesser = browsers["203.0.113.40"]
    assert (await guesser.log_in("mette", PASSWORD)).status_code == 303
    accepted = {pyotp.TOTP(secret).at(time.time() + drift) for drift in (-30, 0, 30)}
    guesses = [f"{n:06d}" for n in range(20) if f"{n:06d}" not in accepted][:8]
    answers = [(await guesser.code(g)).status_code for g in guesses]
    assert answers[0] == 401 and 429 in answers


@pytest.fixture(scope="module")
def production_gateway(base_settings: Settings) -> Iterator[str]:
    settings = gateway_settings(base_settings).model_copy(
        update={
            "indgang_env": "production",
            "staff_session_secret": secrets.token_urlsafe(48),
            "webhook_secret": secrets.token_urlsafe(48),
            "phone_hash_key": secrets.token_urlsafe(48),
        }
    )
    with serving(settings) as url:
        yield url


async def test_in_production_an_admin_must_enrol_totp_before_getting_in(
    production_gateway: str, redis: aioredis.Redis, records: Database
) -> None:
    await add_account(records, redis, "anne", PASSWORD, Role.ADMIN, display_name="Anne")
    await add_account(records, redis, "mette", PASSWORD, display_name="Mette")
    staff = Browser(production_gateway, "198.51.100.50")
    admin = Browser(production_gateway, "198.51.100.51")
    try:
        assert (await staff.log_in("mette", PASSWORD)).headers["location"] == "/staff"  # optional for staff

        first = await admin.log_in("anne", PASSWORD)
        assert first.status_code == 303 and first.headers["location"] == "/staff/totp"
        assert not await admin.is_in()
        assert (await admin.http.get("/staff/audit")).status_code == 303
        page = await admin.http.get("/staff/totp")
        assert t("staff.console.totp_required", "da") in page.text
        secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text)[1].replace(" ", "")
        done = await admin.http.post(
            "/staff/totp", data={"csrf_token": CSRF.search(page.text)[1], "code": pyotp.TOTP(secret).now()}
        )
        assert done.status_code == 303 and done.headers["location"] == "/staff"
        assert await admin.is_in() and (await admin.http.get("/staff/audit")).status_code == 200
    finally:
        await staff.http.aclose()
        await admin.http.aclose()
