"""The optional second factor: time-based one-time codes (RFC 6238, as every authenticator app
makes them), with pyotp; the enrolment QR code as inline SVG, with segno."""

from __future__ import annotations

import hmac
import time

import pyotp
import segno

ISSUER = "Indgang"
DRIFT_STEPS = 1  # a code from the step before or after is accepted too (clocks and typing)


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth URI as an SVG element to put in the page (no image file, no script)."""
    return segno.make(uri, error="m").svg_inline(scale=5, title="otpauth")


def spaced(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str) -> int | None:
    """The time step whose code `code` is, within the allowed drift; None when it is none of them.
    The step lets the caller refuse a code that was used before."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        moment = now + offset * totp.interval
        if hmac.compare_digest(totp.at(moment), code):
            return int(moment // totp.interval)  # pyotp's own step (its timecode) for that moment
    return None
