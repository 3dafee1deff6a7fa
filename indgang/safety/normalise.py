"""Text as the safety check reads it: one canonical form, whatever the writer's keyboard did.

A zero-width space or a soft hyphen inside a word must not hide it, full-width or styled letters
must read as letters, and broken input (a lone surrogate from a bad client) must never crash the
check. Runs before every layer.
"""

from __future__ import annotations

import unicodedata

# Letters from other scripts that look like Latin ones and are used to dodge word filters.
_LOOKALIKES = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "А": "A",
        "Е": "E",
        "О": "O",
        "Р": "P",
        "С": "C",
        "Х": "X",
        "І": "I",
        "ο": "o",
        "α": "a",
        "ε": "e",
        "ι": "i",
    }
)
# Separators that are not ordinary spaces become spaces; format characters (zero-width, soft
# hyphen, bidi marks) vanish, so "selv\u00admord" reads "selvmord".
_SPACE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc"})


def storable(text: str) -> str:
    """The text with lone surrogates (from a broken client) replaced by U+FFFD, so it can be
    encoded as UTF-8 and stored; everything else exactly as written."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean(text: str) -> str:
    """Canonical text: lone surrogates replaced, format characters removed, look-alikes mapped, NFKC."""
    if not isinstance(text, str):
        return ""
    out = []
    for char in storable(text):
        category = unicodedata.category(char)
        if category == "Cf":
            continue
        out.append(" " if category in _SPACE_CATEGORIES and char not in "\n" else char)
    # NFKC last, so a mark that a removed zero-width character kept apart (and a look-alike
    # mapped to its Latin letter) composes now: cleaning clean text changes nothing.
    return unicodedata.normalize("NFKC", "".join(out).translate(_LOOKALIKES))
