from __future__ import annotations

import pytest

from indgang import ratelimit
from indgang.ratelimit import Kind

pytestmark = pytest.mark.anyio


async def test_the_limit_allows_then_asks_to_wait(redis) -> None:
    results = [await ratelimit.hit(redis, Kind.CHAT, "c", limit=3, window_seconds=60) for _ in range(4)]
    assert results[:3] == [None, None, None]
    assert results[3] is not None and 1 <= results[3] <= 60
    # another conversation has its own budget
    assert await ratelimit.hit(redis, Kind.CHAT, "other", limit=3, window_seconds=60) is None


async def test_a_subject_that_is_no_id_is_refused(redis) -> None:
    for bad in ("", "a/b", "x" * 201, "a b", "æ"):
        with pytest.raises(ValueError):
            await ratelimit.hit(redis, Kind.CHAT, bad, limit=3, window_seconds=60)
