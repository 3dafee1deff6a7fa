"""A loop that runs beside the gateway (booking notices, webhook deliveries) and always stops.

Cancelling alone is not enough on Python 3.11: `asyncio.wait_for` (which redis-py uses to write
a command) swallows a cancellation that arrives just as the awaited call finishes, and a loop
that caught it would run on for ever, hanging the gateway's shutdown. So stopping also raises a
flag the loop checks every turn, and cancels again until the task has ended."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

RECANCEL_SECONDS = 0.5


class BackgroundLoop:
    """Runs `step` again and again, `pause` seconds apart (`error_pause` after a failure, which
    is logged and never ends the loop), until `stop` is awaited."""

    def __init__(
        self, name: str, step: Callable[[], Awaitable[object]], *, pause: float, error_pause: float
    ) -> None:
        self.name = name
        self.step = step
        self.pause = pause
        self.error_pause = error_pause
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.step()
                pause = self.pause
            except Exception:
                log.exception("%s failed; continuing", self.name)
                pause = self.error_pause
            if pause and not self._stopping:
                await asyncio.sleep(pause)

    async def stop(self) -> None:
        """Stops at once, even mid-step."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s ended with an error", self.name, exc_info=task.exception())
