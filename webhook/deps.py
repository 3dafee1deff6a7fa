"""FastAPI dependencies: routes ask for what they need, the app's lifespan provides it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request

from indgang import ratelimit
from indgang.i18n import DEFAULT_LANGUAGE, t
from indgang.inbound import Inbound
from indgang.insight import Insight
from indgang.live import TranscriptFeed
from indgang.ratelimit import Kind
from indgang.records.db import Database
from indgang.redis_store import UNREACHABLE
from indgang.settings import Settings
from indgang.spool import Spool
from indgang.staff.console import StaffConsole
from webhook.errors import ApiError
from webhook.state import GatewayState


def gateway_state(request: Request) -> GatewayState:
    return request.app.state.gateway


StateDep = Annotated[GatewayState, Depends(gateway_state)]


def settings(state: StateDep) -> Settings:
    return state.settings


def redis(state: StateDep) -> aioredis.Redis:
    return state.redis


def db(state: StateDep) -> Database:
    return state.db


def inbound(state: StateDep) -> Inbound:
    return state.inbound


def insight(state: StateDep) -> Insight:
    return state.inbound.insight


def feed(state: StateDep) -> TranscriptFeed:
    return state.feed


def spool(state: StateDep) -> Spool:
    return state.spool


def clock(state: StateDep) -> Callable[[], float]:
    return state.clock


SettingsDep = Annotated[Settings, Depends(settings)]
SpoolDep = Annotated[Spool, Depends(spool)]
RedisDep = Annotated[aioredis.Redis, Depends(redis)]
DbDep = Annotated[Database, Depends(db)]
InboundDep = Annotated[Inbound, Depends(inbound)]
InsightDep = Annotated[Insight, Depends(insight)]
FeedDep = Annotated[TranscriptFeed, Depends(feed)]
ClockDep = Annotated[Callable[[], float], Depends(clock)]


def staff_console(state: StateDep) -> StaffConsole:
    inbound = state.inbound
    return StaffConsole(state.redis, state.db, state.settings, inbound.engine, inbound.insight)


ConsoleDep = Annotated[StaffConsole, Depends(staff_console)]


# --- limits per client -----------------------------------------------------------------------


def client_address(request: Request) -> str:
    """The client: the peer address, already replaced by X-Forwarded-For's when the peer is a
    trusted proxy (ProxyHeadersMiddleware with TRUSTED_PROXIES, set up in create_app)."""
    return ratelimit.subject(request.client.host if request.client else "unknown")


ClientDep = Annotated[str, Depends(client_address)]


class TooMany(ApiError):
    """429 (or 503 when the whole gateway is full) with Retry-After."""

    def __init__(self, retry_after: int, error: str = "rate_limited", status_code: int = 429) -> None:
        detail = t(f"chat.{error}", DEFAULT_LANGUAGE)
        super().__init__(status_code, error, detail, headers={"Retry-After": str(retry_after)})


class ClientLimit:
    """A dependency that counts one request of `kind` from the client, and refuses it with 429
    over the limit: `dependencies=[Depends(ClientLimit(Kind.CLIENT_CHAT))]` on a route."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind

    async def __call__(self, client: ClientDep, redis: RedisDep, settings: SettingsDep) -> None:
        try:
            retry_after = await ratelimit.hit_client(redis, settings, self.kind, client)
        except UNREACHABLE:
            return  # nothing to count with; the Redis-down answer is cheap and the spool capped
        if retry_after is not None:
            raise TooMany(retry_after)
