"""Outbound webhooks: events for the municipality's systems, signed and delivered with retries."""

from indgang.webhooks.dispatcher import DeadLetter, WebhookDispatcher, dead_letters, retry_dead_letter
from indgang.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeadLetter",
    "WebhookDispatcher",
    "dead_letters",
    "retry_dead_letter",
    "sign",
    "verify",
]
