"""Process-wide resources of the gateway, created once in the app's lifespan."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import redis.asyncio as aioredis

from indgang.inbound import Inbound
from indgang.live import TranscriptFeed
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.spool import Spool


@dataclass
class GatewayState:
    settings: Settings
    redis: aioredis.Redis
    db: Database  # durable records (SQL)
    http: httpx.AsyncClient
    inbound: Inbound
    feed: TranscriptFeed  # the one Redis reader behind every live stream
    spool: Spool  # inbound messages kept while Redis is unreachable
    clock: Callable[[], float] = field(default=time.time)  # epoch seconds; tests move it
