"""Rasa's NLG endpoint: renders utter_<name> from the translation files in the writer's language."""

from __future__ import annotations

from typing import Any

from actions.context import language
from indgang.i18n import lookup


def render(body: dict[str, Any]) -> dict[str, Any]:
    name = str(body.get("response", "")).removeprefix("utter_")
    tracker = body.get("tracker") or {}
    lang = language(tracker.get("latest_message") or {})
    entry = lookup(f"bot.{name}", lang)
    if isinstance(entry, str):
        return {"text": entry, "buttons": []}
    text = lookup(f"bot.{name}.text", lang)
    if text is None:
        raise KeyError(f"no text for response {body.get('response')!r}")
    return {"text": text, "buttons": lookup(f"bot.{name}.buttons", lang) or []}
