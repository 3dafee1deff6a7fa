"""What every action needs from the conversation and the shared store."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import redis.asyncio as aioredis

from indgang.i18n import normalise_language
from indgang.insight import Insight
from indgang.records import db as records
from indgang.records import migrate
from indgang.redis_store import connect
from indgang.settings import Settings, get_settings


def settings() -> Settings:
    return get_settings()


@lru_cache
def redis() -> aioredis.Redis:
    # One pool for the action server's single event loop, opened on first use.
    return connect(settings())


@lru_cache
def insight() -> Insight:
    # Counts for the insight page, written to the records' database.
    return Insight(db(), settings().booking_timezone)


@lru_cache
def db() -> records.Database:
    """The durable records (bookings, tovholdere); migrated first where settings say so, as the
    gateway does, so whichever process starts first finds the tables."""
    migrate.on_start(settings())
    return records.connect(settings())


def metadata(latest_message: dict[str, Any]) -> dict[str, Any]:
    value = latest_message.get("metadata")
    return value if isinstance(value, dict) else {}


def language(latest_message: dict[str, Any]) -> str:
    """The gateway sends the conversation's language with every message."""
    return normalise_language(metadata(latest_message).get("language"))


def channel(latest_message: dict[str, Any]) -> str:
    return str(metadata(latest_message).get("channel") or "web")
