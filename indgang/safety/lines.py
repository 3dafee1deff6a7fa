"""The crisis lines (configurable data) and the emergency reply built from them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from indgang.i18n import normalise_language, t
from indgang.safety.detector import SafetyAssessment
from indgang.safety.rules import CATEGORIES
from indgang.settings import get_settings


class _LineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str
    name: str
    number: str
    tel: str = Field(pattern=r"^\+?[0-9]{3,15}$")
    categories: frozenset[str] = frozenset()
    emergency: bool = False
    young: bool = False
    audience: dict[str, str] = Field(alias="for")
    hours: dict[str, str]
    url: str | None = None

    def localised(self, language: str) -> CrisisLine:
        return CrisisLine(
            id=self.id,
            name=self.name,
            number=self.number,
            tel_uri=f"tel:{self.tel}",
            audience=self.audience.get(language) or self.audience["da"],
            hours=self.hours.get(language) or self.hours["da"],
            url=self.url,
            categories=self.categories,
            emergency=self.emergency,
            young=self.young,
        )


class CrisisLine(BaseModel):
    """One line as shown to a citizen, in their language (e.g. a tap-to-call link)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    number: str  # as people read it: "70 201 201"
    tel_uri: str  # for a link: "tel:+4570201201"
    audience: str  # who the line is for
    hours: str  # opening hours
    url: str | None = None
    categories: frozenset[str] = frozenset()
    emergency: bool = False
    young: bool = False  # also for a writer who seems to be a child or young person


@lru_cache(maxsize=4)
def _load(path: Path) -> tuple[_LineSpec, ...]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    lines = tuple(_LineSpec.model_validate(entry) for entry in doc.get("lines") or ())
    if sum(line.emergency for line in lines) != 1:
        raise ValueError(f"{path}: exactly one line must be the emergency number")
    for line in lines:
        if not line.categories <= CATEGORIES:
            raise ValueError(
                f"{path}: line {line.id} has unknown categories {sorted(line.categories - CATEGORIES)}"
            )
    return lines


def crisis_lines(language: str | None = None) -> list[CrisisLine]:
    """The configured lines in the reader's language, the emergency number first."""
    lang = normalise_language(language)
    lines = _load(get_settings().crisis_lines_file)
    return [line.localised(lang) for line in sorted(lines, key=lambda line: not line.emergency)]


def lines_for(assessment: SafetyAssessment, language: str | None = None) -> list[CrisisLine]:
    """The emergency number, then the lines that fit the assessment (in configured order).

    A young writer, or a child at risk, gets the children's line; with no category at all (which a
    crisis always has) the suicide line is the fallback so the reply never names 112 alone.
    """
    lines = crisis_lines(language or assessment.language)
    emergency = [line for line in lines if line.emergency]
    fitting = [
        line
        for line in lines
        if not line.emergency
        and (line.categories & assessment.categories or (line.young and assessment.young))
    ]
    return emergency + (fitting or [line for line in lines if "suicide" in line.categories])


def _opening(assessment: SafetyAssessment) -> str:
    if "child_at_risk" in assessment.categories and not assessment.about_other:
        return "child"
    if assessment.about_other:
        return "other"
    if assessment.categories == {"violence"}:
        return "violence"
    return "self"


def crisis_reply(assessment: SafetyAssessment, language: str | None = None) -> str:
    """The emergency reply: warm, short (fits two SMS), 112 first, then the lines that fit."""
    lang = normalise_language(language or assessment.language)
    tone = "concern" if assessment.risk == "concern" else "crisis"  # a check-in, or danger now
    emergency, *others = lines_for(assessment, lang)
    listed = t("safety.crisis.separator", lang).join(
        t("safety.crisis.line", lang, name=line.name, number=line.number, hours=line.hours) for line in others
    )
    return " ".join(
        [
            t(f"safety.{tone}.opening.{_opening(assessment)}", lang),
            t("safety.crisis.emergency", lang, number=emergency.number),
            t("safety.crisis.lines", lang, lines=listed),
            t("safety.crisis.closing", lang),
        ]
    )
