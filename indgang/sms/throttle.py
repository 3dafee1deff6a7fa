"""Spending guards for outbound SMS: per number and for all numbers, in fixed windows, so a loop
with another system's auto-replies (or a bug) cannot run up a bill."""

from __future__ import annotations

from typing import Literal

import redis.asyncio as aioredis

from indgang import ratelimit
from indgang.settings import Settings

Refusal = Literal["per_number", "global"]
GLOBAL_SUBJECT = "sms-out:all"


async def check(
    redis: aioredis.Redis, settings: Settings, conversation_id: str, urgent: bool = False
) -> Refusal | None:
    """Count one SMS about to be sent; None when it may go. An emergency reply is never held
    back by the per-number limit (it still counts, and the global limit still applies)."""
    s = settings
    over_number = await ratelimit.hit(
        redis, f"sms-out:{conversation_id}", s.sms_per_number_limit, s.sms_per_number_window_seconds
    )
    if over_number is not None and not urgent:
        return "per_number"
    over_all = await ratelimit.hit(redis, GLOBAL_SUBJECT, s.sms_global_limit, s.sms_global_window_seconds)
    return "global" if over_all is not None else None
