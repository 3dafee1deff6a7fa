"""Quality and speed of the safety check (indgang.safety.assess) on labelled batches.

    .venv/bin/python benchmarks/safety.py [BATCH.yaml ...] [--rounds 5] [--misses]

With no file it reads the held-out blind batches in benchmarks/data/safety_*.yaml. A batch has
`messages: [{text, crisis, tier?, lang, kind, persona}]` and optionally `conversations:` whose
turns are read in order with the conversation so far, as the gateway does. Prints recall and
false alarms overall, per tier, per kind, per language and per persona; which layers caught the
danger (each alone, too); and latency per message (p50/p95) and the model's load time.
With --misses it lists the misses and false alarms (read them, then fix in general terms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import yaml

from indgang import safety

DATA = Path(__file__).resolve().parent / "data"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def cases(path: Path) -> list[dict]:
    """Every labelled turn with the turns before it that raised no alarm (its context)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = [{**m, "context": []} for m in doc.get("messages") or ()]
    for conv in doc.get("conversations") or ():
        for i, turn in enumerate(conv["turns"]):
            previous = [t["text"] for t in conv["turns"][:i]]
            out.append({**conv, **turn, "context": previous, "turn": i})
    return out


def run(batch: list[dict], assess) -> tuple[list[tuple[dict, object]], list[float]]:
    results, took = [], []
    for case in batch:
        context, after_acute = list(case["context"]), False
        if "turn" in case:
            # as the gateway does: turns after an alarm start a fresh window, and after an acute
            # alarm a calm turn continues the emergency until help has come
            context, after_acute = _replay(context, assess)
        started = time.perf_counter()
        assessment = assess(case["text"], context, in_danger=after_acute)
        if not assessment.crisis and after_acute and safety.danger_continues(case["text"]):
            assessment = replace(assessment, crisis=True, risk="acute", layers=("continues",))
        results.append((case, assessment))
        took.append(time.perf_counter() - started)
    return results, took


def _replay(turns: list[str], assess) -> tuple[list[str], bool]:
    """The window the next turn is read with, and whether the conversation is in acute danger."""
    window: list[str] = []
    acute = False
    for text in turns:
        assessment = assess(text, window, in_danger=acute)
        if assessment.crisis:
            window, acute = [], assessment.risk == "acute"
        elif acute:
            # The turn after an acute alarm starts no window: the emergency goes on (and its reply
            # is the emergency again) or help has come (inbound._unalarmed).
            window, acute = [], safety.danger_continues(text)
        else:
            window.append(text)
    return window, acute


def line(results: list[tuple[dict, object]]) -> str:
    danger = [(c, a) for c, a in results if c["crisis"]]
    calm = [(c, a) for c, a in results if not c["crisis"]]
    caught = sum(a.crisis for _, a in danger)
    alarms = sum(a.crisis for _, a in calm)
    parts = []
    if danger:
        parts.append(f"recall {caught / len(danger):.3f} ({caught}/{len(danger)})")
    if calm:
        parts.append(f"false alarms {alarms / len(calm):.3f} ({alarms}/{len(calm)})")
    return "  ".join(parts)


def report(name: str, results: list[tuple[dict, object]], misses: bool) -> None:
    print(f"{name}: {len(results)} labelled turns  {line(results)}")
    for field in ("tier", "kind", "lang", "persona"):
        groups: dict[str, list] = defaultdict(list)
        for c, a in results:
            if field == "tier" and not c["crisis"]:
                continue
            groups[str(c.get(field, "-"))].append((c, a))
        print(f"  per {field}: " + "; ".join(f"{k} {line(v)}" for k, v in sorted(groups.items())))
    danger = [a for c, a in results if c["crisis"]]
    layers = sorted({layer for a in danger for layer in a.layers})
    alone = {layer: sum(a.layers == (layer,) for a in danger) for layer in layers}
    counts = [f"{layer} {sum(layer in a.layers for a in danger)} (alone {alone[layer]})" for layer in layers]
    print("  layers on danger: " + ", ".join(counts))
    tiers = defaultdict(int)
    for c, a in results:
        if c["crisis"] and a.crisis:
            tiers[(c.get("tier", "-"), a.risk)] += 1
    print("  tier (labelled -> given): " + ", ".join(f"{k[0]}->{k[1]} {v}" for k, v in sorted(tiers.items())))
    if misses:
        for c, a in results:
            if c["crisis"] != a.crisis:
                label = "MISS" if c["crisis"] else "FALSE"
                context = f" [after {len(c['context'])} turns]" if c["context"] else ""
                print(f"    {label} {c.get('kind')}{context} {','.join(a.layers)}: {c['text'][:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batches", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds for latency")
    parser.add_argument("--misses", action="store_true", help="list misses and false alarms")
    args = parser.parse_args()
    batches = args.batches or sorted(DATA.glob("safety_*.yaml"))
    if not batches:
        sys.exit("no batches")

    started = time.perf_counter()
    from indgang.safety import assess  # imported here so loading the layers can be timed

    assess("jeg har brug for hjælp til noget")  # long enough for every layer, so all are loaded
    loaded = time.perf_counter() - started
    print(f"safety: layers loaded in {loaded * 1000:.0f} ms")
    everything, warm = [], []
    for path in batches:
        batch = cases(path)
        results, _ = run(batch, assess)
        report(path.stem, results, args.misses)
        everything += results
        for _ in range(args.rounds):
            warm += run(batch, assess)[1]
    if len(batches) > 1:
        print(f"all: {len(everything)} labelled turns  {line(everything)}")
    if warm:
        print(
            f"latency per message: p50 {statistics.median(warm) * 1000:.2f} ms, "
            f"p95 {percentile(warm, 0.95) * 1000:.2f} ms ({len(warm)} assessments)"
        )


if __name__ == "__main__":
    main()
