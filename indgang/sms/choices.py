"""Buttons on SMS are numbered choices; the buttons last offered are remembered per
conversation, so a reply of "2" becomes the second button's payload, as a click would."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from indgang import keys
from indgang.dialogue import Button
from indgang.sms.compose import choice_index


async def remember(redis: aioredis.Redis, conversation_id: str, buttons: list[Button], ttl: int) -> None:
    """The latest turn's buttons replace the earlier ones; a turn without buttons clears them,
    so a later "2" is never mapped to a stale question."""
    key = keys.sms_choices(conversation_id)
    if buttons:
        await redis.set(key, json.dumps([b.model_dump() for b in buttons], ensure_ascii=False), ex=ttl)
    else:
        await redis.delete(key)


async def resolve(redis: aioredis.Redis, conversation_id: str, text: str) -> Button | None:
    """The button a numbered reply picks, or None when the text is not one of the numbers."""
    raw = await redis.get(keys.sms_choices(conversation_id))
    if raw is None:
        return None
    buttons = [Button(**b) for b in json.loads(raw)]
    index = choice_index(text, len(buttons))
    return None if index is None else buttons[index]
