"""Quality on the held-out blind batches: text written by helpers who never saw the code, the
rules or the training data (benchmarks/data/, first-run figures in benchmarks/README.md). These
files are never trained on; a change that makes the check or the search worse on words nobody
here wrote fails here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from indgang import safety
from indgang.search import get_offer_search
from indgang.settings import PROJECT_DIR

DATA = PROJECT_DIR / "benchmarks" / "data"
sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
import safety as safety_bench  # noqa: E402  (the benchmark's reading of batches: one place for it)

# The goal is recall 0.97 and at most 3% false alarms; the held-out batches v and w met it on
# their first run (0.983 / 0.9 % and 0.983 / 1.7 %, benchmarks/README.md). The recall floor leaves
# one message of room for a retrain on new data; false alarms may not pass the goal.
MIN_RECALL = {"acute": 0.96, "all": 0.96}
MAX_FALSE_ALARMS = 0.03
MIN_HIT_AT_3 = 0.95
MIN_HIT_AT_1 = 0.75

SAFETY_BATCHES = sorted(DATA.glob("safety_*.yaml"))
SEARCH_BATCHES = sorted(DATA.glob("search_*.yaml"))


def test_the_held_out_batches_are_there_and_never_trained_on() -> None:
    assert SAFETY_BATCHES and SEARCH_BATCHES
    training = {
        p.read_text(encoding="utf-8")
        for folder in ("indgang/safety/training", "indgang/search/training")
        for p in (PROJECT_DIR / folder).glob("*.yaml")
    }
    for batch in [*SAFETY_BATCHES, *SEARCH_BATCHES]:
        texts = [m["text"] for m in yaml.safe_load(batch.read_text(encoding="utf-8")).get("messages") or ()]
        texts += [c["q"] for c in yaml.safe_load(batch.read_text(encoding="utf-8")).get("retrieval") or ()]
        assert texts
        leaked = [t for t in texts[:40] if any(t in doc for doc in training)]
        assert not leaked, f"{batch.name} is in the training data: {leaked[:3]}"


@pytest.mark.parametrize("batch", SAFETY_BATCHES, ids=[p.stem for p in SAFETY_BATCHES])
def test_the_safety_check_holds_on_a_held_out_batch(batch: Path) -> None:
    results, _ = safety_bench.run(safety_bench.cases(batch), safety.assess)
    danger = [a.crisis for c, a in results if c["crisis"]]
    acute = [a.crisis for c, a in results if c["crisis"] and c.get("tier", "acute") == "acute"]
    calm = [a.crisis for c, a in results if not c["crisis"]]
    missed = [c["text"][:80] for c, a in results if c["crisis"] and not a.crisis]
    assert sum(danger) / len(danger) >= MIN_RECALL["all"], missed
    assert sum(acute) / len(acute) >= MIN_RECALL["acute"], missed
    assert sum(calm) / len(calm) <= MAX_FALSE_ALARMS


@pytest.mark.parametrize("batch", SEARCH_BATCHES, ids=[p.stem for p in SEARCH_BATCHES])
def test_the_search_holds_on_a_held_out_batch(batch: Path) -> None:
    search = get_offer_search()
    cases = yaml.safe_load(batch.read_text(encoding="utf-8"))["retrieval"]
    hit1 = hit3 = 0
    for case in cases:
        types = [h.offer.type for h in search.search(case["q"], limit=3)]
        hit3 += bool(set(types) & set(case["expect"]))
        hit1 += bool(types) and types[0] in case["expect"]
    assert hit3 / len(cases) >= MIN_HIT_AT_3
    assert hit1 / len(cases) >= MIN_HIT_AT_1
