"""Normalised words of a message, with the sentence and clause each belongs to.

People write Danish with and without æ, ø and å ("dø", "doe", "do"; "slå", "slaa", "sla"), with
stretched letters ("neeej") and without punctuation. Every word, in messages and in the rule
files alike, is folded to one spelling: lower case, æ/ae -> a, ø/oe -> o, å/aa -> a, other accents
dropped, apostrophes removed ("don't" -> "dont"), runs of one letter collapsed ("ikke" -> "ike")
and texting spellings taken as the word ("ikk" -> "ike").
Folding both sides the same way means rule authors write ordinary Danish.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_DIGRAPHS = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa"})
_APOSTROPHES = re.compile(r"['’´`]")
_REPEATS = re.compile(r"([a-z])\1+")
# Texting spellings folded to the word itself, so a rule written with "ikke" reads "ik" and "ikk"
# ("hun kan ikk faa luft").
_TEXTING = {"ik": "ike"}
# A word (letters or digits, with inner apostrophes) or a punctuation mark that ends a clause.
_TOKEN = re.compile(r"[^\W_]+(?:['’´`][^\W_]+)*|[.!?;:,\n]")
_SENTENCE_MARKS = frozenset(".!?\n")
# Where a sentence may end in raw text: its marks followed by a space, or a line break.
_SENTENCE_END = re.compile(r"[.!?]+(?=\s)|\n+")
# Words that open a new clause: negation and "at the end of the clause" stop here.
_CLAUSE_OPENERS = frozenset({"og", "men", "sa", "and", "but", "so"})
# Abbreviations whose full stop does not end the sentence ("indtog ca. 40 tabletter"), folded.
_ABBREVIATIONS = frozenset(
    {
        "ca",
        "cirka",
        "fx",
        "eks",
        "bla",
        "kl",
        "nr",
        "dvs",
        "osv",
        "evt",
        "pga",
        "mht",
        "inkl",
        "approx",
        "eg",
        "ie",
        "etc",
        "vs",
        "dr",
        "mr",
        "mrs",
        "ms",
        "st",
        "no",
    }
)


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """One spelling for every way of writing a word (see the module docstring)."""
    folded = unicodedata.normalize("NFKD", word.lower().translate(_DIGRAPHS))
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = _APOSTROPHES.sub("", folded).replace("ae", "a").replace("oe", "o")
    folded = _REPEATS.sub(r"\1", folded)
    return _TEXTING.get(folded, folded)


@dataclass(frozen=True)
class Words:
    """A message as folded words; `sentence[i]` and `clause[i]` number the parts word i is in."""

    words: tuple[str, ...]
    sentence: tuple[int, ...]
    clause: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.words)

    def ends_clause(self, i: int) -> bool:
        return i + 1 >= len(self.words) or self.clause[i + 1] != self.clause[i]


def split(text: str) -> Words:
    words: list[str] = []
    sentences: list[int] = []
    clauses: list[int] = []
    sentence = clause = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if (
            token == "."
            and words
            and words[-1] in _ABBREVIATIONS
            and match.start()
            and text[match.start() - 1].isalnum()
        ):
            continue
        if token in _SENTENCE_MARKS:
            sentence += 1
            clause += 1
            continue
        if not token[0].isalnum():  # , ; :
            clause += 1
            continue
        word = fold(token)
        if word in _CLAUSE_OPENERS and words:
            clause += 1
        words.append(word)
        sentences.append(sentence)
        clauses.append(clause)
    return Words(tuple(words), tuple(sentences), tuple(clauses))


def sentences(text: str) -> list[str]:
    """The raw sentences of a message, for reading each one alone. A full stop after a number
    ("7. sal", "1. maj") or an abbreviation ("ca. 40") does not end one."""
    out: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        before = text[start : end.start()].split()
        last = fold(before[-1]) if before else ""
        if end.group() == "." and (last.isdigit() or last in _ABBREVIATIONS):
            continue
        out.append(text[start : end.end()].strip())
        start = end.end()
    out.append(text[start:].strip())
    return [s for s in out if s]
