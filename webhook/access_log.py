"""The gateway's access log: method, route template, status and duration, nothing else.

Uvicorn's own access log is off (webhook.main.run): it writes the full path and query, which
hold conversation ids, the .ics token and the citizen's words in `/api/v1/offers?q=...`, and the
client's address. The route template (`/api/v1/chat/{conversation_id}/messages`) holds none.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("indgang.access")
UNMATCHED = "(no route)"


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app starts a response

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            # the router writes the matched route into the scope; its path is the template
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            log.info(
                "access",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
