"""Offer search quality and speed, with no server running.

    .venv/bin/python benchmarks/search.py [--cases FILE.yaml ...] [--misses] [--rounds 5]

For each labelled set (default: the held-out blind batches in benchmarks/data/search_*.yaml and
the public eval cases) it prints hit@1, hit@3 and MRR (over the first 3 places) for each channel
alone (BM25, embeddings, the need classifier), BM25 with embeddings (the search before the need
classifier), the hybrid with and without embeddings, and the hybrid with less type diversity (up
to 2 offers of a type in the top 3, or any number); a hit is a top offer whose type the case
accepts.
Then query latency p50/p95 of the hybrid with a warm model, over all queries, `--rounds` times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from indgang.search import OfferSearch, Ranking, get_offer_search
from indgang.settings import PROJECT_DIR

HELD_OUT = sorted((PROJECT_DIR / "benchmarks" / "data").glob("search_*.yaml"))
PUBLIC_CASES = PROJECT_DIR.parent / "shared" / "eval" / "public_cases.yaml"
TOP = 3


def load_cases(path: Path) -> list[dict]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return raw.get("queries") or raw.get("retrieval") or []


def modes(search: OfferSearch) -> dict[str, Ranking]:
    return {
        "bm25": search.with_ranking(semantic_weight=0.0, need_weight=0.0),
        "embeddings": search.with_ranking(lexical_weight=0.0, need_weight=0.0, semantic_weight=1.0),
        "needs": search.with_ranking(lexical_weight=0.0, semantic_weight=0.0),
        "bm25+embeddings": search.with_ranking(need_weight=0.0, semantic_weight=0.2),
        "hybrid+embeddings": search.with_ranking(semantic_weight=0.2),
        "hybrid": search.ranking,
        # Diversity: the hybrid allowing 2 offers of a type in the top 3, or any number.
        "hybrid-2/type": search.with_ranking(max_per_type=2),
        "hybrid-any": search.with_ranking(max_per_type=TOP),
    }


def score(search: OfferSearch, cases: list[dict], ranking: Ranking) -> tuple[dict[str, float], list[str]]:
    hit1 = hit3 = 0
    reciprocal = 0.0
    misses = []
    for case in cases:
        types = [h.offer.type for h in search.search(case["q"], limit=TOP, ranking=ranking)]
        places = [i for i, t in enumerate(types) if t in case["expect"]]
        if places:
            hit3 += 1
            hit1 += places[0] == 0
            reciprocal += 1 / (places[0] + 1)
        else:
            misses.append(f"  MISS {case['q']!r}: expected {case['expect']}, got {types}")
    n = len(cases) or 1
    return {"hit@1": hit1 / n, "hit@3": hit3 / n, "mrr@3": reciprocal / n}, misses


def latency(search: OfferSearch, queries: list[str], rounds: int) -> tuple[float, float]:
    took = []
    for _ in range(rounds):
        for query in queries:
            started = time.perf_counter()
            search.search(query, limit=TOP)
            took.append(time.perf_counter() - started)
    quantiles = statistics.quantiles(took, n=100)
    return quantiles[49] * 1000, quantiles[94] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=Path, nargs="*", help="labelled YAML files (queries: or retrieval:)")
    parser.add_argument("--misses", action="store_true", help="print the hybrid's misses")
    parser.add_argument("--rounds", type=int, default=5, help="latency: passes over all queries")
    args = parser.parse_args(argv)
    files = args.cases or [p for p in (*HELD_OUT, PUBLIC_CASES) if p.exists()]

    started = time.perf_counter()
    search = get_offer_search()
    search.warm()
    print(
        f"catalogue: {len(search.catalogue.offers)} offers; model and embeddings ready in "
        f"{time.perf_counter() - started:.1f} s"
    )

    all_queries: list[str] = []
    for path in files:
        cases = load_cases(path)
        all_queries += [c["q"] for c in cases]
        groups = {"all": cases}
        halves = sorted({c["half"] for c in cases if "half" in c})
        groups.update({half: [c for c in cases if c.get("half") == half] for half in halves})
        print(f"\n{path.name}")
        print(f"  {'set':<8} {'n':>4}  {'mode':<14} {'hit@1':>6} {'hit@3':>6} {'mrr@3':>6}")
        for group, members in groups.items():
            for name, ranking in modes(search).items():
                figures, misses = score(search, members, ranking)
                print(
                    f"  {group:<8} {len(members):>4}  {name:<14} "
                    f"{figures['hit@1']:>6.3f} {figures['hit@3']:>6.3f} {figures['mrr@3']:>6.3f}"
                )
                if args.misses and name == "hybrid" and group == "all":
                    print("\n".join(misses) or "  (no misses)")
    p50, p95 = latency(search, all_queries, args.rounds)
    print(
        f"\nlatency, hybrid, warm model, {len(all_queries)} queries x {args.rounds}: "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
