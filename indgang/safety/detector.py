"""The rules layer of the safety check: precise patterns for the phrasings people use most.

indgang/safety/check.py combines it with the learned layer and the risk concepts. The steps,
all over folded words (indgang/safety/text.py):

1. everyday idioms are masked ("slå tiden ihjel", "jeg dør af grin");
2. context markers are found (a distant past, a recent time, a young writer, ...);
3. the rules' patterns are matched, and a match counts unless it is negated just before or inside
   ("jeg vil ikke dø"; a rule may contain the negation itself: "jeg vil ikke leve mere"), calmed
   by a distant past ("for 10 år siden", "hun var selvskadende"), missing a required marker,
   calmed by a marker (a fight at school), or has the wrong subject ("han vil slå mig ihjel" is
   violence, not suicide; Danish puts the subject after the verb in "så slår han mig ihjel").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from indgang.i18n import Language
from indgang.language import guess_language
from indgang.safety.rules import Rule, RuleSet, default_rules
from indgang.safety.text import Words, split

NEGATION_REACH = 4  # words before a match in which a negation still counts ("ikke tænkt mig at ...")
SUBJECT_REACH = 10  # words before a match searched for its subject


Risk = Literal["none", "concern", "acute"]
RISK_ORDER: dict[str, int] = {"none": 0, "concern": 1, "acute": 2}


@dataclass(frozen=True)
class SafetyAssessment:
    crisis: bool  # danger to life or health: answer with the emergency reply at once
    categories: frozenset[str]  # of "suicide", "self_harm", "violence", "child_at_risk"
    child_concern: bool  # a concern for a child that is not acute (guidance on reporting it)
    language: Language  # the writer's language, best guess
    about_other: bool  # the writer writes about someone else (a relative, a friend, a child)
    young: bool  # the writer seems to be a child or young person
    rules: tuple[str, ...]  # ids of the rules and idioms that fired (never message text)
    risk: Risk = "none"  # acute: danger now; concern: possible danger, a caring check-in
    layers: tuple[str, ...] = ()  # the layers that found danger (rules, model, concepts, window, error)
    weak: bool = False  # only weak rules (a danger's bare name) found it: see Rule.weak


@dataclass(frozen=True)
class _Hit:
    rule: Rule
    language: str
    positions: tuple[int, ...]


@dataclass
class _Message:
    """One message under assessment: its words, what is masked, and where markers are."""

    words: Words
    english: bool
    masked: list[bool]
    scopes: dict[str, str]
    markers: dict[str, set[tuple[int, int]]] = field(default_factory=dict)  # name -> (sentence, clause)

    def has(self, marker: str, at: int) -> bool:
        """Whether `marker` is in the clause, sentence or message (its scope) of word `at`."""
        where = self.markers.get(marker, set())
        scope = self.scopes[marker]
        if scope == "message":
            return bool(where)
        if scope == "clause":
            return (self.words.sentence[at], self.words.clause[at]) in where
        return any(sentence == self.words.sentence[at] for sentence, _ in where)


class Detector:
    def __init__(self, ruleset: RuleSet) -> None:
        self._rules = ruleset
        self._lexicon = ruleset.lexicon
        words = ruleset.lexicon.words
        self._negators = words("negator")
        self._uncertain = words("uncertain")
        self._breakers = words("negation_breaker")
        self._past_aux = words("past_aux")
        self._past_modal = words("past_modal")
        self._first_subject = words("first_subject")
        self._third_subject = words("third_subject")
        self._subject_pronouns = words("first_subject") | words("third_pronoun")
        self._first_person = words("first_person")
        self._third_person = words("third_person")
        self._third_person_en = words("third_person_en")
        self._someone_else = words("someone_else")

    def assess(self, text: str) -> SafetyAssessment:
        guessed = guess_language(text)
        words = split(text)
        message = _Message(words, guessed == "en", [False] * len(words), self._rules.marker_scopes)
        idioms = self._mask_idioms(message)
        for (marker, _), found in self._rules.markers.find(words, message.masked):
            message.markers.setdefault(marker.name, set()).add(
                (words.sentence[found[0]], words.clause[found[0]])
            )
        hits = [
            _Hit(rule, language, found)
            for (rule, language), found in self._rules.rules.find(words, message.masked)
            if self._counts(rule, found, message)
        ]
        crisis_hits = [h for h in hits if h.rule.kind == "crisis"]
        crisis = bool(crisis_hits)
        if crisis:
            about_other = all(self._about_other(h, message) for h in crisis_hits)
        else:
            about_other = any(w in self._someone_else for w in words.words)
        return SafetyAssessment(
            crisis=crisis,
            categories=frozenset(c for h in crisis_hits for c in h.rule.categories),
            child_concern=not crisis and any(h.rule.kind == "concern" for h in hits),
            language=guessed or ("en" if {h.language for h in hits} == {"en"} else "da"),
            about_other=about_other,
            young=bool(message.markers.get("young")),
            rules=tuple(sorted(idioms | {h.rule.id for h in hits})),
            risk="acute" if crisis else "none",
            layers=("rules",) if crisis else (),
            weak=crisis and all(h.rule.weak for h in crisis_hits),
        )

    def _mask_idioms(self, message: _Message) -> set[str]:
        unmasked = [False] * len(message.words)
        fired = set()
        for (idiom, _), found in self._rules.idioms.find(message.words, unmasked):
            fired.add(idiom.id)
            for i in range(found[0], found[-1] + 1):
                message.masked[i] = True
        return fired

    def _counts(self, rule: Rule, found: tuple[int, ...], message: _Message) -> bool:
        start, words = found[0], message.words
        if rule.negatable and self._negated(words, found):
            return False
        if rule.past and self._in_the_past(start, message):
            return False
        if rule.requires and not message.has(rule.requires, start):
            return False
        if rule.unless and message.has(rule.unless, start):
            return False
        if rule.subject:
            # the subject belongs to the verb, not to a negation the match starts with
            verb = next((i for i in found if words.words[i] not in self._negators), start)
            return self._subject_fits(rule.subject, words, verb, message.english)
        return True

    def _in_the_past(self, start: int, message: _Message) -> bool:
        """A film or book in the sentence; a past anywhere told as resolved ("det er 3 år siden,
        jeg har det fint nu"); or a distant past in the sentence, or "var"/"had" just before, and
        nothing recent or again."""
        if message.has("fiction", start):
            return True  # "the overdose scene", whenever it was watched
        over = message.markers.get("past") or self._told_before(start, message)
        if message.has("resolved", start) and over:
            return True  # told as over, and the writer (or the person) is well now
        back = message.has("recent", start) or message.has("again", start)
        if back and not message.has("resolved", start):
            return False
        return message.has("past", start) or (start > 0 and message.words.words[start - 1] in self._past_aux)

    def _told_before(self, start: int, message: _Message) -> bool:
        """A past tense ("var", "ville", "had") earlier in the match's sentence."""
        words = message.words
        return any(
            words.words[j] in self._past_aux or words.words[j] in self._past_modal
            for j in range(start)
            if words.sentence[j] == words.sentence[start]
        )

    def _negated(self, words: Words, found: tuple[int, ...]) -> bool:
        start, end = found[0], found[-1]
        for j in range(max(0, start - NEGATION_REACH), end + 1):
            if j in found or words.words[j] not in self._negators:
                continue
            if words.sentence[j] != words.sentence[start]:
                continue
            if j < start and words.clause[j] != words.clause[start]:
                continue  # "jeg har ikke sovet, og jeg vil dø"
            if any(words.words[k] in self._uncertain for k in (j - 1, j + 1) if 0 <= k < len(words)):
                continue  # "jeg ved ikke om ...", "not sure if ..."
            if any(words.words[k] in self._breakers for k in range(j + 1, start)):
                continue  # "kan ikke stoppe med at tænke på ..."
            return True
        return False

    def _nearest(
        self, words: Words, start: int, english: bool, first: frozenset[str], third: frozenset[str]
    ) -> tuple[str | None, str]:
        """The class ("first"/"third") and word of the nearest person reference before `start`."""
        for j in range(start - 1, max(-1, start - 1 - SUBJECT_REACH), -1):
            if words.sentence[j] != words.sentence[start]:
                break
            word = words.words[j]
            if word in first or (english and word == "i"):
                return "first", word
            if word in third:
                return "third", word
        return None, ""

    def _subject_fits(self, wanted: str, words: Words, verb: int, english: bool) -> bool:
        after = verb + 1
        if (
            after < len(words)
            and words.clause[after] == words.clause[verb]
            and words.words[after] in self._subject_pronouns
        ):
            # Danish word order puts the subject right after the verb: "så slår han mig ihjel"
            word = words.words[after]
            kind = "first" if word in self._first_subject else "third"
        else:
            kind, word = self._nearest(words, verb, english, self._first_subject, self._third_subject)
        if wanted.startswith("@"):
            return word in self._lexicon.words(wanted[1:])
        if wanted == "not_third":
            return kind != "third"
        return kind == wanted

    def _about_other(self, hit: _Hit, message: _Message) -> bool:
        """Whether someone other than the writer is the one at risk in this hit."""
        words, english = message.words, message.english
        span = words.words[hit.positions[0] : hit.positions[-1] + 1]
        if any(w in self._first_person or (english and w == "i") for w in span):
            return False
        if hit.rule.person == "self":
            return False
        third = self._third_person | self._third_person_en if english else self._third_person
        if any(w in third for w in span):
            return True
        kind, _ = self._nearest(words, hit.positions[0], english, self._first_person, third)
        return kind == "third"


@lru_cache(maxsize=1)
def default_detector() -> Detector:
    return Detector(default_rules())
