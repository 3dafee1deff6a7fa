"""Quality and speed of the safety check (indgang.safety.assess) on the labelled messages.

    .venv/bin/python benchmarks/safety.py [--rounds 20] [--corpus ../shared/seeds]

Prints, per half of tests/data/safety_messages.yaml and overall: crisis recall, the false-alarm
rate on calm messages, how often the main category is among those found, and child-concern
recall; then latency per message (p50/p95): cold (each message's first assessment in this
process, after the rules are loaded) and warm (repeated). With --corpus, also the share of
sentences in a folder of .txt files that raise an alarm (text nobody labelled: read the alarms).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "safety_messages.yaml"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def quality(messages: list[dict], results: dict[str, object]) -> str:
    crisis = [m for m in messages if m["crisis"]]
    calm = [m for m in messages if not m["crisis"]]
    caught = [m for m in crisis if results[m["text"]].crisis]
    alarms = [m for m in calm if results[m["text"]].crisis]
    right_category = [m for m in caught if m["category"] in results[m["text"]].categories]
    concerns = [m for m in calm if m["category"] == "child_concern"]
    flagged = [m for m in concerns if results[m["text"]].child_concern]
    return (
        f"recall {len(caught) / len(crisis):.3f} ({len(caught)}/{len(crisis)})  "
        f"false alarms {len(alarms) / len(calm):.3f} ({len(alarms)}/{len(calm)})  "
        f"category {len(right_category)}/{len(caught)}  "
        f"child concern {len(flagged)}/{len(concerns)}"
    )


def corpus_sentences(folder: Path) -> list[str]:
    sentences = []
    for path in sorted(folder.glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="ignore")
        for part in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
            sentence = " ".join(part.split())
            if 15 <= len(sentence) <= 300:
                sentences.append(sentence)
    return sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="warm rounds over all messages")
    parser.add_argument("--corpus", type=Path, help="a folder of .txt files to count alarms in")
    args = parser.parse_args()

    started = time.perf_counter()
    from indgang.safety import assess  # imported here so loading the rules can be timed
    from indgang.safety.detector import default_detector

    default_detector()
    loaded = time.perf_counter() - started

    messages = yaml.safe_load(DATA.read_text(encoding="utf-8"))["messages"]
    cold: list[float] = []
    results = {}
    for m in messages:
        t0 = time.perf_counter()
        results[m["text"]] = assess(m["text"])
        cold.append(time.perf_counter() - t0)
    warm: list[float] = []
    for _ in range(args.rounds):
        for m in messages:
            t0 = time.perf_counter()
            assess(m["text"])
            warm.append(time.perf_counter() - t0)

    print(f"safety: {len(messages)} labelled messages, rules loaded in {loaded * 1000:.0f} ms")
    for half in sorted({m["half"] for m in messages}):
        print(f"  half {half}: {quality([m for m in messages if m['half'] == half], results)}")
    print(f"  all:    {quality(messages, results)}")
    print(
        f"  latency per message: cold p50 {statistics.median(cold) * 1e6:.0f} us, "
        f"p95 {percentile(cold, 0.95) * 1e6:.0f} us; warm p50 {statistics.median(warm) * 1e6:.0f} us, "
        f"p95 {percentile(warm, 0.95) * 1e6:.0f} us ({len(warm)} assessments)"
    )
    if args.corpus:
        sentences = corpus_sentences(args.corpus)
        alarms = [s for s in sentences if assess(s).crisis]
        print(f"  corpus {args.corpus}: {len(alarms)} alarms in {len(sentences)} sentences")
        for sentence in alarms:
            print(f"    ALARM {sentence[:150]}")


if __name__ == "__main__":
    main()
