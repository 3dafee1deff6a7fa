"""Spending guards for outbound SMS: per number and for all numbers, in moving windows, so a
loop with another system's auto-replies (or a bug) cannot run up a bill."""

from __future__ import annotations

from typing import Literal

import redis.asyncio as aioredis

from indgang import ratelimit
from indgang.ratelimit import Kind
from indgang.settings import Settings

Refusal = Literal["per_number", "global"]
GLOBAL_SUBJECT = "all"


async def check(
    redis: aioredis.Redis, settings: Settings, conversation_id: str, urgent: bool = False
) -> Refusal | None:
    """Count one SMS about to be sent; None when it may go. An emergency reply is never held
    back: it is counted like any other, but no limit stops it."""
    s = settings
    over_number = await ratelimit.hit(
        redis, Kind.SMS_NUMBER, conversation_id, s.sms_per_number_limit, s.sms_per_number_window_seconds
    )
    if over_number is not None and not urgent:
        return "per_number"  # not sent, so not counted against the global budget either
    over_all = await ratelimit.hit(
        redis, Kind.SMS_ALL, GLOBAL_SUBJECT, s.sms_global_limit, s.sms_global_window_seconds
    )
    return "global" if over_all is not None and not urgent else None
