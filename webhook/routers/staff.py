"""The staff console's pages (`/staff`): login, the live inbox, a conversation with its buttons,
and for admins the audit log, the outbound events that failed and the insight page (counts).

Buttons are plain HTML forms (they work without JavaScript); a little script keeps the inbox
and the open conversation live over Server-Sent Events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sse_starlette import EventSourceResponse, ServerSentEvent

from indgang import transcript
from indgang.erasure import erase_conversation
from indgang.handoff import HandoffError, HeldByOther
from indgang.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from indgang.insight import MAX_RANGE_DAYS, default_range, figures
from indgang.live import TranscriptFeed
from indgang.ratelimit import Kind
from indgang.staff import audit, sessions, totp
from indgang.staff import login as staff_login
from indgang.staff.accounts import StaffMember, get_account
from indgang.staff.console import MAX_REASON_CHARS, MAX_TEXT_CHARS, NotAllowed, canned_replies
from indgang.staff.inbox import inbox
from indgang.webhooks import dead_letters, retry_dead_letter
from webhook.deps import (
    ClientDep,
    ClientLimit,
    ConsoleDep,
    DbDep,
    FeedDep,
    InsightDep,
    RedisDep,
    SettingsDep,
)
from webhook.insight_view import as_csv, shown_tables
from webhook.insight_view import text as insight_text
from webhook.live import CHECK_SECONDS, RETRY_MS, live_stream
from webhook.routers.pages import PAGE_HEADERS
from webhook.schemas import ConversationPath
from webhook.staff_session import (
    CSRF_FIELD,
    AdminDep,
    AnySessionDep,
    LoginRequired,
    MemberDep,
    SessionDep,
    StaffDep,
    check_csrf,
    client_address,
    csrf_token,
    log_in,
    log_out,
)
from webhook.templating import templates

router = APIRouter(prefix="/staff", include_in_schema=False)

INBOX_POLL_SECONDS = 1.0
TOTP_CODE = r"^[0-9]{6}$"
ACTIONS = ("takeover", "reply", "note", "release", "close")
# Unlike the citizen chat, no other site may frame the console (clickjacking its buttons), and
# pages with citizens' special-category data are never stored in a browser cache.
STAFF_PAGE_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _language(request: Request) -> str:
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        request.session["lang"] = chosen
    return request.session.get("lang") or DEFAULT_LANGUAGE


def _texts(lang: str) -> Any:
    """`t` in the templates: the console's texts in the staff member's language."""
    return lambda key, **values: t(f"staff.console.{key}", lang, **values)


def _page(
    request: Request, template: str, member: StaffMember | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    lang = _language(request)
    return templates.TemplateResponse(
        request,
        f"staff/{template}",
        {
            "lang": lang,
            "t": _texts(lang),
            "member": member,
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
            **context,
        },
        status_code=status_code,
        headers=STAFF_PAGE_HEADERS,
    )


def _back(conversation_id: str, notice: str | None = None) -> RedirectResponse:
    url = f"/staff/conversations/{conversation_id}" + (f"?notice={notice}" if notice else "")
    return RedirectResponse(url, status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, expired: bool = False) -> HTMLResponse:
    return _page(request, "login.html", None, error="session_expired" if expired else None)


def _throttled(request: Request, template: str, member: StaffMember | None, wait: int) -> HTMLResponse:
    page = _page(request, template, member, status_code=429, error="login_throttled", wait=wait)
    page.headers["Retry-After"] = str(wait)
    return page


_AFTER_STAGE = {
    sessions.Stage.FULL: "/staff",
    sessions.Stage.SECOND_FACTOR: "/staff/login/totp",
    sessions.Stage.ENROL: "/staff/totp",
}


@router.post("/login", response_model=None)
async def login(
    request: Request,
    redis: RedisDep,
    db: DbDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=200)],
) -> Response:
    await check_csrf(request)
    try:
        session = await staff_login.with_password(
            db, redis, settings, client_address(request), username, password
        )
    except staff_login.Throttled as refused:
        return _throttled(request, "login.html", None, refused.seconds)
    except staff_login.LoginRefused as refused:
        return _page(request, "login.html", None, status_code=401, error=refused.text_key)
    log_in(request, session)
    return RedirectResponse(_AFTER_STAGE[session.stage], status_code=303)


@router.get("/login/totp", response_class=HTMLResponse)
async def login_code_form(request: Request, session: AnySessionDep) -> HTMLResponse:
    return _page(request, "login_totp.html", None)


@router.post("/login/totp", response_model=None)
async def login_code(
    request: Request,
    session: AnySessionDep,
    redis: RedisDep,
    db: DbDep,
    settings: SettingsDep,
    code: Annotated[str, Form(pattern=TOTP_CODE)],
) -> Response:
    try:
        full = await staff_login.with_code(db, redis, settings, client_address(request), session, code)
    except staff_login.Throttled as refused:
        return _throttled(request, "login_totp.html", None, refused.seconds)
    except staff_login.LoginRefused as refused:
        return _page(request, "login_totp.html", None, status_code=401, error=refused.text_key)
    log_in(request, full)
    return RedirectResponse("/staff", status_code=303)


@router.post("/logout")
async def logout(request: Request, session: SessionDep, redis: RedisDep, db: DbDep) -> RedirectResponse:
    await staff_login.log_out(db, redis, session)
    log_out(request)
    return RedirectResponse("/staff/login", status_code=303)


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, member: MemberDep, notice: str | None = None) -> HTMLResponse:
    return _page(request, "account.html", member, notice=notice if notice == "password_changed" else None)


@router.post("/password", response_model=None)
async def change_password(
    request: Request,
    member: MemberDep,
    session: SessionDep,
    redis: RedisDep,
    db: DbDep,
    current: Annotated[str, Form(max_length=200)],
    new: Annotated[str, Form(max_length=200)],
    repeat: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Every other session of the account ends; this one goes on (login.change_password says why)."""
    try:
        if new != repeat:
            raise staff_login.LoginRefused("password_mismatch")
        await staff_login.change_password(db, redis, client_address(request), session, current, new)
    except staff_login.Throttled as refused:
        return _throttled(request, "account.html", member, refused.seconds)
    except staff_login.LoginRefused as refused:
        return _page(request, "account.html", member, status_code=400, error=refused.text_key)
    return RedirectResponse("/staff/account?notice=password_changed", status_code=303)


async def _enrolling(session: AnySessionDep, db: DbDep) -> tuple[sessions.StaffSession, StaffMember | None]:
    """TOTP is enrolled from a full session, or from a login that must enrol before it counts."""
    if session.stage == sessions.Stage.SECOND_FACTOR:
        raise LoginRequired
    member = await get_account(db, session.username) if session.is_full else None
    return session, member


EnrollingDep = Annotated[tuple[sessions.StaffSession, StaffMember | None], Depends(_enrolling)]


def _enrolment_page(
    request: Request,
    session: sessions.StaffSession,
    member: StaffMember | None,
    secret: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    uri = totp.provisioning_uri(secret, session.username)
    return _page(
        request,
        "totp.html",
        member,
        status_code=status_code,
        # segno's SVG holds only the QR's path data, drawn from our own otpauth URI
        qr=Markup(totp.qr_svg(uri)),  # nosec B704
        secret=totp.spaced(secret),
        uri=uri,
        **context,
    )


@router.get("/totp", response_class=HTMLResponse)
async def totp_page(request: Request, enrolling: EnrollingDep, redis: RedisDep) -> HTMLResponse:
    session, member = enrolling
    if member is not None and member.has_totp:
        return _page(request, "totp.html", member, enrolled=True)
    secret = await staff_login.enrolment_secret(redis, session)
    return _enrolment_page(request, session, member, secret, required=member is None)


@router.post("/totp", response_model=None)
async def totp_confirm(
    request: Request,
    enrolling: EnrollingDep,
    redis: RedisDep,
    db: DbDep,
    settings: SettingsDep,
    code: Annotated[str, Form(pattern=TOTP_CODE)],
) -> Response:
    session, member = enrolling
    try:
        confirmed = await staff_login.confirm_enrolment(db, redis, settings, session, code)
    except staff_login.LoginRefused as refused:
        secret = await staff_login.enrolment_secret(redis, session)
        return _enrolment_page(
            request, session, member, secret, status_code=400, error=refused.text_key, required=member is None
        )
    if confirmed.id != session.id:  # the login that waited for this is now a full one
        log_in(request, confirmed)
        return RedirectResponse("/staff", status_code=303)
    return RedirectResponse("/staff/account", status_code=303)


@router.get("", response_class=HTMLResponse, response_model=None)
async def inbox_page(
    request: Request, member: MemberDep, redis: RedisDep, db: DbDep, notice: str | None = None
) -> Response:
    if not member.reads_conversations:
        return RedirectResponse("/staff/catalogue", status_code=303)  # an editor's start page
    await audit.record(db, member.username, "inbox", detail="page")  # it shows what citizens wrote
    shown = notice if notice == "erased" else None  # the only notice that leads here
    return _page(request, "inbox.html", member, inbox=await inbox(redis, member.username), notice=shown)


async def _follow_inbox(
    request: Request, redis: aioredis.Redis, member: StaffMember, session: sessions.StaffSession
) -> AsyncIterator[Any]:
    lang = _language(request)
    shown = request.query_params.get("version")
    template = templates.get_template("staff/_inbox_lists.html")
    # Until the session ends (expired, logged out, ended by an admin): then the browser
    # reconnects, and is refused until it logs in.
    while await sessions.alive(redis, session.id):
        current = await inbox(redis, member.username)
        if current.version != shown:
            shown = current.version
            html = template.render(inbox=current, t=_texts(lang))
            yield ServerSentEvent(data=html, event="inbox", retry=RETRY_MS)
        await asyncio.sleep(INBOX_POLL_SECONDS)


@router.get("/inbox/events", dependencies=[Depends(ClientLimit(Kind.CLIENT_STREAMS))])
async def inbox_events(
    request: Request,
    member: StaffDep,
    session: SessionDep,
    redis: RedisDep,
    db: DbDep,
    feed: FeedDep,
    client: ClientDep,
) -> EventSourceResponse:
    """The inbox lists as HTML, sent again whenever something in them changes."""
    await audit.record(db, member.username, "inbox", detail="stream")
    return live_stream(feed, client, _follow_inbox(request, redis, member, session))


@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(
    request: Request,
    conversation_id: ConversationPath,
    member: StaffDep,
    console: ConsoleDep,
    notice: Annotated[str | None, Query(pattern="^[a-z_]{1,40}$")] = None,
) -> HTMLResponse:
    try:
        view = await console.view(conversation_id, member)
    except NotAllowed:
        if not member.is_admin:
            raise
        return _page(
            request,
            "open.html",
            member,
            status_code=403,
            conversation_id=conversation_id,
            max_reason=MAX_REASON_CHARS,
        )
    return _page(
        request,
        "conversation.html",
        member,
        view=view,
        cursor=view.messages[-1].id if view.messages else "",
        canned=canned_replies(_language(request)),
        notice=notice,
        max_text=MAX_TEXT_CHARS,
    )


async def _follow_conversation(
    request: Request,
    redis: aioredis.Redis,
    feed: TranscriptFeed,
    conversation_id: str,
    after: str | None,
    session: sessions.StaffSession,
) -> AsyncIterator[Any]:
    lang = _language(request)
    template = templates.get_template("staff/_message.html")
    cursor = after
    async with feed.watch(conversation_id) as watch:
        while await sessions.alive(redis, session.id):
            watch.changed.clear()  # before the read: an entry written after it wakes the wait
            found, cursor = await transcript.read(redis, conversation_id, cursor)
            for message in found:
                html = template.render(message=message, t=_texts(lang))
                yield ServerSentEvent(data=html, event="message", id=message.id, retry=RETRY_MS)
            if not found:
                await watch.wait(CHECK_SECONDS)


@router.get(
    "/conversations/{conversation_id}/events", dependencies=[Depends(ClientLimit(Kind.CLIENT_STREAMS))]
)
async def conversation_events(
    request: Request,
    conversation_id: ConversationPath,
    member: StaffDep,
    console: ConsoleDep,
    session: SessionDep,
    redis: RedisDep,
    feed: FeedDep,
    client: ClientDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """New messages of the conversation (notes included) as HTML list items."""
    cursor = request.headers.get("last-event-id") or after
    if cursor and not transcript.is_valid_cursor(cursor):
        return Response(status_code=422)
    await console.watch(conversation_id, member)
    return live_stream(
        feed, client, _follow_conversation(request, redis, feed, conversation_id, cursor or None, session)
    )


@router.post("/conversations/{conversation_id}/open")
async def open_with_reason(
    conversation_id: ConversationPath,
    member: AdminDep,
    console: ConsoleDep,
    reason: Annotated[str, Form(min_length=3, max_length=MAX_REASON_CHARS)],
) -> RedirectResponse:
    """An admin's recorded reason opens a conversation that never asked for a person."""
    await console.open_with_reason(conversation_id, member, reason.strip())
    return _back(conversation_id)


@router.post("/conversations/{conversation_id}/erase")
async def conversation_erase(
    conversation_id: ConversationPath,
    member: AdminDep,
    redis: RedisDep,
    db: DbDep,
    settings: SettingsDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The console's erase button (admins): the API's erasure, from a plain form."""
    if len(reason.strip()) < 3:
        return _back(conversation_id, "erase_needs_reason")
    await erase_conversation(db, redis, settings, conversation_id, requested_by="staff")
    await audit.record(db, member.username, "erase", conversation_id, detail=reason.strip())
    # The conversation is gone: back to the inbox, not to its (now empty) page.
    return RedirectResponse("/staff?notice=erased", status_code=303)


@router.post("/conversations/{conversation_id}/{action}")
async def conversation_action(
    conversation_id: ConversationPath,
    action: str,
    member: StaffDep,
    console: ConsoleDep,
    text: Annotated[str, Form(max_length=MAX_TEXT_CHARS)] = "",
) -> Response:
    """The buttons of the conversation page; back to the page, with a notice when refused."""
    if action not in ACTIONS:
        return Response(status_code=404)
    if action in ("reply", "note") and not text.strip():
        return _back(conversation_id, "empty_text")
    try:
        if action == "takeover":
            await console.take_over(conversation_id, member)
        elif action == "reply":
            await console.reply(conversation_id, member, text.strip())
        elif action == "note":
            await console.note(conversation_id, member, text.strip())
        elif action == "release":
            await console.release(conversation_id, member)
            return RedirectResponse("/staff", status_code=303)
        else:
            await console.close(conversation_id, member)
            return RedirectResponse("/staff", status_code=303)
    except HandoffError as error:
        if action == "close" and isinstance(error, HeldByOther):
            return _back(conversation_id, "not_yours_to_close")
        return _back(conversation_id, "not_yours" if action == "reply" else "taken_by_other")
    return _back(conversation_id)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, member: AdminDep, db: DbDep) -> HTMLResponse:
    await audit.record(db, member.username, "audit_log", detail="page")
    return _page(request, "audit.html", member, entries=await audit.entries(db))


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request, member: AdminDep, redis: RedisDep, db: DbDep) -> HTMLResponse:
    await audit.record(db, member.username, "dead_letters", detail="page")
    return _page(request, "webhooks.html", member, letters=await dead_letters(redis))


@router.post("/webhooks/{letter_id}/retry")
async def webhook_retry(letter_id: str, member: AdminDep, redis: RedisDep, db: DbDep) -> Response:
    await audit.record(db, member.username, "webhook_retry", detail=letter_id)
    await retry_dead_letter(redis, letter_id)
    return RedirectResponse("/staff/webhooks", status_code=303)


def _insight_range(start: date | None, end: date | None, today: date) -> tuple[date, date] | None:
    """The chosen days (the last 30 by default); None when the range is backwards or too long."""
    first, last = default_range(today)
    start, end = start or (end - (last - first) if end else first), end or last
    if end < start or end - start >= timedelta(days=MAX_RANGE_DAYS):
        return None
    return start, end


@router.get("/insight", response_class=HTMLResponse)
async def insight_page(
    request: Request,
    member: AdminDep,
    db: DbDep,
    insight: InsightDep,
    start: date | None = None,
    end: date | None = None,
) -> HTMLResponse:
    chosen = _insight_range(start, end, insight.today())
    lang = _language(request)
    text = _insight_texts(lang)
    if chosen is None:
        error = insight_text("bad_range", lang, days=MAX_RANGE_DAYS)
        shown = {"start": start or "", "end": end or ""}
        return _page(request, "insight.html", member, 422, text=text, error=error, **shown)
    found = await figures(db, *chosen)
    tables = shown_tables(found, lang)
    return _page(request, "insight.html", member, text=text, start=chosen[0], end=chosen[1], tables=tables)


@router.get("/insight.csv", response_class=Response)
async def insight_csv(
    request: Request,
    member: AdminDep,
    db: DbDep,
    insight: InsightDep,
    start: date | None = None,
    end: date | None = None,
) -> Response:
    lang = _language(request)
    chosen = _insight_range(start, end, insight.today())
    if chosen is None:
        return Response(insight_text("bad_range", lang, days=MAX_RANGE_DAYS), status_code=422)
    body = as_csv(await figures(db, *chosen), lang)
    name = f"indgang-{chosen[0]}-{chosen[1]}.csv"
    headers = {**STAFF_PAGE_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


def _insight_texts(lang: str) -> Any:
    return lambda key, **values: insight_text(key, lang, **values)
