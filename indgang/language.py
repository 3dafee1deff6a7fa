"""A light guess of whether a message is Danish or English, for answering in the writer's language."""

from __future__ import annotations

import re

from indgang.i18n import Language

_WORD = re.compile(r"[a-zæøå']+")
# Short, frequent function words are the most reliable signal in one-line messages.
_ENGLISH = frozenset(
    [
        "i",
        "i'm",
        "im",
        "my",
        "me",
        "you",
        "your",
        "is",
        "are",
        "am",
        "was",
        "the",
        "a",
        "an",
        "and",
        "or",
        "to",
        "of",
        "in",
        "on",
        "for",
        "with",
        "what",
        "where",
        "how",
        "can",
        "could",
        "would",
        "need",
        "help",
        "want",
        "have",
        "has",
        "do",
        "does",
        "not",
        "it",
        "he",
        "she",
        "they",
        "we",
        "our",
        "his",
        "her",
        "please",
        "hello",
        "hi",
        "hey",
        "thanks",
        "thank",
        "who",
        "which",
        "when",
        "there",
        "this",
        "that",
    ]
)
_DANISH = frozenset(
    [
        "jeg",
        "mig",
        "min",
        "mit",
        "mine",
        "du",
        "din",
        "dit",
        "er",
        "var",
        "og",
        "eller",
        "at",
        "af",
        "i",
        "på",
        "til",
        "med",
        "hvad",
        "hvor",
        "hvordan",
        "kan",
        "kunne",
        "vil",
        "skal",
        "har",
        "have",
        "ikke",
        "det",
        "den",
        "han",
        "hun",
        "de",
        "vi",
        "vores",
        "hans",
        "hendes",
        "hej",
        "tak",
        "hvem",
        "hvilke",
        "når",
        "der",
        "denne",
        "dette",
        "en",
        "et",
        "som",
        "gerne",
        "også",
        "mere",
        "søn",
        "datter",
        "mor",
        "far",
    ]
)


def guess_language(text: str) -> Language | None:
    """'da' or 'en' when the words say so clearly; None when the message is too short to tell."""
    words = _WORD.findall(text.lower())
    english = sum(w in _ENGLISH for w in words)
    danish = sum(w in _DANISH for w in words) + (2 if re.search(r"[æøå]", text.lower()) else 0)
    if (english >= 2 and english > danish) or (english == 1 and danish == 0 and len(words) <= 3):
        return "en"
    if danish >= 1 and danish >= english:
        return "da"
    return None
