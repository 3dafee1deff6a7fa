"""Texts that citizens and staff read, from the translation files in `locales/<lang>/*.yaml`.

A key is `<file stem>.<path inside the file>`, e.g. `chat.engine_down` lives in
`locales/da/chat.yaml` under `engine_down`. Danish is the default and the fallback.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

Language = Literal["da", "en"]
LANGUAGES: tuple[Language, ...] = ("da", "en")
DEFAULT_LANGUAGE: Language = "da"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"


class MissingText(KeyError):
    """A key that no translation file defines, in the language asked for or in Danish."""


def _flatten(prefix: str, node: Any, into: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}", value, into)
    else:
        into[prefix] = node


@lru_cache
def catalog(language: Language) -> dict[str, Any]:
    texts: dict[str, Any] = {}
    for path in sorted((LOCALES_DIR / language).glob("*.yaml")):
        _flatten(path.stem, yaml.safe_load(path.read_text(encoding="utf-8")) or {}, texts)
    return texts


def normalise_language(value: str | None) -> Language:
    return "en" if (value or "").lower().startswith("en") else DEFAULT_LANGUAGE


def t(key: str, language: str | None = DEFAULT_LANGUAGE, /, **values: Any) -> str:
    """The text for `key` in `language` (falling back to Danish), formatted with `values`."""
    text = lookup(key, language)
    if text is None:
        raise MissingText(key)
    return str(text).format(**values) if values else str(text)


def lookup(key: str, language: str | None = DEFAULT_LANGUAGE) -> Any | None:
    """The raw entry for `key` (text, list or None), falling back to Danish."""
    lang = normalise_language(language)
    return catalog(lang).get(key, catalog(DEFAULT_LANGUAGE).get(key))


def t_list(key: str, language: str | None = DEFAULT_LANGUAGE) -> list[Any]:
    """A list-valued entry (e.g. canned replies) in `language`, falling back to Danish."""
    value = lookup(key, language)
    if not isinstance(value, list):
        raise MissingText(key)
    return value
