"""Structured JSON logs for every process.

No personal data goes to the logs: no message text, phone number, name, conversation id or
token, and never a risk beside anything that identifies a conversation. Records carry states,
counts, rule names and the ids of our own records (events, bookings, SMS sids). Requests are
logged by webhook.access_log as method, route template, status and duration.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs full URLs at INFO, which may carry query text: keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # uvicorn's access log writes full paths and queries and the client's address; the gateway
    # turns it off, and this keeps it off under any other way of starting uvicorn.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
