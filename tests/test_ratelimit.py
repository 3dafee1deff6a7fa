from __future__ import annotations

import pytest

from indgang import ratelimit

pytestmark = pytest.mark.anyio


async def test_the_limit_allows_then_asks_to_wait(redis) -> None:
    results = [await ratelimit.hit(redis, "c", limit=3, window_seconds=60) for _ in range(4)]
    assert results[:3] == [None, None, None]
    assert results[3] is not None and 1 <= results[3] <= 61
    # another conversation has its own budget
    assert await ratelimit.hit(redis, "other", limit=3, window_seconds=60) is None
