"""Rasa's NLG endpoint: renders utter_<name> from the translation files in the writer's language."""

from __future__ import annotations

from typing import Any

from actions.context import language
from indgang.i18n import lookup


def render(body: dict[str, Any]) -> dict[str, Any]:
    tracker = body.get("tracker") or {}
    lang = language(tracker.get("latest_message") or {})
    return text_of(str(body.get("response", "")).removeprefix("utter_"), lang)


def text_of(name: str, lang: str) -> dict[str, Any]:
    """The text (and buttons) of bot.<name> in the translation files."""
    entry = lookup(f"bot.{name}", lang)
    if isinstance(entry, str):
        return {"text": entry, "buttons": []}
    text = lookup(f"bot.{name}.text", lang)
    if text is None:
        raise KeyError(f"no text for response {name!r}")
    return {"text": text, "buttons": lookup(f"bot.{name}.buttons", lang) or []}
