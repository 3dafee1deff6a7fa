"""The gateway's one Jinja2 environment for its pages, and the URLs of its static assets."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

WEBHOOK_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEBHOOK_DIR / "templates"
STATIC_DIR = WEBHOOK_DIR / "static"
STATIC_PREFIX = "/static"


@lru_cache
def static_url(path: str) -> str:
    """The URL of a file under webhook/static, versioned by its content so a new release is
    never served from an old browser cache."""
    digest = hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{path}?v={digest}"


def static_files() -> StaticFiles:
    """Mount this at STATIC_PREFIX (one line in create_app)."""
    return StaticFiles(directory=STATIC_DIR)


templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.globals["static_url"] = static_url
