"""The steps of a staff login, and what ends one: the password (throttled per client and per
account), the TOTP code when the account has one, TOTP enrolment (which admins in production
must do before they get in), logout and a password change. Each step is written to the audit
log; a refused try names the client's address there."""

from __future__ import annotations

import redis.asyncio as aioredis

from indgang import keys
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.staff import audit, sessions, throttle, totp
from indgang.staff.accounts import (
    MIN_PASSWORD_LENGTH,
    StaffMember,
    authenticate,
    enrol_totp,
    set_password,
    use_totp_code,
)
from indgang.staff.sessions import StaffSession, Stage

_PENDING_SECRET = "totp_pending"  # the secret being enrolled, kept with the session until confirmed


class LoginRefused(Exception):
    """A wrong password or code; `text_key` names what the staff member is told (staff.yaml)."""

    def __init__(self, text_key: str) -> None:
        super().__init__(text_key)
        self.text_key = text_key


class Throttled(Exception):
    """Too many failed tries lately: wait `seconds` before the next one."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"wait {seconds} s")
        self.seconds = seconds


def _first_stage(member: StaffMember, settings: Settings) -> Stage:
    if member.has_totp:
        return Stage.SECOND_FACTOR
    if member.is_admin and settings.production:
        return Stage.ENROL
    return Stage.FULL


async def _attempt(redis: aioredis.Redis, client: str, username: str) -> None:
    wait = await throttle.attempt(redis, client, username)
    if wait is not None:
        raise Throttled(wait)


async def _full(db: Database, redis: aioredis.Redis, settings: Settings, username: str) -> StaffSession:
    session = await sessions.start(redis, username, Stage.FULL, settings.staff_session_seconds)
    await audit.record(db, username, "login")
    return session


async def with_password(
    db: Database, redis: aioredis.Redis, settings: Settings, client: str, username: str, password: str
) -> StaffSession:
    """The first step: a full session, or one that waits for the second factor or its enrolment."""
    await _attempt(redis, client, username)
    member = await authenticate(db, username, password)
    if member is None:
        await audit.record(db, username.strip().lower(), "login_failed", detail=client)
        raise LoginRefused("login_failed")
    await throttle.succeeded(redis, client, username)
    stage = _first_stage(member, settings)
    if stage == Stage.FULL:
        return await _full(db, redis, settings, member.username)
    return await sessions.start(redis, member.username, stage, keys.STAFF_LOGIN_STEP_SECONDS)


async def with_code(
    db: Database, redis: aioredis.Redis, settings: Settings, client: str, session: StaffSession, code: str
) -> StaffSession:
    """The second step: the TOTP code turns the waiting session into a new, full one."""
    await _attempt(redis, client, session.username)
    if session.stage != Stage.SECOND_FACTOR or not await use_totp_code(db, session.username, code):
        await audit.record(db, session.username, "login_failed", detail=f"{client} (code)")
        raise LoginRefused("totp_wrong")
    await throttle.succeeded(redis, client, session.username)
    await sessions.end(redis, session)  # a new id once logged in in full
    return await _full(db, redis, settings, session.username)


async def enrolment_secret(redis: aioredis.Redis, session: StaffSession) -> str:
    """The secret to show while enrolling: the same one until it is confirmed or the session ends."""
    secret = await sessions.recall(redis, session, _PENDING_SECRET)
    if not secret:
        secret = totp.new_secret()
        await sessions.remember(redis, session, _PENDING_SECRET, secret)
    return secret


async def confirm_enrolment(
    db: Database, redis: aioredis.Redis, settings: Settings, session: StaffSession, code: str
) -> StaffSession:
    """The first code from the app turns TOTP on. A login that waited for this becomes full."""
    secret = await sessions.recall(redis, session, _PENDING_SECRET)
    step = totp.matching_step(secret, code) if secret else None
    if step is None:
        raise LoginRefused("totp_wrong")
    await enrol_totp(db, session.username, secret, step)
    await audit.record(db, session.username, "totp_enrolled")
    if session.stage == Stage.ENROL:
        await sessions.end(redis, session)
        return await _full(db, redis, settings, session.username)
    await sessions.remember(redis, session, _PENDING_SECRET, "")
    return session


async def log_out(db: Database, redis: aioredis.Redis, session: StaffSession) -> None:
    await sessions.end(redis, session)
    await audit.record(db, session.username, "logout")


async def change_password(
    db: Database, redis: aioredis.Redis, client: str, session: StaffSession, current: str, new: str
) -> None:
    """A new password after the current one; every other session of the account ends. The one
    that made the change goes on: whoever changed it just proved they know the password."""
    if len(new) < MIN_PASSWORD_LENGTH:
        raise LoginRefused("password_short")
    await _attempt(redis, client, session.username)
    if await authenticate(db, session.username, current) is None:
        await audit.record(db, session.username, "password_change_failed", detail=client)
        raise LoginRefused("password_wrong")
    await throttle.succeeded(redis, client, session.username)
    await set_password(db, session.username, new)
    ended = await sessions.end_all(redis, session.username, keep=session)
    await audit.record(db, session.username, "password_changed", detail=f"{ended} other sessions ended")
