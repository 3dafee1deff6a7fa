"""Webhook signatures, version 2 (api.md): `X-Indgang-Timestamp: <unix seconds>` and
`X-Indgang-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`.

The timestamp is inside the signed text, so a receiver that rejects old timestamps also rejects
a captured delivery sent again later: changing the timestamp breaks the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Indgang-Signature"
TIMESTAMP_HEADER = "X-Indgang-Timestamp"
TOLERANCE_SECONDS = 5 * 60  # older than this is a replay; a receiver's clock may be this far off


def signature(body: bytes, secret: str, timestamp: str) -> str:
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, now: float | None = None) -> dict[str, str]:
    """The two headers for one delivery attempt, signed at `now` (each attempt signs afresh)."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(body, secret, timestamp)}


def verify(
    body: bytes,
    secret: str,
    timestamp: str | None,
    signature_header: str | None,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: the timestamp within `tolerance` of now (either way), and the
    signature over it and the body right, compared in constant time."""
    if not timestamp or not timestamp.isdigit() or not signature_header:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(body, secret, timestamp), signature_header)
