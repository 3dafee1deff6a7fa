"""The one way to reach the shared Redis store."""

from __future__ import annotations

from urllib.parse import quote

import redis.asyncio as aioredis

from indgang.settings import Settings


def redis_url(settings: Settings) -> str:
    """REDIS_URL when set, else a URL built from the host/port/db/password parts."""
    if settings.redis_url:
        return settings.redis_url
    auth = f":{quote(settings.redis_password, safe='')}@" if settings.redis_password else ""
    return f"redis://{auth}{settings.redis_host}:{settings.redis_port}/{settings.redis_db}"


def connect(settings: Settings) -> aioredis.Redis:
    """An async client with string replies; connections are opened lazily and pooled."""
    return aioredis.Redis.from_url(
        redis_url(settings),
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )
