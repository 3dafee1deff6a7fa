"""Each SMS's delivery state, per conversation: set when Twilio accepts it, moved forward by
Twilio's status callbacks. What could not be sent or delivered becomes a note in the transcript
(sender "system", internal), where the staff console shows it next to the conversation.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from indgang import keys, transcript
from indgang.i18n import t

log = logging.getLogger(__name__)

STAFF_LANGUAGE = "da"
NOT_DELIVERED = frozenset({"failed", "undelivered"})
# Callbacks can arrive out of order: a state only ever moves forward.
_RANK = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "read": 5,
}  # fmt: skip

# KEYS[1] the conversation's deliveries hash. ARGV: sid, state, rank, error code, now.
# Returns 1 when the state moved forward, 0 when the message is unknown or the state is older.
_ADVANCE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if tonumber(record.rank) >= tonumber(ARGV[3]) then return 0 end
record.state = ARGV[2]
record.rank = tonumber(ARGV[3])
record.error_code = ARGV[4]
record.updated_at = ARGV[5]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return 1
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rank(state: str) -> int:
    return _RANK.get(state, 0)


async def record_sent(
    redis: aioredis.Redis, conversation_id: str, sid: str, state: str, ref: str, ttl_seconds: int
) -> None:
    """Twilio accepted the message; `ref` is the transcript entry it carries (when known)."""
    now = _now()
    record = {"state": state, "rank": _rank(state), "error_code": "", "ref": ref}
    record |= {"created_at": now, "updated_at": now}
    key = keys.sms_deliveries(conversation_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, sid, json.dumps(record))
        pipe.expire(key, ttl_seconds)
        await pipe.execute()


async def advance(
    redis: aioredis.Redis, conversation_id: str, sid: str, state: str, error_code: str, ttl_seconds: int
) -> bool:
    """Apply a status callback; a message that did not arrive gets a note for staff, once."""
    script = redis.register_script(_ADVANCE)
    key = keys.sms_deliveries(conversation_id)
    moved = bool(await script(keys=[key], args=[sid, state, _rank(state), error_code, _now()]))
    if moved and state in NOT_DELIVERED:
        record = (await states(redis, conversation_id)).get(sid, {})
        await note(
            redis, conversation_id, ttl_seconds, "not_delivered",
            state=state, code=error_code or "-", sent_at=record.get("created_at", "?"),
        )  # fmt: skip
    return moved


async def states(redis: aioredis.Redis, conversation_id: str) -> dict[str, dict[str, Any]]:
    """Every tracked SMS of the conversation: sid -> {state, error_code, ref, created_at, updated_at}."""
    raw = await redis.hgetall(keys.sms_deliveries(conversation_id))
    return {sid: json.loads(value) for sid, value in raw.items()}


async def note(
    redis: aioredis.Redis, conversation_id: str, ttl_seconds: int, reason: str, **values: Any
) -> None:
    """Tell staff, in the transcript, that an SMS to the citizen did not go or did not arrive."""
    log.warning(
        "sms not sent or not delivered",
        extra={"conversation": keys.pseudonym(conversation_id), "reason": reason},
    )
    await transcript.append(
        redis,
        conversation_id,
        "system",
        t(f"sms.staff.{reason}", STAFF_LANGUAGE, **values),
        ttl_seconds,
        channel="sms",
        internal=True,
    )
