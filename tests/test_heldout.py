"""Quality on blind batches: text written by helpers who never saw the code, the rules or the
training data (first-run figures in benchmarks/README.md). The safety batches in benchmarks/data/
are never trained on. Every search batch is trained on, so the search is held to the latest two
the way cross-validation holds out a group: scored by a search whose need classifier was trained
on every file but that batch. A change that makes the check or the search worse on words nobody
here wrote fails here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from indgang import safety
from indgang.search import OfferSearch, get_offer_search
from indgang.search.needs import blind_batches, train_without
from indgang.settings import PROJECT_DIR, Settings

DATA = PROJECT_DIR / "benchmarks" / "data"
sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
import safety as safety_bench  # noqa: E402  (the benchmark's reading of batches: one place for it)

# The goal is recall 0.97 and at most 3% false alarms; the held-out batches v and w met it on
# their first run (0.983 / 0.9 % and 0.983 / 1.7 %, benchmarks/README.md). The recall floor leaves
# one message of room for a retrain on new data; false alarms may not pass the goal.
MIN_RECALL = {"acute": 0.96, "all": 0.96}
MAX_FALSE_ALARMS = 0.03
# The search, each of the latest two batches held out of its fold: 0.880 / 0.991 and 0.895 / 1.000.
MIN_HIT_AT_3 = 0.97
MIN_HIT_AT_1 = 0.85

pytestmark = pytest.mark.quality

SAFETY_BATCHES = sorted(DATA.glob("safety_*.yaml"))
SEARCH_BATCHES = blind_batches()[-2:]  # the latest two, each held out of its own fold


def _texts(batch: Path) -> list[str]:
    doc = yaml.safe_load(batch.read_text(encoding="utf-8"))
    return [m["text"] for m in doc.get("messages") or ()] + [c["q"] for c in doc.get("retrieval") or ()]


def _leaked(batch: Path, training: list[Path]) -> list[str]:
    others = [p.read_text(encoding="utf-8") for p in training if p != batch]
    texts = _texts(batch)
    assert texts
    return [t for t in texts[:40] if any(t in doc for doc in others)]


def test_the_held_out_batches_are_there_and_never_trained_on() -> None:
    assert SAFETY_BATCHES and len(SEARCH_BATCHES) == 2
    training = [
        p
        for folder in ("indgang/safety/training", "indgang/search/training")
        for p in (PROJECT_DIR / folder).glob("*.yaml")
    ]
    for batch in SAFETY_BATCHES:
        assert not (leaked := _leaked(batch, training)), f"{batch.name} is in the training data: {leaked[:3]}"
    for batch in SEARCH_BATCHES:
        # its fold leaves the file out: none of its queries may hide in another training file
        assert not (leaked := _leaked(batch, training)), f"{batch.name} is also in another file: {leaked[:3]}"


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
def test_the_search_holds_on_a_blind_batch_left_out_of_its_training(
    batch: Path, catalogue_settings: Settings
) -> None:
    full = get_offer_search(catalogue_settings)
    search = OfferSearch(
        full.catalogue,
        None,
        full.default_municipality,
        full.ranking,
        needs=train_without(full.catalogue, batch),
    )
    cases = yaml.safe_load(batch.read_text(encoding="utf-8"))["retrieval"]
    hit1 = hit3 = 0
    for case in cases:
        types = [h.offer.type for h in search.search(case["q"], limit=3)]
        hit3 += bool(set(types) & set(case["expect"]))
        hit1 += bool(types) and types[0] in case["expect"]
    assert hit3 / len(cases) >= MIN_HIT_AT_3
    assert hit1 / len(cases) >= MIN_HIT_AT_1
