"""From what a citizen types to search terms: words, æ/ø/å restored, typos folded, stems.

People write "hjaelp til hjemlos", "alkohool", "sagsbehandlre" or plain English. `Speller` knows
the words of the indexed texts and maps an unknown word to one of them: first by its spelling-blind
key (ae/oe/aa and æ/ø/å, o for ø, a for å), then by edit distance. `terms()` then stems each word
with the Snowball stemmer of its language (Danish unless wordfreq knows it better as English).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_DANISH, STOPWORDS_EN
from rapidfuzz import process
from rapidfuzz.distance import OSA
from wordfreq import zipf_frequency

_WORD = re.compile(r"[0-9a-zæøåäöüéèáà]+")
_SECTION = re.compile(r"§+\s*")

# Words that say nothing about the need, on top of the libraries' lists (which are short for English).
_MORE_STOPWORDS = (
    "hej hejsa tak gerne bare lige mere meget få får fik kunne kender nogle nogen noget sådan "
    "hvad hvem hvor hvordan hvornår hvorfor findes fandt hele tiden altid "
    "i me my mine we us our you your he she him her his they them its it's i'm im "
    "can could would should do does did have has had am how what where who when why here some any "
    "about from up out so very just get got want like please hi hello thanks"
)
STOPWORDS = frozenset(STOPWORDS_DANISH) | frozenset(STOPWORDS_EN) | frozenset(_MORE_STOPWORDS.split())


def fold(word: str) -> str:
    """A spelling-blind key: "hjælp", "hjaelp" and "hjelp" share one, as do "hjemløs" and "hjemlos"."""
    for letter, plain in (("æ", "e"), ("ø", "o"), ("å", "a"), ("ae", "e"), ("oe", "o"), ("aa", "a")):
        word = word.replace(letter, plain)
    return word


def words(text: str) -> list[str]:
    """Lower-case words; "§ 85" becomes "paragraf 85" so a paragraph matches however it is written."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _WORD.findall(_SECTION.sub(" paragraf ", text))


def _keep(word: str, previous: str | None) -> bool:
    if word in STOPWORDS:
        return False
    if word.isdigit():
        # Ages and counts ("14", "10. klasse") match stray numbers in offers ("14 dage"); paragraphs
        # and phone-like numbers (112, 1888) carry meaning.
        return previous == "paragraf" or len(word) >= 3
    return len(word) > 1


class Speller:
    """Maps a word to the indexed vocabulary: as is, as another inflection of a known word, by its
    spelling-blind key, or by a near spelling (one edit in 5 letters, two in 10; a swap of two
    letters is one edit; none below 4 letters) when the word is no common Danish or English word."""

    def __init__(self, vocabulary: Iterable[str]) -> None:
        counts = Counter(vocabulary)
        self._known = frozenset(counts)
        self._stems = frozenset(stem for word in counts for stem in _stems(word))
        by_key: dict[str, str] = {}
        for word, _ in counts.most_common():
            by_key.setdefault(fold(word), word)
        self._by_key = by_key
        self._keys = list(by_key)
        self.correct = lru_cache(maxsize=20_000)(self._correct)

    def _correct(self, word: str) -> str:
        if word in self._known or word.isdigit():
            return word
        long = len(word) >= 4
        if long and self._stems.intersection(_stems(word)):
            return word  # another inflection of a known word
        key = fold(word)
        if key in self._by_key:
            return self._by_key[key]
        if not long or _is_common_word(word):
            return word  # "fester" (parties) is a word of its own, not a typo of "foster"
        # Optimal string alignment: a swapped pair of letters ("sagsbehandlre") is one edit.
        found = process.extractOne(key, self._keys, scorer=OSA.normalized_similarity, score_cutoff=0.8)
        return self._by_key[found[0]] if found else word

    def text(self, text: str) -> str:
        """The text with each word replaced by its known spelling (for the embedding model)."""
        return " ".join(self.correct(w) for w in words(text))


def _is_common_word(word: str) -> bool:
    """A real Danish or English word (wordfreq's Zipf scale: 2.5 is about once per 3 million words)."""
    return max(zipf_frequency(word, "da"), zipf_frequency(word, "en")) >= COMMON_WORD_ZIPF


COMMON_WORD_ZIPF = 2.5

_DANISH = Stemmer.Stemmer("danish")
_ENGLISH = Stemmer.Stemmer("english")


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """The word's stem by the stemmer of its language: English when wordfreq knows it better as an
    English word ("drinking" -> "drink"), else Danish ("drikker" -> "drik")."""
    if zipf_frequency(word, "en") > zipf_frequency(word, "da"):
        return _ENGLISH.stemWord(word)
    return _DANISH.stemWord(word)


def _stems(word: str) -> set[str]:
    """Both stemmers' stems: to recognise another inflection of a known word in either language."""
    return {_DANISH.stemWord(word), _ENGLISH.stemWord(word)}


def terms(text: str, speller: Speller | None = None) -> list[str]:
    """The search terms of a text: content words, spelled as the index knows them, stemmed."""
    out: list[str] = []
    previous = None
    for word in words(text):
        if _keep(word, previous):
            fixed = speller.correct(word) if speller else word
            if fixed not in STOPWORDS:
                out.append(stem(fixed))
        previous = word
    return out
