"""Offer search quality and speed, with no server running.

    .venv/bin/python benchmarks/search.py [--cases FILE.yaml ...] [--cv] [--misses] [--rounds 5]
        [--set need_weight=8 ...]

For each labelled set (default: the public eval cases) it prints hit@1, hit@3 and MRR (over the
first 3 places) for each channel alone (BM25, embeddings, the need classifier), BM25 with
embeddings (the search before the need classifier), the hybrid with and without embeddings, and
the hybrid with less type diversity (up to 2 offers of a type in the top 3, or any number); a hit
is a top offer whose type the case accepts.
`--cv`: grouped cross-validation over the spent blind batches (indgang/search/training/blind_*):
each batch is scored by a search whose need classifier was trained on every other file (cached
per batch under .cache/needs-without-<batch>/), then the pooled figures over all batches and over
the latest two. This is the honest figure for text nobody here wrote, now that every batch is
trained on.
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
from indgang.search.needs import blind_batches, train_without
from indgang.settings import PROJECT_DIR

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
    counts, misses = count(search, cases, ranking)
    n = len(cases) or 1
    return {key: value / n for key, value in counts.items()}, misses


def count(search: OfferSearch, cases: list[dict], ranking: Ranking) -> tuple[dict[str, float], list[str]]:
    """Hits in first place, in the first 3, and the sum of reciprocal ranks; and the misses."""
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
            if places[0]:
                misses.append(f"  NOT FIRST {case['q']!r}: expected {case['expect']}, got {types}")
        else:
            misses.append(f"  MISS {case['q']!r}: expected {case['expect']}, got {types}")
    return {"hit@1": hit1, "hit@3": hit3, "mrr@3": reciprocal}, misses


def shown(misses: list[str], not_first: bool) -> str:
    """The misses of the top 3, and with `not_first` also the hits that were not first."""
    lines = [m for m in misses if not_first or m.startswith("  MISS")]
    return "\n".join(lines) or "  (no misses)"


def fold_search(search: OfferSearch, held_out: Path) -> OfferSearch:
    """The search as it would meet `held_out`: its need classifier never saw that file."""
    return OfferSearch(
        search.catalogue,
        search.embedder,
        search.default_municipality,
        search.ranking,
        needs=train_without(search.catalogue, held_out),
    )


def cross_validate(search: OfferSearch, show_misses: bool, not_first: bool) -> None:
    batches = blind_batches()
    totals: dict[str, dict[str, dict[str, float]]] = {"all": {}, "latest 2": {}}
    sizes = {"all": 0, "latest 2": 0}
    print(f"\ncross-validation: {len(batches)} blind batches, each held out of the need classifier")
    print(f"  {'held out':<10} {'n':>4}  {'mode':<18} {'hit@1':>6} {'hit@3':>6} {'mrr@3':>6}")
    for path in batches:
        fold = fold_search(search, path)
        cases = load_cases(path)
        pools = ["all", "latest 2"] if path in batches[-2:] else ["all"]
        for pool in pools:
            sizes[pool] += len(cases)
        for name, ranking in modes(fold).items():
            counts, misses = count(fold, cases, ranking)
            for pool in pools:
                into = totals[pool].setdefault(name, {})
                for key, value in counts.items():
                    into[key] = into.get(key, 0.0) + value
            n = len(cases) or 1
            print(
                f"  {path.stem:<10} {len(cases):>4}  {name:<18} {counts['hit@1'] / n:>6.3f} "
                f"{counts['hit@3'] / n:>6.3f} {counts['mrr@3'] / n:>6.3f}"
            )
            if show_misses and name == "hybrid":
                print(shown(misses, not_first))
    for pool, by_mode in totals.items():
        for name, counts in by_mode.items():
            n = sizes[pool] or 1
            print(
                f"  {pool:<10} {sizes[pool]:>4}  {name:<18} {counts['hit@1'] / n:>6.3f} "
                f"{counts['hit@3'] / n:>6.3f} {counts['mrr@3'] / n:>6.3f}"
            )


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
    parser.add_argument("--cv", action="store_true", help="grouped cross-validation over the blind batches")
    parser.add_argument("--misses", action="store_true", help="print the hybrid's misses")
    parser.add_argument("--not-first", action="store_true", help="with --misses: also hits not in 1st place")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="ranking settings to try")
    parser.add_argument("--rounds", type=int, default=5, help="latency: passes over all queries")
    args = parser.parse_args(argv)
    files = args.cases or [p for p in (PUBLIC_CASES,) if p.exists()]

    started = time.perf_counter()
    search = get_offer_search()
    if args.set:
        changes = dict(item.split("=", 1) for item in args.set)
        typed = {k: type(getattr(search.ranking, k))(v) for k, v in changes.items()}
        search.ranking = search.with_ranking(**typed)
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
        print(f"  {'set':<8} {'n':>4}  {'mode':<18} {'hit@1':>6} {'hit@3':>6} {'mrr@3':>6}")
        for group, members in groups.items():
            for name, ranking in modes(search).items():
                figures, misses = score(search, members, ranking)
                print(
                    f"  {group:<8} {len(members):>4}  {name:<18} "
                    f"{figures['hit@1']:>6.3f} {figures['hit@3']:>6.3f} {figures['mrr@3']:>6.3f}"
                )
                if args.misses and name == "hybrid" and group == "all":
                    print(shown(misses, args.not_first))
    if args.cv:
        cross_validate(search, args.misses, args.not_first)
        all_queries += [c["q"] for path in blind_batches() for c in load_cases(path)]
    p50, p95 = latency(search, all_queries, args.rounds)
    print(
        f"\nlatency, hybrid, warm model, {len(all_queries)} queries x {args.rounds}: "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
