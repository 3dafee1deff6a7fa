"""The citizen web chat page (`GET /`), the one-line widget that embeds it on a municipality's
own site (`GET /widget.js`), and the crisis lines the page offers as tap-to-call links."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from indgang.i18n import DEFAULT_LANGUAGE, LANGUAGES, Language, catalog, t
from indgang.safety import crisis_lines
from webhook.deps import SettingsDep
from webhook.templating import templates

router = APIRouter(tags=["web chat"])

TEXTS_PREFIX = "webchat."
# The page runs only its own files: a message can never become markup or script (XSS), and the
# page may be framed by any site, which is what the widget does.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
WIDGET_CACHE_SECONDS = 3600


def page_texts(language: Language) -> dict[str, Any]:
    """Every text of the page (webchat.yaml) in `language`, Danish where a key is missing."""
    merged = {**catalog(DEFAULT_LANGUAGE), **catalog(language)}
    return {key.removeprefix(TEXTS_PREFIX): v for key, v in merged.items() if key.startswith(TEXTS_PREFIX)}


def _chosen_language(lang: str | None) -> Language | None:
    return next((known for known in LANGUAGES if known == lang), None)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def chat_page(
    request: Request,
    settings: SettingsDep,
    lang: Annotated[str | None, Query(max_length=8)] = None,
    embed: bool = False,
) -> HTMLResponse:
    """The chat; `?lang=en` switches the page (and the bot) to English, `?embed=1` is the
    widget's compact variant with a close button."""
    chosen = _chosen_language(lang)
    language = chosen or DEFAULT_LANGUAGE
    other = "en" if language == "da" else "da"
    emergency = crisis_lines(language)[0]  # the emergency number is always first
    config = {
        "language": language,
        # Only a language the citizen chose is sent with each message; otherwise the bot answers
        # in the language the citizen writes in.
        "chosen_language": chosen,
        "embed": embed,
        "texts": page_texts(language),
    }
    return templates.TemplateResponse(
        request,
        "chat.html",
        {
            "lang": language,
            "other_lang": other,
            "other_href": "?" + urlencode({"lang": other, **({"embed": "1"} if embed else {})}),
            "t": lambda key, **values: t(TEXTS_PREFIX + key, language, **values),
            "embed": embed,
            "emergency": emergency,
            "retention_days": max(1, settings.conversation_ttl_seconds // 86400),
            "config": config,
        },
        headers=PAGE_HEADERS,
    )


@router.get("/widget.js", include_in_schema=False)
async def widget_script(request: Request) -> Response:
    """The embed script (see docs/widget.md); its texts come from webchat.yaml in both languages."""
    texts = {
        lang: {k: v for k, v in page_texts(lang).items() if k.startswith("widget.")} for lang in LANGUAGES
    }
    return templates.TemplateResponse(
        request,
        "widget.js",
        {"texts": texts, "default_language": DEFAULT_LANGUAGE},
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": f"public, max-age={WIDGET_CACHE_SECONDS}"},
    )


class CrisisLineOut(BaseModel):
    id: str
    name: str
    number: str
    tel_uri: str
    audience: str
    hours: str
    url: str | None
    emergency: bool


class CrisisLinesResponse(BaseModel):
    language: Language
    lines: list[CrisisLineOut]


@router.get("/api/v1/crisis-lines", response_model=CrisisLinesResponse, tags=["safety"])
async def crisis_lines_json(language: Literal["da", "en"] = DEFAULT_LANGUAGE) -> Response:
    """The emergency number first, then the crisis lines, in the reader's language."""
    body = CrisisLinesResponse(
        language=language,
        lines=[CrisisLineOut.model_validate(line, from_attributes=True) for line in crisis_lines(language)],
    )
    return Response(
        body.model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )
