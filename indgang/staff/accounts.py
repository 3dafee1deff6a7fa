"""Staff accounts: a username, a role and an argon2 password hash in Redis, and optionally a
TOTP secret (the second factor).

Accounts are made, changed, disabled and removed with `indgang staff ...`; in the console a
staff member changes their own password and enrols TOTP. Changing, disabling or removing an
account ends its sessions. argon2 runs in a worker thread: a check takes a good part of a
second of CPU, and the event loop must go on answering chats meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis
from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from indgang import keys
from indgang.staff import sessions, totp

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# Verified against when the username is unknown, so a wrong name takes as long as a wrong password.
_UNKNOWN_USER_HASH = _hasher.hash("no such user: any password is wrong")

# KEYS[1] the account. ARGV: the code's time step. Each step's code opens one login only.
_USE_TOTP_STEP = """
if tonumber(redis.call('HGET', KEYS[1], 'totp_last_step') or '-1') >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'totp_last_step', ARGV[1])
return 1
"""


class Role(StrEnum):
    STAFF = "staff"
    ADMIN = "admin"


class AccountError(ValueError):
    """A username or password the console cannot accept (the message says why)."""


@dataclass(frozen=True)
class StaffMember:
    username: str
    role: Role
    display_name: str
    has_totp: bool = False
    disabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def _normal(username: str) -> str:
    return username.strip().lower()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


async def _hash(password: str) -> str:
    return await to_thread.run_sync(_hasher.hash, password)


def _matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def add_account(
    redis: aioredis.Redis,
    username: str,
    password: str,
    role: Role = Role.STAFF,
    display_name: str | None = None,
    replace: bool = False,
) -> StaffMember:
    """Make an account, or with `replace` change one (which ends its sessions)."""
    username = _normal(username)
    if not USERNAME.match(username):
        raise AccountError("a username is 2-40 characters: a-z, 0-9, dot, dash or underscore")
    check_password(password)
    # Every role can reply to citizens, who see this name: it is chosen, never the login name.
    display_name = (display_name or "").strip()
    if not display_name:
        raise AccountError("a display name is needed (--name): citizens see it on every reply")
    key = keys.staff_account(username)
    if not replace and await redis.exists(key):
        raise AccountError(f"the account {username!r} exists already (use --replace to change it)")
    member = StaffMember(username=username, role=Role(role), display_name=display_name)
    await redis.hset(
        key,
        mapping={
            "password_hash": await _hash(password),
            "role": member.role.value,
            "display_name": member.display_name,
        },
    )
    await sessions.end_all(redis, username)
    return member


async def get_account(redis: aioredis.Redis, username: str) -> StaffMember | None:
    """The account, disabled or not (None when there is none)."""
    data = await redis.hgetall(keys.staff_account(_normal(username)))
    if not data:
        return None
    return StaffMember(
        username=_normal(username),
        role=Role(data["role"]),
        display_name=data["display_name"],
        has_totp=bool(data.get("totp_secret")),
        disabled=data.get("disabled") == "1",
    )


async def authenticate(redis: aioredis.Redis, username: str, password: str) -> StaffMember | None:
    """The account when the password is right and the account is not disabled, else None."""
    key = keys.staff_account(_normal(username))
    stored = await redis.hget(key, "password_hash")
    if not await to_thread.run_sync(_matches, stored or _UNKNOWN_USER_HASH, password) or stored is None:
        return None
    if _hasher.check_needs_rehash(stored):  # parameters raised since the hash was made
        await redis.hset(key, "password_hash", await _hash(password))
    member = await get_account(redis, username)
    return None if member is None or member.disabled else member


async def set_password(redis: aioredis.Redis, username: str, password: str) -> None:
    """A new password; the caller ends the account's other sessions."""
    check_password(password)
    await redis.hset(keys.staff_account(_normal(username)), "password_hash", await _hash(password))


async def _existing(redis: aioredis.Redis, username: str) -> str:
    key = keys.staff_account(_normal(username))
    if not await redis.exists(key):
        raise AccountError(f"there is no account {_normal(username)!r}")
    return key


async def set_disabled(redis: aioredis.Redis, username: str, disabled: bool) -> int:
    """Disable (or enable again) an account; disabling ends its sessions. How many it ended."""
    key = await _existing(redis, username)
    if not disabled:
        await redis.hdel(key, "disabled")
        return 0
    await redis.hset(key, "disabled", "1")
    return await sessions.end_all(redis, _normal(username))


async def remove_account(redis: aioredis.Redis, username: str) -> int:
    """Remove the account and end its sessions; how many it ended."""
    await redis.delete(await _existing(redis, username))
    return await sessions.end_all(redis, _normal(username))


async def enrol_totp(redis: aioredis.Redis, username: str, secret: str, used_step: int) -> None:
    """Turn the second factor on with the secret just confirmed by the code of `used_step`."""
    await redis.hset(
        await _existing(redis, username), mapping={"totp_secret": secret, "totp_last_step": used_step}
    )


async def reset_totp(redis: aioredis.Redis, username: str) -> int:
    """Turn the second factor off (a lost phone) and end the account's sessions."""
    await redis.hdel(await _existing(redis, username), "totp_secret", "totp_last_step")
    return await sessions.end_all(redis, _normal(username))


async def use_totp_code(redis: aioredis.Redis, username: str, code: str) -> bool:
    """True when `code` is the account's current code and has not been used before."""
    key = keys.staff_account(_normal(username))
    secret = await redis.hget(key, "totp_secret")
    step = totp.matching_step(secret, code) if secret else None
    if step is None:
        return False
    return bool(await redis.register_script(_USE_TOTP_STEP)(keys=[key], args=[step]))
