"""Waiting for the gateway's SMS outbox worker (indgang/sms/outbox.py) to send what a webhook
queued: replies no longer go out inside the request."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from indgang import keys


async def outbox_drained(redis: aioredis.Redis, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await redis.zcard(keys.sms_outbox()):
        assert loop.time() < deadline, "the SMS outbox was not sent"
        await asyncio.sleep(0.05)
