"""Leases on a Redis sorted set of due items: at-least-once work that survives a crash.

An item is a member scored by when it is due. Claiming does not remove it: the claim moves its
score to a lease deadline, so a worker that dies (or a gateway that restarts) between claiming
and finishing leaves the item to be claimed again once the lease runs out. The worker removes
the item only after the work succeeded, and only if the score is still its own lease: an item
scheduled anew meanwhile (a booking moved while its reminder was being sent) is left alone.
Several replicas can claim from one set; the scripts run atomically, so a live lease is never
taken twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS: the set. ARGV: now, lease deadline, batch size. Returns the claimed members.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member) end
return due
"""
# KEYS: the set. ARGV: member, its lease deadline, then a new due score ("" = remove it).
_SETTLE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1]) end
return 1
"""


@dataclass(frozen=True)
class Claim:
    member: str
    lease: float  # the score the claim set: the deadline, and the proof the lease is still ours


class LeasedSet:
    def __init__(self, redis: aioredis.Redis, key: str, lease_seconds: float) -> None:
        self.redis = redis
        self.key = key
        self.lease_seconds = lease_seconds
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)

    async def claim(self, now: float, limit: int) -> list[Claim]:
        """The items due by `now` (epoch seconds), leased until now + lease_seconds."""
        lease = round(now + self.lease_seconds, 3)
        members = await self._claim(keys=[self.key], args=[now, lease, limit])
        return [Claim(member, lease) for member in members]

    async def done(self, claim: Claim) -> bool:
        """Remove the item; False when the lease had run out or it was scheduled anew."""
        return bool(await self._settle(keys=[self.key], args=[claim.member, claim.lease, ""]))

    async def retry(self, claim: Claim, at: float) -> bool:
        """Make the item due again at `at` (a refusal to try again later)."""
        return bool(await self._settle(keys=[self.key], args=[claim.member, claim.lease, at]))
