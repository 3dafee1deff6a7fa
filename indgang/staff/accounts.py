"""Staff accounts: a username, a role and an argon2 password hash, and optionally a TOTP secret
(the second factor), in the SQL database of durable records; their sessions stay in Redis.

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
from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from indgang.records.db import Database
from indgang.records.models import StaffAccount
from indgang.staff import sessions, totp

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# Verified against when the username is unknown, so a wrong name takes as long as a wrong password.
_UNKNOWN_USER_HASH = _hasher.hash("no such user: any password is wrong")


class Role(StrEnum):
    STAFF = "staff"  # a caseworker: the inbox and conversations
    ADMIN = "admin"
    # Keeps the offer catalogue current: no conversations (citizens' words are not theirs to
    # read) and no admin pages.
    EDITOR = "editor"


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

    @property
    def reads_conversations(self) -> bool:
        return self.role in (Role.STAFF, Role.ADMIN)

    @property
    def edits_catalogue(self) -> bool:
        return self.role in (Role.EDITOR, Role.ADMIN)


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
    db: Database,
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
    member = StaffMember(username=username, role=Role(role), display_name=display_name)
    password_hash = await _hash(password)
    exists = AccountError(f"the account {username!r} exists already (use --replace to change it)")
    try:
        async with db.transaction() as session:
            account = await session.get(StaffAccount, username, with_for_update=True)
            if account is None:
                session.add(
                    StaffAccount(
                        username=username,
                        password_hash=password_hash,
                        role=member.role.value,
                        display_name=display_name,
                        disabled=False,
                    )
                )
            elif not replace:
                raise exists
            else:  # as before: a changed account keeps its second factor and its disabled mark
                account.password_hash = password_hash
                account.role = member.role.value
                account.display_name = display_name
    except IntegrityError as error:  # made by someone else meanwhile
        raise exists from error
    await sessions.end_all(redis, username)
    return member


def _member(account: StaffAccount) -> StaffMember:
    return StaffMember(
        username=account.username,
        role=Role(account.role),
        display_name=account.display_name,
        has_totp=bool(account.totp_secret),
        disabled=account.disabled,
    )


async def get_account(db: Database, username: str) -> StaffMember | None:
    """The account, disabled or not (None when there is none)."""
    async with db.transaction() as session:
        account = await session.get(StaffAccount, _normal(username))
        return _member(account) if account is not None else None


async def authenticate(db: Database, username: str, password: str) -> StaffMember | None:
    """The account when the password is right and the account is not disabled, else None."""
    async with db.transaction() as session:
        account = await session.get(StaffAccount, _normal(username))
    stored = account.password_hash if account is not None else None
    if not await to_thread.run_sync(_matches, stored or _UNKNOWN_USER_HASH, password) or account is None:
        return None
    if _hasher.check_needs_rehash(account.password_hash):  # parameters raised since the hash was made
        await _set_hash(db, account.username, await _hash(password))
    return None if account.disabled else _member(account)


async def _set_hash(db: Database, username: str, password_hash: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(StaffAccount).where(StaffAccount.username == username).values(password_hash=password_hash)
        )


async def set_password(db: Database, username: str, password: str) -> None:
    """A new password; the caller ends the account's other sessions."""
    check_password(password)
    await _set_hash(db, _normal(username), await _hash(password))


async def _change(db: Database, username: str, **values: object) -> str:
    """Set `values` on the account; AccountError when there is none. Its normal username."""
    username = _normal(username)
    async with db.transaction() as session:
        changed = await session.execute(
            update(StaffAccount).where(StaffAccount.username == username).values(**values)
        )
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        raise AccountError(f"there is no account {username!r}")
    return username


async def set_disabled(db: Database, redis: aioredis.Redis, username: str, disabled: bool) -> int:
    """Disable (or enable again) an account; disabling ends its sessions. How many it ended."""
    username = await _change(db, username, disabled=disabled)
    return await sessions.end_all(redis, username) if disabled else 0


async def remove_account(db: Database, redis: aioredis.Redis, username: str) -> int:
    """Remove the account and end its sessions; how many it ended."""
    username = _normal(username)
    async with db.transaction() as session:
        removed = await session.execute(delete(StaffAccount).where(StaffAccount.username == username))
    if removed.rowcount == 0:  # type: ignore[attr-defined]
        raise AccountError(f"there is no account {username!r}")
    return await sessions.end_all(redis, username)


async def enrol_totp(db: Database, username: str, secret: str, used_step: int) -> None:
    """Turn the second factor on with the secret just confirmed by the code of `used_step`."""
    await _change(db, username, totp_secret=secret, totp_last_step=used_step)


async def reset_totp(db: Database, redis: aioredis.Redis, username: str) -> int:
    """Turn the second factor off (a lost phone) and end the account's sessions."""
    username = await _change(db, username, totp_secret=None, totp_last_step=None)
    return await sessions.end_all(redis, username)


async def use_totp_code(db: Database, username: str, code: str) -> bool:
    """True when `code` is the account's current code and has not been used before."""
    username = _normal(username)
    async with db.transaction() as session:
        account = await session.get(StaffAccount, username)
    secret = account.totp_secret if account is not None else None
    step = totp.matching_step(secret, code) if secret else None
    if step is None:
        return False
    # One conditional update: of two logins racing with the same code, one wins.
    async with db.transaction() as session:
        used = await session.execute(
            update(StaffAccount)
            .where(
                StaffAccount.username == username,
                StaffAccount.totp_secret == secret,
                or_(StaffAccount.totp_last_step.is_(None), StaffAccount.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
    return used.rowcount == 1  # type: ignore[attr-defined]
