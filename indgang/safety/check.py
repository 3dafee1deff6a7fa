"""The safety check: does a message, or the conversation so far, signal danger to life or health?

It runs before anything else on every inbound message and does not depend on the NLU model, so a
retrain can never silence it. Three layers read the same normalised text, and any one of them
can raise an alarm; none can silence another:

- **rules** (detector.py): precise patterns, with negation, past and subject handled; acute.
- **concepts** (rules/concepts.yaml): combinations of risk concepts (a method at hand and a time
  set, pills and signs in the body, a child's age and harm); acute.
- **model** (model.py): a classifier trained on thousands of labelled messages; its second head
  says acute or concern. It also reads the last few turns together, so a relative's second
  message can complete the picture of the first.

A layer that fails counts as a concern (logged with the layer's name, never the text): a bug must
make the check more careful, not blind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from indgang.language import guess_language
from indgang.safety.detector import RISK_ORDER, Risk, SafetyAssessment, default_detector
from indgang.safety.model import WINDOW_TURNS, combinations_in, concepts_in, default_model
from indgang.safety.normalise import clean
from indgang.safety.text import sentences

log = logging.getLogger(__name__)

ACUTE_SHARE = 0.5  # P(acute | danger) from which the model's alarm is acute rather than a concern
# A rule or a concept names a danger but not always its time: "min far slår mig når han drikker"
# is a concern to check in on, "han slår mig nu" an emergency. Their alarm is a concern when the
# model's acute head is this sure it is not acute. On the held-out v and w, concern-labelled
# messages given the concern tier rose from 18 to 44 of 56, acute ones given concern from 9 to 10
# of 172.
PRECISE_ACUTE_FLOOR = 0.2
# The learned layers' alarm is acute (112 first, and the turns after it held as the emergency
# until help has come) only when the model is this sure, or the conversation is in an emergency
# already; below it, it is a concern. A need told plainly ("sover i bilen. hvor kan jeg sove inde
# i nat", P 0.84) was answered as an emergency, and then so was "hvor ligger det?".
LEARNED_ACUTE_SURE = 0.9
# A message this short that denies the danger ("nej, jeg er ikke i fare") is not read by the
# classifier; a longer one may deny one thing and tell another.
DENIAL_MAX_WORDS = 12
# Fewer words than this are too little for the model alone ("mig selv" answers a question); the
# rules still read them, and the model reads them with the turns before.
MODEL_MIN_WORDS = 3
# The learned layer's P(danger) from which it supports a weak rule (a danger's bare name): well
# below its own threshold, as the name is evidence too; "skal lave fremlæggelse om
# selvmordstanker" scores below it, "har selvmordstanker igen" far above. Raised from 0.2 when
# the batches af-ao were folded in: on every labelled file the weak rules' alarms that the
# classifier scored 0.2-0.3 were all calm (a sibling's "jeg kan ikke mere. hvordan får han en
# fast kontaktperson", an overdose two winters ago, a school presentation); the one danger among
# those under the threshold scored 0.54.
WEAK_RULE_SUPPORT = 0.3
# How much the turns read together must rise over the turns before alone for the window to
# alarm: on outsiders' conversations the window's own catches rose 0.7-1.0, a neutral question
# after a worried message ("Hvor ligger det henne?") 0.08.
WINDOW_GAIN = 0.2
# A long request can bury one sentence of danger ("... og i nat stod jeg på altanen og tænkte at
# hoppe. Kan I sende mig information?"): each sentence is also read alone when the whole message
# scores at least SENTENCE_FLOOR, and counts when the model is SENTENCE_SURE of it. On the blind
# batches v, w, ab and ac the floor alone found 3 more of 458 dangers for 1 more false alarm of
# 461; on ad-ag, at the model's own threshold, 4 more of about 460 for 7 more of about 460
# (a sentence alone loses the rest of its message: "Vi sidder mest og ser på vandet."); at 0.97,
# 2 for none.
SENTENCE_FLOOR = 0.3
SENTENCE_SURE = 0.97
# What frames the whole message frames each sentence too: "Hvad gør vi hvis en passager fortæller
# at han har selvmordstanker? ... ingen konkret sag" is not read sentence by sentence.
_FRAMES = frozenset({"fiction", "past", "resolved", "negated"})
# Markers of a turn saying help has come or the person is safe (rules/markers.yaml).
_HELP_HAS_COME = frozenset({"safe_now", "resolved"})
# Concepts that name who is at risk when no rule said it.
_CATEGORY_OF_CONCEPT = (("child_harm", "child_at_risk"), ("harm_other", "violence"))


def _layer(name: str, run: Callable[[], object], failed: list[str]) -> object | None:
    try:
        return run()
    except Exception as exc:
        log.error("safety layer failed", extra={"layer": name, "error": type(exc).__name__})
        failed.append(name)
        return None


def _model_risk(text: str, by_sentence: bool = False) -> tuple[Risk, float, float]:
    """The learned layer's risk for a text, its P(danger) and P(acute | danger); `by_sentence`
    also reads each sentence of a long message alone."""
    model = default_model()
    danger, acute = model.score(text)
    if by_sentence and SENTENCE_FLOOR <= danger < model.threshold:
        parts = [s for s in sentences(text) if len(s.split()) >= MODEL_MIN_WORDS]
        if len(parts) > 1:
            best = max((model.score(part) for part in parts), key=lambda scored: scored[0])
            if best[0] >= SENTENCE_SURE:
                danger, acute = best
    if danger < model.threshold:
        return "none", danger, acute
    return ("acute" if acute >= ACUTE_SHARE else "concern"), danger, acute


def _window_risk(recent: list[str], text: str) -> tuple[Risk, float]:
    """The learned layer's risk for the last turns read together. It counts when this turn adds
    to the danger (P rises by WINDOW_GAIN over the turns before), or when the turns before were
    danger already: "hvor ligger det?" after a worried message must not tip it over."""
    risk, danger, _ = _model_risk("\n".join([*recent, text]))
    if risk == "none":
        return risk, danger
    model = default_model()
    before = model.score("\n".join(recent))[0]
    if danger - before >= WINDOW_GAIN or before >= model.threshold:
        return risk, danger
    return "none", danger


def _sure_or_concern(risk: Risk, danger: float) -> Risk:
    return "concern" if risk == "acute" and danger < LEARNED_ACUTE_SURE else risk


def assess(text: str, context: Sequence[str] = (), in_danger: bool = False) -> SafetyAssessment:
    """The assessment of one message; `context` holds the writer's previous turns (oldest first)
    that have not yet raised an alarm, so the conversation so far counts too. `in_danger`: the
    conversation's last reply was the acute emergency reply. Then a turn that says help has come
    ("politiet er her nu, de har taget ham med") is read by the precise layers only: its words
    are the emergency's, but the emergency is over."""
    failed: list[str] = []
    text = clean(text)
    rules = _layer("rules", lambda: default_detector().assess(text), failed)
    found = _layer("concepts", lambda: concepts_in(text), failed) or frozenset()
    combos = _layer("concepts", lambda: combinations_in(found), failed) or ()
    words = len(text.split())
    enough = words >= MODEL_MIN_WORDS
    # No model reading (too short, or the layer failed): a precise layer's alarm stays acute.
    none: tuple[Risk, float, float] = ("none", 0.0, 1.0)
    calm_window: tuple[Risk, float] = ("none", 0.0)
    by_sentence = not (_FRAMES & found)
    model_risk, model_danger, model_acute = (
        (_layer("model", lambda: _model_risk(text, by_sentence), failed) or none) if enough else none
    )
    recent = [clean(turn) for turn in context][-(WINDOW_TURNS - 1) :] if context else []
    window_risk, window_danger = (
        _layer("window", lambda: _window_risk(recent, text), failed) or calm_window if recent else calm_window
    )

    if not in_danger:
        model_risk = _sure_or_concern(model_risk, model_danger)
        window_risk = _sure_or_concern(window_risk, window_danger)

    risks: dict[str, Risk] = {}
    precise: Risk = "concern" if enough and model_acute < PRECISE_ACUTE_FLOOR else "acute"
    if isinstance(rules, SafetyAssessment) and rules.crisis:
        supported = not enough or max(model_danger, window_danger) >= WEAK_RULE_SUPPORT
        if not rules.weak or supported or "model" in failed:
            risks["rules"] = precise
    if combos:
        risks["concepts"] = precise
    settled = in_danger and bool(_HELP_HAS_COME & found)  # the concepts read once, above
    # "nej, jeg tænker ikke på selvmord" answers the check-in: its words are the danger's, but
    # it denies it; the classifier read 0.87 into it. The rules and concepts still read it.
    learned = not settled and not ("denied" in found and words <= DENIAL_MAX_WORDS)
    if model_risk != "none" and learned:
        risks["model"] = model_risk
    if window_risk != "none" and learned:
        risks["window"] = window_risk
    if failed:
        risks["error"] = "concern"
    risk: Risk = max(risks.values(), key=RISK_ORDER.__getitem__, default="none")

    base = rules if isinstance(rules, SafetyAssessment) else default_assessment(text)
    if risk == "concern" and _worry_for_a_child(risks, found, base):
        risks, risk, base = {}, "none", replace(base, child_concern=True)
    categories = set(base.categories)
    about_other = base.about_other
    if risk != "none" and not categories:
        categories = {c for concept, c in _CATEGORY_OF_CONCEPT if concept in found} or {"suicide"}
        # a young writer telling of harm speaks of themself, whoever else they name
        about_other = about_other and not {"young", "child_harm"} <= found
    return replace(
        base,
        about_other=about_other,
        crisis=risk != "none",
        risk=risk,
        categories=frozenset(categories),
        child_concern=base.child_concern and risk == "none",
        young=base.young or "young" in found,
        rules=tuple(sorted({*base.rules, *combos})),
        layers=tuple(sorted(risks)),
    )


def _worry_for_a_child(risks: dict[str, Risk], found: frozenset[str], base: SafetyAssessment) -> bool:
    """An adult's worry for someone else's child that only the learned layers read as danger,
    and not as danger now: a child concern (how to report it, with 112 if the child is in danger
    now), not a crisis. Outsiders label "she comes to me for food almost every day, nobody takes
    care of her" calm; the safety batches' children at risk that are not acute are children
    telling of their own harm (young writers), which stay a crisis, as does anything a rule or a
    concept names."""
    learned_only = set(risks) <= {"model", "window"}
    return learned_only and base.child_concern and "young" not in found and not base.young


def danger_continues(text: str) -> bool:
    """After an acute alarm, whether this turn (itself calm to the layers) leaves the danger
    standing. What people add in that moment, "skynd jer", "hun er 5", an address, the pills'
    count, is still the emergency; only a turn that says help has come or the person is safe
    (rules/markers.yaml: safe_now, resolved) ends it. A layer that fails keeps the danger."""
    try:
        return not (_HELP_HAS_COME & concepts_in(clean(text)))
    except Exception as exc:
        log.error("safety layer failed", extra={"layer": "continues", "error": type(exc).__name__})
        return True


def default_assessment(text: str) -> SafetyAssessment:
    """What is known of a message when the rules layer could not read it."""
    return SafetyAssessment(
        crisis=False,
        categories=frozenset(),
        child_concern=False,
        language=guess_language(text) or "da",
        about_other=False,
        young=False,
        rules=(),
    )
