"""The plain text of the NLU training examples (nlu_data/train, Rasa's YAML), by intent.

Read by the learned layers that need ordinary messages besides their own data: the need gate
beside Rasa's intents (indgang/need_gate.py) and the safety check, which learns from them that a
greeting, a thank-you or a booking answer is calm.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from indgang.settings import PROJECT_DIR

NLU_TRAIN_DIR = PROJECT_DIR / "nlu_data" / "train"
NLU_TEST_DIR = PROJECT_DIR / "nlu_data" / "test"  # the held-out split, never trained on
# Intents whose examples are not needs; entity-only intents ("i Aarhus", "han er 17") included.
NOT_NEED_INTENTS = frozenset(
    {
        "greet",
        "goodbye",
        "thank",
        "bot_help",
        "affirm",
        "deny",
        "stop_erase",
        "request_human",
        "book_contact",
        "cancel_booking",
        "change_booking",
        "ask_access",
        "inform_municipality",
        "inform_age",
        "inform_relation",
        "out_of_scope",
    }
)
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def nlu_examples(folder: Path = NLU_TRAIN_DIR) -> dict[str, list[str]]:
    """The plain text of every intent example in the Rasa NLU files under `folder`."""
    out: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or ():
            if "intent" in block:
                lines = [line.strip() for line in block["examples"].splitlines()]
                texts = [_ANNOTATION.sub(r"\1", line[2:]) for line in lines if line.startswith("- ")]
                out.setdefault(block["intent"], []).extend(texts)
    return out
