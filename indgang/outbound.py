"""Messages to a citizen outside a request/response turn (staff replies, confirmations, reminders),
delivered on the conversation's own channel."""

from __future__ import annotations

import redis.asyncio as aioredis

from indgang import conversation, transcript
from indgang.dialogue import Button
from indgang.settings import Settings
from indgang.sms.outbox import SmsOutbox
from indgang.sms.sender import SmsSender
from indgang.transcript import Message, Sender


async def deliver_to_citizen(
    redis: aioredis.Redis,
    settings: Settings,
    conversation_id: str,
    text: str,
    sender: Sender = "staff",
    staff: str | None = None,
    buttons: list[Button] | None = None,
) -> Message:
    """Write the message to the transcript (the web chat reads it from there, live); on an SMS
    conversation also queue it as SMS in the durable outbox (indgang/sms/outbox.py), which sends
    it at least once and never twice, across a crash or restart of the gateway (`buttons` show on
    the web only: the text says what to reply). An SMS that cannot go (STOP, no number, Twilio
    failing after retries) is noted in the transcript for staff, not raised."""
    record = await conversation.get(redis, conversation_id)
    channel = record.channel if record else "web"
    message = await transcript.append(
        redis,
        conversation_id,
        sender,
        text,
        settings.conversation_ttl_seconds,
        channel=channel,
        staff=staff,
        **({"buttons": [b.model_dump() for b in buttons]} if buttons else {}),
    )
    if channel == "sms":
        outbox = SmsOutbox(redis, settings, SmsSender(redis, settings))
        await outbox.to_conversation(conversation_id, text, ref=message.id)
    return message
