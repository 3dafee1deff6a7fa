"""Staff login sessions and CSRF protection for the console and the staff API.

The cookie is Starlette's signed cookie (itsdangerous). It carries a random session id, the CSRF
token and the language; the login itself lives in Redis (indgang/staff/sessions.py), so ending
it there (logout, a password change, a disabled account) makes every copy of the cookie worth
nothing. Every POST must carry the CSRF token, as the form field `csrf_token` or the header
`X-CSRF-Token`.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request
from starlette.middleware.sessions import SessionMiddleware

from indgang.settings import Settings
from indgang.staff import sessions
from indgang.staff.accounts import StaffMember, get_account
from indgang.staff.sessions import StaffSession, Stage
from webhook.deps import DbDep, RedisDep

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_COOKIE = "indgang_staff"
_SESSION_ID = "sid"


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form, the API answers 401."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("log in as staff first")
        self.expired = expired  # there was a login, but it has ended: the form says so


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


def client_address(request: Request) -> str:
    """Who is knocking, for login throttling: the peer, or the address a trusted proxy gives
    (uvicorn's proxy headers, by default trusted from loopback only)."""
    return request.client.host if request.client else "unknown"


def log_in(request: Request, session: StaffSession) -> None:
    """Point the cookie at the new session, with a fresh CSRF token (one seen before is worth nothing)."""
    lang = request.session.get("lang")
    request.session.clear()
    request.session[_SESSION_ID] = session.id
    if lang:
        request.session["lang"] = lang
    csrf_token(request)


def log_out(request: Request) -> None:
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang


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


async def any_session(request: Request, redis: RedisDep) -> StaffSession:
    """The cookie's session at any stage of the login (a code or an enrolment may be awaited)."""
    session_id = request.session.get(_SESSION_ID)
    if not session_id:
        raise LoginRequired
    session = await sessions.get(redis, session_id)
    if session is None:  # it ended: logged out, expired, or ended by a password change or an admin
        log_out(request)
        raise LoginRequired(expired=True)
    await check_csrf(request)
    return session


AnySessionDep = Annotated[StaffSession, Depends(any_session)]


async def current_session(session: AnySessionDep) -> StaffSession:
    if session.stage != Stage.FULL:
        raise LoginRequired
    return session


SessionDep = Annotated[StaffSession, Depends(current_session)]


async def current_member(db: DbDep, session: SessionDep) -> StaffMember:
    """Whoever is logged in, in any role (their own account page)."""
    member = await get_account(db, session.username)
    if member is None or member.disabled:  # ended since (its sessions end with it; this is a guard)
        raise LoginRequired
    return member


MemberDep = Annotated[StaffMember, Depends(current_member)]


async def current_staff(member: MemberDep) -> StaffMember:
    """Caseworkers and admins: the inbox and conversations (an editor reads no citizen's words)."""
    if not member.reads_conversations:
        raise Forbidden("this needs the staff or admin role", "forbidden_conversations")
    return member


async def current_admin(member: MemberDep) -> StaffMember:
    if not member.is_admin:
        raise Forbidden("this needs the admin role", "forbidden")
    return member


async def current_editor(member: MemberDep) -> StaffMember:
    if not member.edits_catalogue:
        raise Forbidden("this needs the editor or admin role", "forbidden_catalogue")
    return member


StaffDep = Annotated[StaffMember, Depends(current_staff)]
AdminDep = Annotated[StaffMember, Depends(current_admin)]
EditorDep = Annotated[StaffMember, Depends(current_editor)]
