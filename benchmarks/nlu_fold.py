"""Fold a spent blind NLU batch into the training data, with its entities annotated.

    .venv/bin/python benchmarks/nlu_fold.py benchmarks/data/spent/nlu_b.yaml [--relabel FILE]
    .venv/bin/python benchmarks/nlu_fold.py --requests indgang/search/training/blind_*.yaml

Writes `nlu_data/train/blind/<batch>.yml` in Rasa's format. `--requests` reads the dialogues of
spent blind search batches instead: their writers labelled each turn that asks for a person
(`handoff_in`) or a booking (`booking: collecting`), in every persona's words ("Situationen er
dog ret indviklet, så jeg vil meget gerne tale med en medarbejder"); those calm turns become
request_human and book_contact examples in `nlu_data/train/blind/requests.yml`.

The batches carry intents only, but DIETClassifier learns entities from the same examples: a
"min søn" left unannotated would teach it that "søn" is no relation. So every surface form that
the project's own entity files map (entities.yml synonyms for relation and need_area, lookups/
for municipality) is annotated where it appears as whole words, longest first; ages only as "<n>
år/years" or in inform_age answers. Bare pronouns ("mig", "me") are a relation only in
inform_relation answers, and need areas are annotated only in needs and questions about offers,
as in the hand-written data ("how does this work" is no employment). `--relabel` takes a YAML
map {text: intent} for items whose label the project draws differently (recorded beside the
batch, never edited in it).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from indgang.nlu_examples import NLU_TEST_DIR, NLU_TRAIN_DIR, nlu_examples

ENTITY_FILES = (NLU_TRAIN_DIR / "entities.yml", NLU_TRAIN_DIR / "lookups" / "municipalities.yml")
RELATIONS = {"self", "child", "partner", "parent", "sibling", "friend", "other"}
NEED_INTENTS = {"describe_need", "ask_offer", "ask_access"}
PRONOUNS = {"mig", "me", "jeg selv", "mig self", "migselv", "myself"}
AGE = re.compile(r"\b(1[01][0-9]|[1-9]?[0-9])(?=\s*-?\s*(?:år|aar|årig|aarig|years?|yrs?|y/o|yo)\b)", re.I)
BARE_AGE = re.compile(r"\b(1[01][0-9]|[1-9]?[0-9])\b")


def surface_forms() -> list[tuple[str, str]]:
    """(surface form, entity) pairs from the project's entity files, longest first."""
    forms: dict[str, str] = {}
    for path in ENTITY_FILES:
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "synonym" in block:
                entity = "relation" if block["synonym"] in RELATIONS else "need_area"
                if path.name == "municipalities.yml":
                    entity = "municipality"
            elif block.get("lookup") == "municipality":
                entity = "municipality"
            else:
                continue
            for line in block["examples"].splitlines():
                form = line.strip()[2:].strip().lower()
                if line.strip().startswith("- ") and form:
                    forms.setdefault(form, entity)
    return sorted(forms.items(), key=lambda kv: -len(kv[0]))


def annotate(text: str, intent: str, forms: list[tuple[str, str]]) -> str:
    spans: list[tuple[int, int, str]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in spans)

    ages = BARE_AGE if intent == "inform_age" else AGE
    for m in ages.finditer(text):
        if free(m.start(1), m.end(1)) and not re.search(r"(kl\.?|:)\s*$", text[: m.start(1)], re.I):
            spans.append((m.start(1), m.end(1), "age"))
    lowered = text.lower()
    for form, entity in forms:
        if (form in PRONOUNS and intent != "inform_relation") or (
            entity == "need_area" and intent not in NEED_INTENTS
        ):
            continue
        for m in re.finditer(rf"(?<!\w){re.escape(form)}(?!\w)", lowered):
            if free(m.start(), m.end()):
                spans.append((m.start(), m.end(), entity))
    out = text
    for start, end, entity in sorted(spans, reverse=True):
        out = f"{out[:start]}[{out[start:end]}]({entity}){out[end:]}"
    return out


def examples(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["examples"]


def requests(path: Path) -> list[dict]:
    """The calm dialogue turns a search batch's writer labelled as asking for a person or a
    booking, as {text, intent}."""
    out = []
    for dialogue in yaml.safe_load(path.read_text(encoding="utf-8")).get("dialogues") or ():
        for turn in dialogue["turns"]:
            if turn.get("crisis"):
                continue
            if "handoff_in" in turn:
                out.append({"text": turn["user"], "intent": "request_human"})
            elif turn.get("booking") == "collecting":
                out.append({"text": turn["user"], "intent": "book_contact"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("batch", type=Path, nargs="+")
    parser.add_argument("--relabel", type=Path)
    parser.add_argument("--requests", action="store_true", help="the batches are search batches")
    args = parser.parse_args()
    if len(args.batch) > 1 and not args.requests:
        parser.error("one NLU batch at a time: each is folded into a file of its own name")
    relabel = yaml.safe_load(args.relabel.read_text(encoding="utf-8")) if args.relabel else {}
    forms = surface_forms()
    # The held-out split is never trained on: a batch message that is also in it stays out.
    held_out = {text.casefold() for texts in nlu_examples(NLU_TEST_DIR).values() for text in texts}
    items = [item for path in args.batch for item in (requests(path) if args.requests else examples(path))]
    by_intent: dict[str, list[str]] = {}
    seen: set[str] = set()
    for item in items:
        text = " ".join(str(item["text"]).split())
        if text.casefold() in held_out or text.casefold() in seen:
            continue
        seen.add(text.casefold())
        intent = relabel.get(text, item["intent"])
        by_intent.setdefault(intent, []).append(annotate(text, intent, forms))
    blocks = [
        f"  - intent: {intent}\n    examples: |\n" + "".join(f"      - {line}\n" for line in lines)
        for intent, lines in sorted(by_intent.items())
    ]
    name = "requests" if args.requests else args.batch[0].stem
    target = NLU_TRAIN_DIR / "blind" / f"{name}.yml"
    target.parent.mkdir(exist_ok=True)
    source = ", ".join(sorted(path.stem for path in args.batch))
    header = f"# Blind batch {source}, folded by benchmarks/nlu_fold.py after its first run.\n"
    target.write_text(f'{header}version: "3.1"\nnlu:\n' + "".join(blocks), encoding="utf-8")
    yaml.safe_load(target.read_text(encoding="utf-8"))  # fails loudly on a line YAML cannot read
    print(f"{target}: {sum(len(v) for v in by_intent.values())} examples, {len(by_intent)} intents")


if __name__ == "__main__":
    main()
