"""Does a message state a need? A second opinion beside Rasa's intent, learnt from data.

Rasa's intent model sometimes reads a need as a greeting, a yes, a booking change or nothing it
knows ("hej, min datter på 8 kan ikke læse" as `greet`). A turn that states a need must answer
with offers in that turn, so the actions that would otherwise give small talk or ask again first
ask this gate. It is a binary classifier: positives are the labelled need descriptions the offer
search learns from (indgang/search/training) and the NLU examples of `describe_need` and
`ask_offer`; negatives are the NLU examples of every other intent (greetings, yes and no,
booking, asking for a person ...). The gateway asks it too: a need told while the conversation
waits for a person still gets offers at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from sklearn.linear_model import LogisticRegression

from indgang import learned
from indgang.nlu_examples import NLU_TRAIN_DIR, NOT_NEED_INTENTS, nlu_examples
from indgang.search.needs import folded
from indgang.search.needs import training_files as need_files

NEED_INTENTS = frozenset({"describe_need", "ask_offer"})
MIN_WORDS = 3  # "ja tak", "hej" and the like are never a need on their own
THRESHOLD = 0.5


@dataclass
class NeedGate:
    classifier: learned.TextClassifier

    def probability(self, text: str) -> float:
        return self.classifier.probabilities(text)["1"]

    def states_need(self, text: str) -> bool:
        return len(text.split()) >= MIN_WORDS and self.probability(text) >= THRESHOLD


def examples() -> tuple[list[str], list[int]]:
    texts: list[str] = []
    labels: list[int] = []
    for path in need_files():
        for case in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("queries") or ():
            texts.append(case["q"])
            labels.append(1)
    for intent, lines in nlu_examples().items():
        if intent in NEED_INTENTS or intent in NOT_NEED_INTENTS:
            texts += lines
            labels += [int(intent in NEED_INTENTS)] * len(lines)
    return texts, labels


def fit() -> NeedGate:
    texts, labels = examples()
    features = learned.text_features(folded)
    model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=5000)
    model.fit(features.fit_transform(texts), labels)
    return NeedGate(learned.TextClassifier(features, model))


@lru_cache(maxsize=1)
def need_gate() -> NeedGate:
    inputs = [*need_files(), *sorted(NLU_TRAIN_DIR.rglob("*.yml")), Path(__file__)]
    return learned.cached("need_gate", inputs, fit)
