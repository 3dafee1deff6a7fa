"""NLU quality and training time on the held-out split (nlu_data/test/, never trained on).

    .venv/bin/python benchmarks/nlu.py [--model PATH]

Without --model it trains an NLU-only model from nlu_data/train/ with bot/config.yml into a
temporary folder (timed), then runs `rasa test nlu` on the held-out split. Prints the intent
macro F1 and accuracy, per-intent F1, the confusions, entity F1 (DIETClassifier), and the share
of messages whose confidence is below the FallbackClassifier threshold (those would get
nlu_fallback in the running bot; `rasa test nlu` scores the intent underneath).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from indgang.devstack import NLU_TRAIN_DIR, RASA_BIN, RASA_ENV
from indgang.nlu_examples import NLU_TEST_DIR as TEST_SPLIT
from indgang.settings import PROJECT_DIR

CONFIG = PROJECT_DIR / "bot" / "config.yml"


def rasa(*args: str, cache: str | None = None) -> None:
    env = {**os.environ, **RASA_ENV}
    if cache:  # a fresh cache: otherwise Rasa restores an identical model and the time means nothing
        env["RASA_CACHE_DIRECTORY"] = cache
    subprocess.run([str(RASA_BIN), *args], cwd=PROJECT_DIR, env=env, check=True, capture_output=True)


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def fallback_threshold() -> float:
    pipeline = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["pipeline"]
    return next(c["threshold"] for c in pipeline if c["name"] == "FallbackClassifier")


def print_intents(out: Path) -> None:
    report = read(out / "intent_report.json")
    intents = {k: v for k, v in report.items() if isinstance(v, dict) and "confused_with" in v}
    print(f"intent macro F1: {report['macro avg']['f1-score']:.3f}   accuracy: {report['accuracy']:.3f}")
    print(f"test examples: {sum(v['support'] for v in intents.values())}")
    for name, v in sorted(intents.items(), key=lambda kv: kv[1]["f1-score"]):
        confused = ", ".join(f"{k} {n}" for k, n in v["confused_with"].items())
        print(f"  {name:20} F1 {v['f1-score']:.2f}  n={v['support']:<3} {confused}")  # Rasa lists the top two
    errors = read(out / "intent_errors.json")
    pairs = Counter((e["intent"], e["intent_prediction"]["name"]) for e in errors)
    top = "; ".join(f"{a} -> {b} {n}" for (a, b), n in pairs.most_common(8))
    print(f"main confusions (true -> predicted): {top}")


def print_entities(out: Path) -> None:
    report = read(out / "DIETClassifier_report.json")
    entities = {k: v for k, v in report.items() if isinstance(v, dict) and "avg" not in k}
    scores = (f"{k} {v['f1-score']:.2f} (n={v['support']})" for k, v in entities.items())
    print("entity F1: " + "  ".join(scores))


def print_fallback_share(out: Path) -> None:
    names = ("intent_successes.json", "intent_errors.json")
    confidences = [p["intent_prediction"]["confidence"] for name in names for p in read(out / name)]
    threshold = fallback_threshold()
    low = sum(c < threshold for c in confidences)
    print(f"below fallback threshold {threshold}: {low}/{len(confidences)} ({low / len(confidences):.1%})")


def blind_batch_as_nlu(batch: Path, tmp: Path) -> Path:
    """A blind batch's labelled examples in Rasa's NLU format, so `rasa test nlu` scores them."""
    by_intent: dict[str, list[str]] = {}
    for example in yaml.safe_load(batch.read_text(encoding="utf-8"))["examples"]:
        by_intent.setdefault(example["intent"], []).append(str(example["text"]))
    nlu = [{"intent": intent, "examples": "".join(f"- {' '.join(t.split())}\n" for t in texts)}
           for intent, texts in by_intent.items()]  # fmt: skip
    path = tmp / "blind_nlu.yml"
    path.write_text(yaml.safe_dump({"version": "3.1", "nlu": nlu}, allow_unicode=True), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", type=Path, help="test this model instead of training one")
    parser.add_argument(
        "--batch", type=Path, help="test on a blind batch (examples: [{text, intent}]), not nlu_data/test"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="indgang-nlu-") as tmp:
        model = args.model
        if model is None:
            started = time.perf_counter()
            rasa("train", "nlu", "--config", str(CONFIG), "--nlu", str(NLU_TRAIN_DIR),
                 "--out", tmp, "--fixed-model-name", "nlu", cache=str(Path(tmp) / "cache"))  # fmt: skip
            print(f"training (rasa train nlu, wall): {time.perf_counter() - started:.0f} s")
            model = Path(tmp) / "nlu.tar.gz"
        out = Path(tmp) / "results"
        test_data = blind_batch_as_nlu(args.batch, Path(tmp)) if args.batch else TEST_SPLIT
        rasa("test", "nlu", "--nlu", str(test_data), "--model", str(model), "--out", str(out), "--successes")
        print_intents(out)
        if not args.batch:  # blind batches label intents only
            print_entities(out)
        print_fallback_share(out)


if __name__ == "__main__":
    main()
