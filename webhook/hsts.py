"""`Strict-Transport-Security` on every response in production: once a browser has seen the
gateway over HTTPS it never sends a request (or the staff cookie) to it in clear text again."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ONE_YEAR = 365 * 24 * 60 * 60


class StrictTransportSecurity:
    def __init__(self, app: ASGIApp, max_age: int = ONE_YEAR) -> None:
        self.app = app
        self.value = f"max-age={max_age}; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Strict-Transport-Security"] = self.value
            await send(message)

        await self.app(scope, receive, send_with_header)
