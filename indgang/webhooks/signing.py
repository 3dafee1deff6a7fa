"""`X-Indgang-Signature: sha256=<hex HMAC-SHA256 of the raw body>` (api.md)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Indgang-Signature"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(body, secret), signature)
