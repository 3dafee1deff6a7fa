"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: its dependencies do);
for admins, the metrics and the API docs (`/openapi.json` itself stays public: the contract)."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from webhook.deps import StateDep
from webhook.staff_session import AdminDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _http_ok(client: httpx.AsyncClient, url: str, params: dict[str, str] | None = None) -> bool:
    try:
        response = await client.get(url, params=params, timeout=2.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def _redis_ok(state: StateDep) -> bool:
    try:
        return bool(await state.redis.ping())
    except Exception:
        return False


class Readiness(BaseModel):
    status: str  # "ok", or "degraded" (then the answer is 503, so a load balancer routes around it)
    # each dependency: "ok", "down", or "partial" (some of its replicas answer, and carry the load)
    checks: dict[str, str]


def _replicas_check(answers: list[bool]) -> str:
    return "ok" if all(answers) else "partial" if any(answers) else "down"


@router.get("/readyz", responses={200: {"model": Readiness}, 503: {"model": Readiness}})
async def readyz(state: StateDep) -> JSONResponse:
    """200 when every part answers; 503 naming the parts that do not. The gateway itself still
    serves while degraded (graceful answers, the crisis reply), so a load balancer should route
    by `/healthz` and alert on this."""
    s = state.settings
    rasa, actions = s.rasa_url_list, s.action_server_url_list
    redis_ok, *answers = await asyncio.gather(
        _redis_ok(state),
        *(_http_ok(state.http, f"{url}/status", {"token": s.rasa_auth_token}) for url in rasa),
        *(_http_ok(state.http, f"{url}/health") for url in actions),
    )
    checks = {
        "redis": "ok" if redis_ok else "down",
        "rasa": _replicas_check(answers[: len(rasa)]),
        "action_server": _replicas_check(answers[len(rasa) :]),
    }
    degraded = [name for name, value in checks.items() if value != "ok"]
    return JSONResponse(
        {"status": "degraded" if degraded else "ok", "checks": checks, "degraded": degraded},
        status_code=503 if degraded else 200,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(member: AdminDep) -> Response:
    """Prometheus metrics, for admins; a scraper uses the private METRICS_PORT instead."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/docs", include_in_schema=False)
async def docs(member: AdminDep) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Indgang gateway")


@router.get("/redoc", include_in_schema=False)
async def redoc(member: AdminDep) -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title="Indgang gateway")
