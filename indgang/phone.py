"""Phone numbers: validated and normalised (E.164) with `phonenumbers`; remembered only as a
keyed hash, so a leaked key list reveals no numbers."""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers

DEFAULT_REGION = "DK"


def normalise_phone(text: str, region: str = DEFAULT_REGION) -> str | None:
    """ "20 12 34 56", "+45 2012 3456", "0045 20123456" -> "+4520123456"; None when not a valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(phone_e164: str) -> str:
    """ "+4520123456" -> "+45 20 12 34 56", as people read and say it."""
    number = phonenumbers.parse(phone_e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def phone_hash(phone_e164: str, key: str) -> str:
    """HMAC-SHA256 of the normalised number with the setting PHONE_HASH_KEY."""
    return hmac.new(key.encode(), phone_e164.encode(), hashlib.sha256).hexdigest()
