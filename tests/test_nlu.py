"""Quality gate for the Rasa NLU model: `rasa test nlu` on the held-out split (nlu_data/test/),
which is never trained on, against the trained model (INDGANG_RASA_MODEL, by default
bot/models/indgang.tar.gz: `indgang train` or `make model` builds it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from indgang.devstack import MODEL_PATH, NLU_TRAIN_DIR, RASA_BIN, RASA_ENV
from indgang.nlu_examples import NLU_TEST_DIR as TEST_SPLIT
from indgang.nlu_examples import nlu_examples
from indgang.settings import PROJECT_DIR

MODEL = Path(os.environ.get("INDGANG_RASA_MODEL", MODEL_PATH))
DOMAIN_DIR = PROJECT_DIR / "bot" / "domain"
MUNICIPALITIES = NLU_TRAIN_DIR / "lookups" / "municipalities.yml"

MIN_INTENT_MACRO_F1 = 0.90
MIN_TEST_EXAMPLES_PER_INTENT = 8
# Entities the dialogue relies on: who the message is about, and where the citizen lives.
MIN_ENTITY_F1 = {"relation": 0.85, "municipality": 0.85}
# Share of the expected relation/municipality values that come out exactly, after the synonyms
# ("Kbh" -> "København", "søn" -> "child").
MIN_VALUE_RECALL = 0.85
RASA_TEST_TIMEOUT_SECONDS = 540


def _domain_intents() -> set[str]:
    intents: set[str] = set()
    for path in DOMAIN_DIR.glob("*.yml"):
        intents.update(yaml.safe_load(path.read_text(encoding="utf-8")).get("intents", []))
    return intents


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert MODEL.is_file(), f"no Rasa model at {MODEL}: train it with `indgang train`"
    out = tmp_path_factory.mktemp("nlu-results")
    subprocess.run(
        [str(RASA_BIN), "test", "nlu", "--nlu", str(TEST_SPLIT), "--model", str(MODEL),
         "--out", str(out), "--successes"],
        cwd=PROJECT_DIR,
        env={**os.environ, **RASA_ENV},
        check=True,
        capture_output=True,
        timeout=RASA_TEST_TIMEOUT_SECONDS,
    )  # fmt: skip
    return out


def _report(results: Path, name: str) -> dict[str, Any]:
    return json.loads((results / name).read_text(encoding="utf-8"))


def test_test_split_covers_every_intent_and_is_never_trained_on() -> None:
    test, train = nlu_examples(TEST_SPLIT), nlu_examples(NLU_TRAIN_DIR)
    assert set(test) == set(train) == _domain_intents()
    assert min(len(texts) for texts in test.values()) >= MIN_TEST_EXAMPLES_PER_INTENT
    seen = {text.casefold() for texts in train.values() for text in texts}
    assert [t for texts in test.values() for t in texts if t.casefold() in seen] == []


def test_lookup_lists_all_98_municipalities_by_their_official_names() -> None:
    blocks = yaml.safe_load(MUNICIPALITIES.read_text(encoding="utf-8"))["nlu"]
    names = [b["synonym"] for b in blocks if "synonym" in b]
    lookup = {line.strip()[2:] for b in blocks if "lookup" in b for line in b["examples"].splitlines()}
    assert len(names) == len(set(names)) == 98
    assert {"København", "Aarhus", "Høje-Taastrup", "Lyngby-Taarbæk", "Ringkøbing-Skjern"} <= set(names)
    assert set(names) <= lookup
    assert {"kbh", "koebenhavn", "kobenhavn", "århus"} <= lookup


def test_intent_macro_f1_on_held_out_split(results: Path) -> None:
    report = _report(results, "intent_report.json")
    f1 = report["macro avg"]["f1-score"]
    per_intent = {k: v["f1-score"] for k, v in report.items() if isinstance(v, dict) and "confused_with" in v}
    weak = {k: round(v, 2) for k, v in per_intent.items() if v < 0.8}
    assert f1 >= MIN_INTENT_MACRO_F1, f"macro F1 {f1:.3f}; weakest intents: {weak}"


def test_relation_and_municipality_entities_on_held_out_split(results: Path) -> None:
    report = _report(results, "DIETClassifier_report.json")
    for entity, minimum in MIN_ENTITY_F1.items():
        assert report[entity]["f1-score"] >= minimum, (entity, report[entity])


def test_entity_values_are_normalised(results: Path) -> None:
    """The slot values the actions read: relation as self/child/partner/..., municipality by its
    official name."""
    cases = _report(results, "DIETClassifier_successes.json") + _report(results, "DIETClassifier_errors.json")
    expected = found = 0
    for case in cases:
        predicted = {(e["entity"], e["value"]) for e in case["predicted_entities"]}
        for gold in case["entities"]:
            if gold["entity"] in MIN_ENTITY_F1:
                expected += 1
                found += (gold["entity"], gold["value"]) in predicted
    assert expected >= 40
    assert found / expected >= MIN_VALUE_RECALL, f"{found} of {expected} values"
