"""The safety rules as data: every YAML file in `rules/` may hold a `lexicon`, `markers`, `idioms`
and `rules` (with `defaults` for the rules of that file). This module compiles them once."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from indgang.safety.patterns import Lexicon, PatternError, PatternSet, compile_pattern

RULES_DIR = Path(__file__).resolve().parent / "rules"
CATEGORIES = frozenset({"suicide", "self_harm", "violence", "child_at_risk"})
LANGUAGES = ("da", "en")

Kind = Literal["crisis", "concern", "idiom", "marker"]
Person = Literal["nearest", "self"]


@dataclass(frozen=True)
class Rule:
    id: str
    kind: Kind = "crisis"
    categories: frozenset[str] = frozenset()
    negatable: bool = True  # a negation just before or inside the match calms it
    past: bool = True  # a distant past in the same sentence calms it
    requires: str | None = None  # a marker that must be present
    unless: str | None = None  # a marker that calms it
    subject: str | None = None  # first | third | not_third | @lexicon entry
    person: Person = "nearest"  # who is at risk when the match names nobody
    # The danger's bare name ("selvmord", "overdose"), which is also how a topic is named (a
    # course, a novel, a school assignment): alone it counts only with the learned layer's support.
    weak: bool = False


@dataclass(frozen=True)
class Marker:
    name: str
    scope: Literal["clause", "sentence", "message"]


@dataclass(frozen=True)
class Combination:
    """Risk concepts that together are danger: all of `all` present, none of `unless`."""

    id: str
    all: frozenset[str]
    unless: frozenset[str] = frozenset()


@dataclass
class RuleSet:
    lexicon: Lexicon
    idioms: PatternSet[tuple[Rule, str]]
    markers: PatternSet[tuple[Marker, str]]
    rules: PatternSet[tuple[Rule, str]]
    marker_scopes: dict[str, str] = field(default_factory=dict)
    concepts: PatternSet[tuple[str, str]] = field(default_factory=lambda: PatternSet([]))
    concept_names: tuple[str, ...] = ()
    combinations: tuple[Combination, ...] = ()


_RULE_OPTIONS = frozenset(
    {"kind", "categories", "negatable", "past", "requires", "unless", "subject", "person", "weak"}
)


def _rule(entry: dict[str, Any], defaults: dict[str, Any], where: str) -> Rule:
    options = {**defaults, **{k: v for k, v in entry.items() if k in _RULE_OPTIONS}}
    unknown = set(entry) - _RULE_OPTIONS - {"id", *LANGUAGES}
    if unknown:
        raise PatternError(f"{where}: unknown keys {sorted(unknown)} in rule {entry.get('id')}")
    categories = frozenset(options.pop("categories", ()))
    if not categories <= CATEGORIES:
        raise PatternError(f"{where}: unknown categories {sorted(categories - CATEGORIES)}")
    rule = Rule(id=entry["id"], categories=categories, **options)
    if rule.kind == "crisis" and not rule.categories:
        raise PatternError(f"{where}: crisis rule {rule.id} has no category")
    return rule


def _compiled(entry: dict[str, Any], payload: Any, lexicon: Lexicon) -> list[tuple[Any, Any]]:
    out = []
    for language in LANGUAGES:
        for source in entry.get(language) or ():
            out.extend((pattern, (payload, language)) for pattern in compile_pattern(source, lexicon))
    return out


def load(directory: Path = RULES_DIR) -> RuleSet:
    docs = [
        (path.name, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        for path in sorted(directory.glob("*.yaml"))
    ]
    entries: dict[str, list[str]] = {}
    for _, doc in docs:
        entries.update(doc.get("lexicon") or {})
    lexicon = Lexicon(entries)
    idioms, markers, rules, concepts = [], [], [], []
    combinations: list[Combination] = []
    seen: set[str] = set()
    for name, doc in docs:
        for concept, entry in (doc.get("concepts") or {}).items():
            concepts += _compiled(entry, concept, lexicon)
        for entry in doc.get("combinations") or ():
            combinations.append(
                Combination(entry["id"], frozenset(entry["all"]), frozenset(entry.get("unless") or ()))
            )
        for entry in doc.get("idioms") or ():
            idioms += _compiled(entry, Rule(id=entry["id"], kind="idiom"), lexicon)
        for marker_name, entry in (doc.get("markers") or {}).items():
            markers += _compiled(entry, Marker(marker_name, entry.get("scope", "sentence")), lexicon)
        for entry in doc.get("rules") or ():
            rule = _rule(entry, doc.get("defaults") or {}, name)
            if rule.id in seen:
                raise PatternError(f"{name}: rule id {rule.id} is used twice")
            seen.add(rule.id)
            rules += _compiled(entry, rule, lexicon)
    scopes = {marker.name: marker.scope for _, (marker, _) in markers}
    for _, (rule, _) in rules:
        for marker in (rule.requires, rule.unless):
            if marker and marker not in scopes:
                raise PatternError(f"rule {rule.id} names the unknown marker {marker!r}")
    names = tuple(sorted({concept for _, (concept, _) in concepts} | set(scopes)))
    for combination in combinations:
        unknown = (combination.all | combination.unless) - set(names)
        if unknown:
            raise PatternError(f"combination {combination.id} names unknown concepts {sorted(unknown)}")
    return RuleSet(
        lexicon,
        PatternSet(idioms),
        PatternSet(markers),
        PatternSet(rules),
        scopes,
        PatternSet(concepts),
        names,
        tuple(combinations),
    )


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    return load()
