"""SMS keywords, Danish and English, recognised before the bot sees a message.

A keyword counts only as the whole message ("stop", "Stop!", "HJÆLP", "hjaelp"), never inside
a sentence: "jeg har brug for hjælp" is a question for the bot.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from indgang.i18n import Language


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    ERASE = "erase"


# Folded spelling -> (keyword, the language it tells; None for words both languages use).
_KEYWORDS: dict[str, tuple[Keyword, Language | None]] = {
    "stop": (Keyword.STOP, None),
    "stopp": (Keyword.STOP, "da"),
    "start": (Keyword.START, None),
    "hjaelp": (Keyword.HELP, "da"),
    "hjalp": (Keyword.HELP, "da"),
    "help": (Keyword.HELP, "en"),
    "slet": (Keyword.ERASE, "da"),
    "delete": (Keyword.ERASE, "en"),
}
_YES = frozenset({"ja", "j", "yes", "y", "ok", "slet", "delete"})
_NO = frozenset({"nej", "n", "no", "fortryd", "cancel"})
# Letters that do not decompose into a base letter and an accent.
_SPELLED_OUT = str.maketrans({"æ": "ae", "ø": "o", "ß": "ss"})
_NOT_WORD = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Lower case, accents and punctuation gone: "HJÆLP!" -> "hjaelp", "Hjälp" -> "hjalp"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_SPELLED_OUT))
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_WORD.sub(" ", letters).strip()


def match(text: str) -> tuple[Keyword, Language | None] | None:
    """The keyword the whole message is, and the language it was written in when that shows."""
    return _KEYWORDS.get(fold(text))


def confirmation(text: str) -> bool | None:
    """True for yes, False for no, None for anything else (an answer to the erase question)."""
    word = fold(text)
    if word in _YES:
        return True
    if word in _NO:
        return False
    return None
