"""Twilio through its official SDK: messages created with the REST API (async, so the event loop
is never blocked), transient failures retried with back-off, and webhook signatures checked.

`settings.twilio_api_base` points the SDK's API domain elsewhere (tests use a local fake Twilio);
the requests are the SDK's own, unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance

from indgang.settings import Settings

INBOUND_PATH = "/twilio/sms"
STATUS_PATH = "/twilio/status"
REQUEST_TIMEOUT_SECONDS = 15.0

# The SDK logs every request and response at INFO; keep it to warnings.
_http_log = logging.getLogger("indgang.sms.twilio_http")
_http_log.setLevel(logging.WARNING)


def is_configured(settings: Settings) -> bool:
    s = settings
    sender = s.twilio_messaging_service_sid or s.twilio_from_number
    return bool(s.twilio_account_sid and s.twilio_auth_token and sender)


def public_url(settings: Settings, path: str, query: str = "") -> str:
    """The URL Twilio calls (and signs): the public base URL, not what a proxy forwards to us."""
    url = f"{settings.public_base_url.rstrip('/')}{path}"
    return f"{url}?{query}" if query else url


def status_callback_url(settings: Settings, conversation_id: str) -> str:
    """Where Twilio reports a message's delivery; the conversation id finds its record."""
    return public_url(settings, STATUS_PATH, urlencode({"conversation": conversation_id}))


def signature_valid(settings: Settings, path: str, query: str, params: object, signature: str | None) -> bool:
    """Twilio's HMAC-SHA1 of the public URL and the form fields, with our auth token."""
    if not signature or not settings.twilio_auth_token:
        return False
    validator = RequestValidator(settings.twilio_auth_token)
    return bool(validator.validate(public_url(settings, path, query), params, signature))


def is_transient(exc: BaseException) -> bool:
    """Worth another try: Twilio busy or failing (429, 5xx), the network, a timeout. A 4xx is
    final (an invalid or blocked number will not get better)."""
    if isinstance(exc, TwilioRestException):
        return exc.status == 429 or exc.status >= 500
    return isinstance(exc, aiohttp.ClientError | TimeoutError)


async def create_message(
    settings: Settings, to: str, body: str, status_callback: str | None
) -> MessageInstance:
    """POST .../Messages.json through the SDK; raises the last error when every attempt failed."""
    s = settings
    sender = (
        {"messaging_service_sid": s.twilio_messaging_service_sid}
        if s.twilio_messaging_service_sid
        else {"from_": s.twilio_from_number}
    )
    retrying = AsyncRetrying(
        stop=stop_after_attempt(s.sms_send_attempts),
        wait=wait_exponential(multiplier=s.sms_retry_wait_seconds, max=30),
        retry=retry_if_exception(is_transient),
        reraise=True,
    )
    async with AsyncTwilioHttpClient(logger=_http_log) as http:
        client = Client(s.twilio_account_sid, s.twilio_auth_token, http_client=http)
        client.api.base_url = s.twilio_api_base.rstrip("/")

        async def attempt() -> MessageInstance:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                return await client.messages.create_async(
                    to=to, body=body, status_callback=status_callback, **sender
                )

        return await retrying(attempt)
