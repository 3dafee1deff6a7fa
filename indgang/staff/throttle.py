"""Login throttling: growing delays instead of a lock-out.

Failed logins are counted per client (its address: one guesser, or one client spraying a
password over many usernames) and per account (many clients guessing one account). After a few
free failures each further one doubles the wait before the next try. A client's wait grows to a
quarter of an hour; an account's only to a minute, and it starts much later, so a guesser
elsewhere can slow the real user down a little but never lock her out. Failures are forgotten an
hour after the last one.

An attempt is counted as failed before the password is checked (and forgiven when it was right),
so a burst of parallel guesses cannot slip past the count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from indgang import keys


@dataclass(frozen=True)
class Rule:
    free: int  # failures before any wait
    max_wait: int  # seconds; the doubling stops here


CLIENT = Rule(free=5, max_wait=15 * 60)
ACCOUNT = Rule(free=20, max_wait=60)

# KEYS: the client's and the account's counters. ARGV: now, memory seconds, then free and
# max_wait for each key. Returns the seconds to wait (nothing counted), or 0 (counted).
_ATTEMPT = """
local now, memory = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = 0
for i, key in ipairs(KEYS) do
  local free, max_wait = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local failures = tonumber(redis.call('HGET', key, 'failures') or '0')
  if failures >= free then
    local delay = math.min(max_wait, 2 ^ (failures - free))
    local last = tonumber(redis.call('HGET', key, 'last') or '0')
    wait = math.max(wait, math.ceil(last + delay - now))
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'failures', 1)
  redis.call('HSET', key, 'last', ARGV[1])
  redis.call('EXPIRE', key, memory)
end
return 0
"""

_FORGIVE = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('HGET', key, 'failures') or '0') > 0 then
    redis.call('HINCRBY', key, 'failures', -1)
  end
end
"""


def _keys(client: str, username: str) -> list[str]:
    return [keys.login_failures("client", client), keys.login_failures("account", username.strip().lower())]


async def attempt(redis: aioredis.Redis, client: str, username: str) -> int | None:
    """Count one try; None when it may go ahead, else the seconds to wait (nothing is counted)."""
    wait = await redis.register_script(_ATTEMPT)(
        keys=_keys(client, username),
        args=[
            f"{time.time():.3f}",
            keys.LOGIN_FAILURES_MEMORY_SECONDS,
            CLIENT.free,
            CLIENT.max_wait,
            ACCOUNT.free,
            ACCOUNT.max_wait,
        ],
    )
    return int(wait) or None


async def succeeded(redis: aioredis.Redis, client: str, username: str) -> None:
    """The try was right: it does not count as a failure."""
    await redis.register_script(_FORGIVE)(keys=_keys(client, username))
