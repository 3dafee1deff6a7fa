"""Staff login sessions and CSRF protection for the console and the staff API.

The session is Starlette's signed cookie (itsdangerous): the username, when the login happened
and a CSRF token. It expires after STAFF_SESSION_SECONDS. Every POST must carry the token, as
the form field `csrf_token` or the header `X-CSRF-Token`.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Annotated

from fastapi import Depends, Request
from starlette.middleware.sessions import SessionMiddleware

from indgang.settings import Settings
from indgang.staff.accounts import StaffMember, get_account
from webhook.deps import RedisDep, SettingsDep

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_COOKIE = "indgang_staff"


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, the API answers 401."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("log in as staff first")
        self.expired = expired  # there was a login, but it is too old: the form says so


class Forbidden(Exception):
    """Logged in, but the role does not allow it (403), or the CSRF token is missing or wrong."""

    def __init__(self, detail: str, text_key: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.text_key = text_key  # what a page shows, from staff.yaml


def session_middleware(settings: Settings) -> tuple[type[SessionMiddleware], dict[str, object]]:
    """The middleware and its options, for `app.add_middleware(cls, **options)`."""
    return SessionMiddleware, {
        "secret_key": settings.staff_session_secret,
        "session_cookie": SESSION_COOKIE,
        "max_age": settings.staff_session_seconds,
        "same_site": "strict",
        "https_only": settings.staff_cookie_secure,
    }


def csrf_token(request: Request) -> str:
    """The session's token, made on first use (the login form needs one before any login)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def log_in(request: Request, member: StaffMember) -> None:
    """A fresh session (and token) at login, so a token seen before login is worth nothing."""
    request.session.clear()
    request.session.update({"user": member.username, "at": int(time.time())})
    csrf_token(request)


def log_out(request: Request) -> None:
    request.session.clear()


async def check_csrf(request: Request) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = request.session.get("csrf") or ""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get(CSRF_FIELD) or "")
    if not expected or not hmac.compare_digest(expected, sent or ""):
        raise Forbidden("missing or wrong CSRF token", "csrf_failed")


def session_ends_at(request: Request, settings: Settings) -> float:
    """When the login in this session stops counting (epoch seconds; 0 without a login)."""
    logged_in_at = int(request.session.get("at") or 0)
    return logged_in_at + settings.staff_session_seconds if logged_in_at else 0.0


async def current_staff(request: Request, redis: RedisDep, settings: SettingsDep) -> StaffMember:
    username = request.session.get("user")
    if not username:
        raise LoginRequired
    if time.time() >= session_ends_at(request, settings):
        log_out(request)
        raise LoginRequired(expired=True)
    member = await get_account(redis, username)
    if member is None:  # the account was removed since the login
        log_out(request)
        raise LoginRequired
    await check_csrf(request)
    return member


async def current_admin(member: Annotated[StaffMember, Depends(current_staff)]) -> StaffMember:
    if not member.is_admin:
        raise Forbidden("this needs the admin role", "forbidden")
    return member


StaffDep = Annotated[StaffMember, Depends(current_staff)]
AdminDep = Annotated[StaffMember, Depends(current_admin)]
