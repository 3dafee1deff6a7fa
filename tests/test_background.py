"""The gateway's background loops run on through failures and always stop, even when a step
swallows the cancellation (as Python 3.11's asyncio.wait_for can, inside redis-py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from indgang.background import BackgroundLoop

pytestmark = pytest.mark.anyio


async def test_a_loop_that_swallows_its_cancellation_still_stops() -> None:
    steps = 0

    async def swallowing_step() -> None:
        nonlocal steps
        steps += 1
        # What wait_for does when the awaited call finishes just as the cancellation arrives.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)

    loop = BackgroundLoop("swallower", swallowing_step, pause=0, error_pause=0)
    loop.start()
    await asyncio.sleep(0.05)
    async with asyncio.timeout(3):
        await loop.stop()
    assert steps == 1


async def test_a_loop_stops_in_the_middle_of_its_pause() -> None:
    steps = 0

    async def step() -> None:
        nonlocal steps
        steps += 1

    loop = BackgroundLoop("hourly", step, pause=3600, error_pause=3600)
    loop.start()
    await asyncio.sleep(0.05)
    async with asyncio.timeout(1):
        await loop.stop()
    assert steps == 1


async def test_a_failing_step_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    recovered = asyncio.Event()

    async def flaky_step() -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("redis away")
        recovered.set()

    loop = BackgroundLoop("flaky", flaky_step, pause=0.01, error_pause=0.01)
    with caplog.at_level(logging.ERROR, logger="indgang.background"):
        loop.start()
        try:
            async with asyncio.timeout(2):
                await recovered.wait()
        finally:
            await loop.stop()
    failures = [record for record in caplog.records if "flaky failed" in record.getMessage()]
    assert len(failures) == 2 and all(record.exc_info for record in failures)
