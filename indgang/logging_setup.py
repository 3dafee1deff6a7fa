"""Structured JSON logs for every process.

Message text and phone numbers never go to the logs at INFO: log records carry ids, states and
rule names only. Conversation ids of SMS conversations are keyed hashes of the number.
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
