"""Handoff to staff: a small state machine per conversation, kept atomic in Redis.

none -> requested -> active (one staff member) -> released (back to the bot) or closed.
Every transition runs as one Lua script, so two staff members clicking "take over" at the same
moment cannot both win, and the inbox queue always agrees with the state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

import redis.asyncio as aioredis

from indgang import keys
from indgang.events import EventType, emit

# What the queue watch (indgang/queue_watch.py) noted about the current request; a new request
# clears them (in _TRANSITION), so each request gets its own alerts, offer and place updates.
MARKS = ("alerted:crisis", "alerted:waiting", "offered_booking", "told_position", "told_at")


class HandoffState(StrEnum):
    NONE = "none"
    REQUESTED = "requested"
    ACTIVE = "active"
    RELEASED = "released"
    CLOSED = "closed"


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"  # a possible danger (risk "concern"): before every normal request
    URGENT = "urgent"  # danger now (risk "acute"): first of all


class HandoffError(Exception):
    """A transition that the current state does not allow (maps to HTTP 409)."""


class HeldByOther(HandoffError):
    """Only the staff member who holds the conversation may do this (an admin may close it)."""


# What each action may start from.
_ALLOWED_FROM: dict[str, tuple[HandoffState, ...]] = {
    "request": (HandoffState.NONE, HandoffState.RELEASED, HandoffState.CLOSED, HandoffState.REQUESTED),
    "take": (HandoffState.NONE, HandoffState.REQUESTED, HandoffState.RELEASED, HandoffState.CLOSED),
    "release": (HandoffState.ACTIVE,),
    "close": (HandoffState.REQUESTED, HandoffState.ACTIVE),
}
_TARGET = {
    "request": HandoffState.REQUESTED,
    "take": HandoffState.ACTIVE,
    "release": HandoffState.RELEASED,
    "close": HandoffState.CLOSED,
}

# KEYS[1] handoff hash, KEYS[2] inbox queue, KEYS[3] the queue watch. ARGV: action, target, now,
# conversation id, staff (or ""), priority (or ""), reason (or ""), ttl, then the allowed start states.
# Returns {0, current} when refused, {1, previous} when done. `release` and `close` also need
# the holder when a staff member is given (an admin closes without one).
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'state') or 'none'
local allowed = false
for i = 9, #ARGV do if ARGV[i] == current then allowed = true end end
if not allowed then return {0, current} end
local action, target, now, conv = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local staff, priority, reason, ttl = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local needs_holder = action == 'release' or action == 'close'
if needs_holder and staff ~= '' and redis.call('HGET', KEYS[1], 'staff') ~= staff then
  return {0, 'held-by-other'}
end
local rank = {normal = 0, high = 1, urgent = 2}
if action == 'request' and current == 'requested' then
  -- a repeated request only raises the priority; it keeps its place in the queue
  local had = redis.call('HGET', KEYS[1], 'priority') or 'normal'
  if (rank[priority] or 0) > (rank[had] or 0) then redis.call('HSET', KEYS[1], 'priority', priority) end
else
  redis.call('HSET', KEYS[1], 'state', target, 'updated_at', now)
end
if action == 'request' then
  if current ~= 'requested' then
    redis.call('HSET', KEYS[1], 'requested_at', now, 'priority', priority, 'reason', reason)
    -- what the queue watch noted about an earlier request: each request gets its own alerts
    redis.call('HDEL', KEYS[1], 'staff', 'alerted:crisis', 'alerted:waiting', 'offered_booking',
      'told_position', 'told_at')
  end
  -- in the same script as the request, so a crash cannot lose its alert: due at once
  redis.call('ZADD', KEYS[3], now, conv)
elseif action == 'take' then
  redis.call('HSET', KEYS[1], 'staff', staff, 'taken_at', now)
  if redis.call('HEXISTS', KEYS[1], 'requested_at') == 0 then
    redis.call('HSET', KEYS[1], 'requested_at', now, 'priority', 'normal')
  end
end
-- the queue score puts urgent first, then oldest request
local p = redis.call('HGET', KEYS[1], 'priority') or 'normal'
local requested = tonumber(redis.call('HGET', KEYS[1], 'requested_at') or now)
if action == 'request' or action == 'take' then
  local score = requested
  score = score - 1e10 * (rank[p] or 0)
  redis.call('ZADD', KEYS[2], score, conv)
else
  redis.call('ZREM', KEYS[2], conv)
end
if action ~= 'request' then redis.call('ZREM', KEYS[3], conv) end
redis.call('EXPIRE', KEYS[1], ttl)
return {1, current}
"""


@dataclass(frozen=True)
class Handoff:
    conversation_id: str
    state: HandoffState
    priority: Priority = Priority.NORMAL
    staff: str | None = None
    reason: str | None = None
    requested_at: float | None = None
    marks: dict[str, str] = field(default_factory=dict)

    @property
    def with_staff(self) -> bool:
        """While requested or active, citizen messages go to staff, not to the bot."""
        return self.state in (HandoffState.REQUESTED, HandoffState.ACTIVE)

    @property
    def api_state(self) -> str:
        """The contract's vocabulary: a released conversation is back with the bot ('none')."""
        return HandoffState.NONE if self.state == HandoffState.RELEASED else self.state.value


async def get(redis: aioredis.Redis, conversation_id: str) -> Handoff:
    data = await redis.hgetall(keys.handoff(conversation_id))
    return Handoff(
        conversation_id=conversation_id,
        state=HandoffState(data.get("state", HandoffState.NONE)),
        priority=Priority(data.get("priority", Priority.NORMAL)),
        staff=data.get("staff"),
        reason=data.get("reason"),
        requested_at=float(data["requested_at"]) if "requested_at" in data else None,
        marks={name: data[name] for name in MARKS if name in data},
    )


# KEYS[1] handoff hash. ARGV: the request's requested_at, then field, value pairs.
_MARK = """
if redis.call('HGET', KEYS[1], 'requested_at') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


async def mark(redis: aioredis.Redis, current: Handoff, values: dict[str, str]) -> bool:
    """Note `values` (names from MARKS) on the request `current` was read from; False when a new
    request or an erasure came meanwhile (then nothing is noted)."""
    assert set(values) <= set(MARKS), values
    if current.requested_at is None:
        return False
    pairs = [item for pair in values.items() for item in pair]
    script = redis.register_script(_MARK)
    stamp = _stamp(current.requested_at)
    return bool(await script(keys=[keys.handoff(current.conversation_id)], args=[stamp, *pairs]))


def _stamp(moment: float) -> str:
    """A time as the handoff record keeps it (milliseconds), so a request is known by its time."""
    return f"{moment:.3f}"


async def _transition(
    redis: aioredis.Redis,
    action: str,
    conversation_id: str,
    ttl_seconds: int,
    staff: str = "",
    priority: Priority = Priority.NORMAL,
    reason: str = "",
) -> HandoffState:
    script = redis.register_script(_TRANSITION)
    done, previous = await script(
        keys=[keys.handoff(conversation_id), keys.handoff_queue(), keys.handoff_watch()],
        args=[
            action,
            _TARGET[action].value,
            _stamp(time.time()),
            conversation_id,
            staff,
            priority.value,
            reason,
            ttl_seconds,
            *[s.value for s in _ALLOWED_FROM[action]],
        ],
    )
    if not int(done):
        if previous == "held-by-other":
            raise HeldByOther("another staff member holds this conversation")
        raise HandoffError(f"cannot {action} a conversation whose handoff is {previous}")
    return HandoffState(previous)


async def request(
    redis: aioredis.Redis,
    conversation_id: str,
    ttl_seconds: int,
    reason: str,
    priority: Priority = Priority.NORMAL,
) -> bool:
    """Ask for a person. Returns True when this created a new request (False: it was waiting already).

    A conversation that staff already hold stays with them.
    """
    try:
        previous = await _transition(
            redis, "request", conversation_id, ttl_seconds, priority=priority, reason=reason
        )
    except HandoffError:
        return False  # only an active conversation refuses a request
    return previous != HandoffState.REQUESTED


async def request_person(
    redis: aioredis.Redis,
    conversation_id: str,
    channel: str,
    ttl_seconds: int,
    reason: str,
    priority: Priority = Priority.NORMAL,
) -> bool:
    """Put the conversation in the staff queue and tell the municipality's systems, once per request."""
    created = await request(redis, conversation_id, ttl_seconds, reason=reason, priority=priority)
    if created:
        await emit(
            redis,
            EventType.HANDOFF_REQUESTED,
            {
                "conversation_id": conversation_id,
                "channel": channel,
                "reason": reason,
                "priority": priority.value,
            },
        )
    return created


async def take(redis: aioredis.Redis, conversation_id: str, staff: str, ttl_seconds: int) -> None:
    """Claim the conversation for one staff member; HandoffError for everyone else."""
    await _transition(redis, "take", conversation_id, ttl_seconds, staff=staff)


async def release(redis: aioredis.Redis, conversation_id: str, staff: str, ttl_seconds: int) -> None:
    await _transition(redis, "release", conversation_id, ttl_seconds, staff=staff)


async def close(redis: aioredis.Redis, conversation_id: str, ttl_seconds: int, staff: str = "") -> None:
    """Close it; with `staff`, only when that staff member holds it (HeldByOther otherwise)."""
    await _transition(redis, "close", conversation_id, ttl_seconds, staff=staff)


# KEYS[1] the queue, then each member's handoff hash; ARGV the members. Atomic with the
# transitions, so a request made meanwhile is never dropped.
_DROP_EXPIRED = """
local kept = {}
for i, member in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then kept[#kept + 1] = member
  else redis.call('ZREM', KEYS[1], member) end
end
return kept
"""


async def queued(redis: aioredis.Redis) -> list[str]:
    """The conversations in the staff queue, in inbox order. A member whose handoff expired with
    its conversation is dropped here, so the queue never outlives what it points to."""
    members = await redis.zrange(keys.handoff_queue(), 0, -1)
    if not members:
        return []
    script = redis.register_script(_DROP_EXPIRED)
    kept = await script(keys=[keys.handoff_queue(), *map(keys.handoff, members)], args=members)
    return [str(member) for member in kept]


async def queue_position(redis: aioredis.Redis, conversation_id: str) -> int | None:
    """1-based place among conversations waiting or held (None when not in the queue)."""
    rank = await redis.zrank(keys.handoff_queue(), conversation_id)
    return None if rank is None else rank + 1
