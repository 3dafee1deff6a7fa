"""Word patterns: a small language for phrases, matched over the folded words of a message.

A pattern is a sequence of elements separated by spaces, e.g. ``"vil|gerne|bare @die"``:

- ``a|b|c``    one word out of several alternatives (``|`` binds words, not phrases)
- ``(a b|c)``  one phrase out of several: the pattern is compiled once per option
- ``word*``    a word that starts with `word` (Danish compounds: ``selvmord*``)
- ``*word``    a word that ends with `word` (``*vold`` also matches "partnervold")
- ``@name``    the alternatives of the lexicon entry `name`
- ``#`` / ``#10``  any number / any number of at least 10
- ``x?``       an optional element
- ``..``       the next element may come up to WIDE_GAP words later (otherwise NEAR_GAP)
- ``+x``       the element must follow the previous one directly
- ``$``        the previous element must end its clause (",", ".", "og", "men" or the end)
- ``!a|b``     the word right after the previous element must not be one of these

Elements never match across a sentence boundary. Whole words of at least FUZZY_MIN letters also
match with one typo (substitution, insertion, deletion or swapped neighbours; the first letter
must be right): "overdossis", "voldtagt". Prefixes and suffixes match exactly, because one typo
away from a stem are everyday words ("selvmod-sigende" is not "selvmord", "underst-øtte" is not
"underret-ning"); write common misspellings of a stem out as prefixes of their own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from rapidfuzz.distance import OSA

from indgang.safety.text import Words, fold

NEAR_GAP = 1
WIDE_GAP = 4
FUZZY_MIN = 7
_CACHE_LIMIT = 8192

Payload = TypeVar("Payload")
_GROUP = re.compile(r"\(([^()]*)\)")


class PatternError(ValueError):
    """A pattern that cannot be compiled (unknown lexicon entry, misplaced operator)."""


class WordClass:
    """A set of acceptable words; answers are cached per word because messages repeat words."""

    def __init__(self, alternatives: Sequence[str]) -> None:
        words: set[str] = set()
        prefixes: list[str] = []
        suffixes: list[str] = []
        self.min_number: int | None = None
        for alt in alternatives:
            if alt.startswith("#"):
                self.min_number = int(alt[1:] or 0)
            elif alt.endswith("*"):
                prefixes.append(fold(alt[:-1]))
            elif alt.startswith("*"):
                suffixes.append(fold(alt[1:]))
            else:
                words.add(fold(alt))
        self.words = frozenset(words)
        self.prefixes = tuple(prefixes)
        self.suffixes = tuple(suffixes)
        self.long_words = tuple(w for w in self.words if len(w) >= FUZZY_MIN)
        self._seen: dict[str, bool] = {}

    def accepts(self, word: str) -> bool:
        known = self._seen.get(word)
        if known is None:
            if len(self._seen) >= _CACHE_LIMIT:
                self._seen.clear()
            known = self._seen[word] = self._decide(word)
        return known

    def _decide(self, word: str) -> bool:
        if word in self.words:
            return True
        if word.isdecimal():
            return self.min_number is not None and int(word) >= self.min_number
        if word.startswith(self.prefixes) or word.endswith(self.suffixes):
            return True
        return len(word) >= FUZZY_MIN and self._near(word)

    def _near(self, word: str) -> bool:
        return any(
            known[0] == word[0] and OSA.distance(known, word, score_cutoff=1) <= 1
            for known in self.long_words
        )


@dataclass(frozen=True)
class Element:
    words: WordClass
    gap: int  # how many words may lie between the previous element and this one
    clause_end: bool = False
    not_next: WordClass | None = None

    def fits(self, text: Words, i: int) -> bool:
        if self.clause_end and not text.ends_clause(i):
            return False
        if self.not_next is not None and i + 1 < len(text) and text.sentence[i + 1] == text.sentence[i]:
            return not self.not_next.accepts(text.words[i + 1])
        return True


@dataclass(frozen=True)
class Pattern:
    elements: tuple[Element, ...]
    source: str

    def match_at(self, text: Words, masked: Sequence[bool], start: int) -> tuple[int, ...] | None:
        """Positions of the elements for the first match that starts at `start`, if any."""
        first = self.elements[0]
        if masked[start] or not first.words.accepts(text.words[start]) or not first.fits(text, start):
            return None
        return self._extend(text, masked, (start,))

    def _extend(self, text: Words, masked: Sequence[bool], found: tuple[int, ...]) -> tuple[int, ...] | None:
        if len(found) == len(self.elements):
            return found
        element = self.elements[len(found)]
        last = found[-1]
        for i in range(last + 1, min(last + 2 + element.gap, len(text))):
            if text.sentence[i] != text.sentence[last]:
                break
            if masked[i] or not element.words.accepts(text.words[i]) or not element.fits(text, i):
                continue
            done = self._extend(text, masked, (*found, i))
            if done is not None:
                return done
        return None


class Lexicon:
    """Named lists of alternatives (e.g. `@negator`), which may refer to other entries."""

    def __init__(self, entries: Mapping[str, Sequence[str]]) -> None:
        self._entries = entries
        self._classes: dict[tuple[str, ...], WordClass] = {}

    def expand(self, spec: str, seen: tuple[str, ...] = ()) -> tuple[str, ...]:
        if not isinstance(spec, str):  # YAML reads a bare yes/no/true as a boolean: quote it
            raise PatternError(f"not a word: {spec!r} in @{seen[-1] if seen else '?'}")
        out: list[str] = []
        for alt in spec.split("|"):
            if alt.startswith("@"):
                name = alt[1:]
                if name not in self._entries:
                    raise PatternError(f"unknown lexicon entry @{name}")
                if name in seen:
                    raise PatternError(f"lexicon entry @{name} refers to itself")
                for entry in self._entries[name]:
                    out.extend(self.expand(entry, (*seen, name)))
            elif alt:
                out.append(alt)
        return tuple(out)

    def word_class(self, spec: str) -> WordClass:
        """One shared WordClass per distinct set of alternatives, so their caches are shared too."""
        key = tuple(sorted(set(self.expand(spec))))
        if not key:
            raise PatternError(f"empty alternatives in {spec!r}")
        if key not in self._classes:
            self._classes[key] = WordClass(key)
        return self._classes[key]

    def words(self, name: str) -> frozenset[str]:
        """The plain words of an entry, folded (for lookups in code, e.g. negators)."""
        return self.word_class(f"@{name}").words


@dataclass
class _Spec:
    alternatives: str
    gap: int
    optional: bool = False
    clause_end: bool = False
    not_next: str | None = None


def _ungroup(source: str) -> list[str]:
    """One source per option of each ``( | )`` group: "(was gone|died)" -> "was gone", "died"."""
    group = _GROUP.search(source)
    if group is None:
        if "(" in source or ")" in source:
            raise PatternError(f"unbalanced parentheses in {source!r}")
        return [source]
    return [
        variant
        for option in group.group(1).split("|")
        for variant in _ungroup(source[: group.start()] + option + source[group.end() :])
    ]


def compile_pattern(source: str, lexicon: Lexicon) -> list[Pattern]:
    """The variants of a pattern (one per phrase of its groups and per combination of its
    optional elements)."""
    return [pattern for variant in _ungroup(source) for pattern in _compile(variant, source, lexicon)]


def _compile(variant: str, source: str, lexicon: Lexicon) -> list[Pattern]:
    specs: list[_Spec] = []
    gap = NEAR_GAP
    for part in variant.split():
        if part == "..":
            gap = WIDE_GAP
        elif part == "$" or part.startswith("!"):
            if not specs:
                raise PatternError(f"{part!r} needs an element before it in {source!r}")
            if part == "$":
                specs[-1].clause_end = True
            else:
                specs[-1].not_next = part[1:]
        else:
            if part.startswith("+"):
                gap, part = 0, part[1:]
            optional = part.endswith("?")
            if any(op in part for op in ("$", "!", "..")):
                raise PatternError(f"operator inside the alternatives {part!r} in {source!r}")
            specs.append(_Spec(part.rstrip("?"), gap, optional))
            gap = NEAR_GAP
    variants: list[list[_Spec | None]] = [[]]
    for spec in specs:
        variants = [[*v, spec] for v in variants] + ([[*v, None] for v in variants] if spec.optional else [])
    patterns = []
    for variant in variants:
        elements: list[Element] = []
        carried = 0  # a skipped optional element leaves its gap (and its own width) to the next one
        for spec in variant:
            if spec is None:
                carried += 1
                continue
            elements.append(
                Element(
                    words=lexicon.word_class(spec.alternatives),
                    gap=spec.gap + carried if elements else 0,
                    clause_end=spec.clause_end,
                    not_next=lexicon.word_class(spec.not_next) if spec.not_next else None,
                )
            )
            carried = 0
        if elements:
            patterns.append(Pattern(tuple(elements), source))
    if not patterns:
        raise PatternError(f"pattern {source!r} has no required element")
    return patterns


class PatternSet(Generic[Payload]):
    """Many patterns, each with a payload; finds all their matches in a message quickly.

    Only patterns whose first element accepts a word are tried from that word. Which those are
    comes from an index over the first elements' words, prefixes, suffixes and typo neighbours
    (the same answers as WordClass.accepts, without asking every class), cached per word.
    """

    def __init__(self, entries: Sequence[tuple[Pattern, Payload]]) -> None:
        self.entries = tuple(entries)
        self._exact: dict[str, set[int]] = defaultdict(set)
        self._prefixes: dict[str, set[int]] = defaultdict(set)
        self._suffixes: dict[str, set[int]] = defaultdict(set)
        self._numbers: list[tuple[int, int]] = []  # (smallest number, pattern index)
        self._near: dict[str, list[tuple[str, int]]] = defaultdict(list)  # by first letter
        for index, (pattern, _) in enumerate(self.entries):
            words = pattern.elements[0].words
            for word in words.words:
                self._exact[word].add(index)
            for prefix in words.prefixes:
                self._prefixes[prefix].add(index)
            for suffix in words.suffixes:
                self._suffixes[suffix].add(index)
            if words.min_number is not None:
                self._numbers.append((words.min_number, index))
            for word in words.long_words:
                self._near[word[0]].append((word, index))
        self._starts = lru_cache(maxsize=_CACHE_LIMIT)(self._starting_with)

    def _starting_with(self, word: str) -> tuple[int, ...]:
        found = set(self._exact.get(word, ()))
        if word.isdecimal():
            found.update(index for least, index in self._numbers if int(word) >= least)
            return tuple(sorted(found))
        for size in range(1, len(word) + 1):
            found.update(self._prefixes.get(word[:size], ()))
            found.update(self._suffixes.get(word[-size:], ()))
        if len(word) >= FUZZY_MIN:
            found.update(
                index
                for known, index in self._near.get(word[0], ())
                if index not in found and OSA.distance(known, word, score_cutoff=1) <= 1
            )
        return tuple(sorted(found))

    def find(self, text: Words, masked: Sequence[bool]) -> Iterator[tuple[Payload, tuple[int, ...]]]:
        for start, word in enumerate(text.words):
            if masked[start]:
                continue
            for index in self._starts(word):
                pattern, payload = self.entries[index]
                found = pattern.match_at(text, masked, start)
                if found is not None:
                    yield payload, found
