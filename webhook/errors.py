"""One error type for the HTTP API and one handler that renders it (as Zulip's JsonableError).

A route or dependency raises `ApiError` (or a subclass) with a status, a machine-readable code
and a human-readable detail; every API error body is then `{"error": ..., "detail": ...}`
(`webhook.schemas.ErrorBody`), with the same headers rules, and no route builds one by hand.
Errors of the domain that mean the same thing everywhere (a handoff transition the state does
not allow) are mapped here too, so routers just call the domain. So is Redis being unreachable:
a route with no answer of its own without Redis (the SMS webhook and the web chat have one,
indgang/spool.py) answers 503 with Retry-After, as `unavailable` in the API and as a short
Danish/English page for a browser, never a 500 with a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from indgang.handoff import HandoffError, HeldByOther
from indgang.i18n import DEFAULT_LANGUAGE, t
from indgang.records import db as records
from indgang.redis_store import UNREACHABLE
from webhook.templating import templates

log = logging.getLogger(__name__)

# Long enough for a supervised Redis to be restarted (indgang/devstack.py, systemd), short
# enough that a staff member's browser or a client's retry finds it back soon.
RETRY_AFTER_SECONDS = 30
_API_PREFIXES = ("/api/", "/twilio/")


class ApiError(Exception):
    def __init__(
        self, status_code: int, error: str, detail: Any, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.headers = headers or {}

    def response(self, **extra: Any) -> JSONResponse:
        body = {"error": self.error, "detail": self.detail, **extra}
        return JSONResponse(body, status_code=self.status_code, headers=self.headers)


class Unavailable(ApiError):
    """503: the store is unreachable; the client may try again after Retry-After."""

    def __init__(self) -> None:
        detail = t("chat.store_down_unsaved", DEFAULT_LANGUAGE)
        super().__init__(503, "unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def handoff_error(request: Request, exc: Exception) -> Response:
    """A takeover, reply or release the conversation's state does not allow is a conflict (409);
    closing what another staff member holds is not allowed (403)."""
    assert isinstance(exc, HandoffError)
    if isinstance(exc, HeldByOther):
        return ApiError(403, "forbidden", str(exc)).response()
    return ApiError(409, "conflict", str(exc)).response()


async def unreadable_body(request: Request, exc: Exception) -> Response:
    """A body that is not text (bytes that are not UTF-8) is a malformed request like any other:
    422 naming the body (api.md), not FastAPI's bare 400, which the schema does not declare."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        problem = {"type": "json_invalid", "loc": ["body"], "msg": "the body is not UTF-8 JSON"}
        return JSONResponse({"detail": [problem]}, status_code=422)
    return await http_exception_handler(request, exc)


async def store_unreachable(request: Request, exc: Exception) -> Response:
    """Redis or the SQL database is unreachable (refused or timed out) under a route: 503, for a
    page a short page."""
    store = "database" if isinstance(exc, records.UNREACHABLE) else "redis"
    log.warning(f"{store} unreachable: answered 503", extra={"error": type(exc).__name__})
    if request.url.path.startswith(_API_PREFIXES):
        return Unavailable().response()
    texts = {lang: t("chat.store_down_unsaved", lang) for lang in ("da", "en")}
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    return templates.TemplateResponse(request, "unavailable.html", texts, status_code=503, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, unreadable_body)
    app.add_exception_handler(HandoffError, handoff_error)
    for unreachable in (*UNREACHABLE, *records.UNREACHABLE):
        app.add_exception_handler(unreachable, store_unreachable)
