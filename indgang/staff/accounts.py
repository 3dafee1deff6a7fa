"""Staff accounts: a username, a role and an argon2 password hash in Redis.

Accounts are made with `indgang staff add`; the console only reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from indgang import keys

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# Verified against when the username is unknown, so a wrong name takes as long as a wrong password.
_UNKNOWN_USER_HASH = _hasher.hash("no such user: any password is wrong")


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

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


async def add_account(
    redis: aioredis.Redis,
    username: str,
    password: str,
    role: Role = Role.STAFF,
    display_name: str | None = None,
    replace: bool = False,
) -> StaffMember:
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise AccountError("a username is 2-40 characters: a-z, 0-9, dot, dash or underscore")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
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
            "password_hash": _hasher.hash(password),
            "role": member.role.value,
            "display_name": member.display_name,
        },
    )
    return member


async def get_account(redis: aioredis.Redis, username: str) -> StaffMember | None:
    data = await redis.hgetall(keys.staff_account(username.strip().lower()))
    if not data:
        return None
    return StaffMember(
        username=username.strip().lower(), role=Role(data["role"]), display_name=data["display_name"]
    )


async def authenticate(redis: aioredis.Redis, username: str, password: str) -> StaffMember | None:
    """The account when the password is right, else None."""
    key = keys.staff_account(username.strip().lower())
    stored = await redis.hget(key, "password_hash")
    try:
        _hasher.verify(stored or _UNKNOWN_USER_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if stored is None:
        return None
    if _hasher.check_needs_rehash(stored):  # parameters raised since the hash was made
        await redis.hset(key, "password_hash", _hasher.hash(password))
    return await get_account(redis, username)
