"""The FastAPI gateway: every channel comes in here, and leaves through here."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from prometheus_client import start_http_server
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from indgang.booking.notifications import BookingNotifier
from indgang.engine_retry import EngineRetry
from indgang.followup import FollowUpSender
from indgang.i18n import t
from indgang.inbound import Inbound
from indgang.insight import Insight
from indgang.live import TranscriptFeed
from indgang.logging_setup import configure_logging
from indgang.queue_watch import QueueWatch
from indgang.records import db as records
from indgang.records import migrate
from indgang.redis_store import connect
from indgang.settings import Settings, get_settings, get_settings_or_exit
from indgang.sms import twilio_api
from indgang.sms.channel import SmsChannel
from indgang.sms.outbox import SmsOutbox
from indgang.sms.sender import SmsSender
from indgang.spool import Spool, SpoolReplay
from indgang.staff.console import NotAllowed
from indgang.webhooks import WebhookDispatcher
from webhook import errors
from webhook.access_log import AccessLog
from webhook.errors import ApiError
from webhook.hsts import StrictTransportSecurity
from webhook.limits import BodySizeLimit
from webhook.rasa_engine import RasaEngine
from webhook.routers import (
    bookings,
    chat,
    chat_stream,
    followup,
    health,
    offers,
    pages,
    staff,
    staff_api,
    staff_catalogue,
    twilio,
)
from webhook.schemas import error_responses
from webhook.staff_session import Forbidden, LoginRequired, session_middleware
from webhook.state import GatewayState
from webhook.templating import STATIC_PREFIX, static_files

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, clock: Callable[[], float] = time.time) -> FastAPI:
    """The gateway for `settings`; `clock` (epoch seconds) drives the queue watch and when
    follow-ups fall due, so tests can move time instead of waiting."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await to_thread.run_sync(migrate.on_start, settings)
        redis = connect(settings)
        db = records.connect(settings)
        async with httpx.AsyncClient() as http:
            engine = RasaEngine(
                http, settings.rasa_url_list, settings.rasa_auth_token, settings.rasa_timeout_seconds,
                settings.action_server_url_list,
            )  # fmt: skip
            engine.start()
            feed = TranscriptFeed(redis, per_client=settings.streams_per_client, total=settings.streams_total)
            insight = Insight(db, settings.booking_timezone, clock)
            inbound = Inbound(redis, db, engine, settings, clock, insight)
            spool = Spool(settings.spool_dir, settings.spool_max_bytes)
            app.state.gateway = GatewayState(
                settings=settings,
                redis=redis,
                db=db,
                http=http,
                inbound=inbound,
                feed=feed,
                spool=spool,
                clock=clock,
            )
            offers.warm_search(settings)
            sender = SmsSender(redis, settings)
            notifier = BookingNotifier(db, redis, settings, sender.send_sms)
            notifier.start()
            # Only a gateway that can send takes SMS off the queue (one without Twilio gets none).
            outbox = SmsOutbox(redis, settings, sender) if twilio_api.is_configured(settings) else None
            if outbox is not None:
                outbox.start()
            # Follow-ups go out by SMS: like the outbox, only where Twilio is set up.
            followups = FollowUpSender(redis, settings, clock) if outbox is not None else None
            if followups is not None:
                followups.start()
            engine_retry = EngineRetry(app.state.gateway.inbound)
            engine_retry.start()
            queue_watch = QueueWatch(inbound, clock)
            queue_watch.start()
            dispatcher = WebhookDispatcher(redis, settings, http)
            dispatcher.start()
            feed.start()
            sms = SmsChannel(redis, settings, inbound, SmsSender(redis, settings))
            handlers = {"sms": sms.replay, "web": inbound.replay_web}
            replay = SpoolReplay(spool, redis, handlers, settings)
            replay.start()
            log.info("gateway ready")
            yield
            await replay.stop()
            await feed.stop()
            await dispatcher.stop()
            await notifier.stop()
            if followups is not None:
                await followups.stop()
            await engine_retry.stop()
            await queue_watch.stop()
            if outbox is not None:
                await outbox.stop()
            await engine.stop()
            await insight.aclose()  # the counts under way are written before the database closes
        await redis.aclose()
        await db.aclose()

    app = FastAPI(
        title="Indgang gateway",
        version="0.1.0",
        description="One entrance to the municipality's specialised social area (see api.md).",
        lifespan=lifespan,
        docs_url=None,  # served by the health router, for admins only
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit)
    # The client address every per-client limit counts: X-Forwarded-For only from our proxies.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    middleware, options = session_middleware(settings)
    app.add_middleware(middleware, **options)
    if settings.production:
        app.add_middleware(StrictTransportSecurity)
    app.add_middleware(AccessLog)  # the outermost: it times and logs every request
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(NotAllowed, not_allowed)
    errors.install(app)
    # What needs Redis answers 503 while it is unreachable (webhook/errors.py): in the contract too.
    unavailable = error_responses(503)
    app.include_router(health.router)
    app.include_router(chat.router, responses=unavailable)
    app.include_router(followup.router, responses=unavailable)
    app.include_router(offers.router)
    app.include_router(bookings.router, responses=unavailable)
    app.include_router(twilio.router)  # the SMS webhook answers in TwiML; /status declares 503
    app.include_router(chat_stream.router, responses=unavailable)
    app.include_router(pages.router)
    app.include_router(staff.router)
    app.include_router(staff_catalogue.router)
    app.include_router(staff_api.router, responses=unavailable)
    app.mount(STATIC_PREFIX, static_files(), name="static")
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def login_required(request: Request, exc: Exception) -> Response:
    """The API says 401; a page sends the browser to the login form."""
    assert isinstance(exc, LoginRequired)
    if _is_api(request):
        return ApiError(401, "unauthorized", "log in as staff first").response()
    return RedirectResponse("/staff/login?expired=1" if exc.expired else "/staff/login", status_code=303)


async def forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    if _is_api(request):
        return ApiError(403, "forbidden", exc.detail).response()
    lang = request.session.get("lang", "da")
    return PlainTextResponse(t(f"staff.console.{exc.text_key}", lang), status_code=403)


async def not_allowed(request: Request, exc: Exception) -> Response:
    """A conversation the staff member may not open (indgang.staff.console's rule)."""
    return await forbidden(request, Forbidden(str(exc), "not_allowed"))


def run() -> None:
    """Entry point for `python -m webhook.main`: serve with uvicorn on the configured address."""
    import uvicorn

    settings = get_settings_or_exit()
    configure_logging(settings.log_level)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,
        access_log=False,  # it logs paths and queries with personal data: webhook.access_log instead
        proxy_headers=False,  # create_app reads X-Forwarded-For itself, from TRUSTED_PROXIES only
    )


if __name__ == "__main__":
    run()
