"""Least privilege for staff, over real HTTP (the gateway in-process, a real Redis, Rasa down):
staff open only conversations that asked for a person or that they hold, an admin opens any
other only with a recorded reason, every view (pages, API, both live streams) is audited, and
the API docs and the metrics are for admins."""

from __future__ import annotations

import uuid

import httpx
import pytest
from test_staff_console import Login, citizen_waiting, http, login  # noqa: F401 (fixtures)

from indgang import keys
from indgang.records.db import Database
from indgang.staff import audit
from indgang.staff.accounts import Role
from webhook.staff_session import CSRF_HEADER

pytestmark = pytest.mark.anyio


async def quiet_conversation(http: httpx.AsyncClient) -> str:  # noqa: F811
    """A citizen who talks to the assistant and never asks for a person."""
    conv = f"quiet-{uuid.uuid4().hex}"
    first = await http.post("/api/v1/chat", json={"conversation_id": conv, "text": "hvad er et værested"})
    assert first.json()["conversation_token"]
    return conv


async def actions(records: Database, member: str) -> list[tuple[str, str, str]]:
    entries = await audit.entries(records)
    return [(e.action, e.conversation_id, e.detail) for e in entries if e.staff == member]


async def first_event(client: httpx.AsyncClient, url: str) -> int:
    """Open a live stream, read until its first event, and close it: the status code."""
    async with client.stream("GET", url) as stream:
        if stream.status_code == 200:
            async for line in stream.aiter_lines():
                if line.startswith(("event:", ":")):
                    break
        return stream.status_code


async def test_staff_cannot_open_a_conversation_that_never_asked_for_a_person(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    records: Database,
) -> None:
    conv = await quiet_conversation(http)
    staff = await login("mette")
    assert (await staff.get(f"/staff/conversations/{conv}")).status_code == 403
    base = f"/api/v1/staff/conversations/{conv}"
    for path, body in (("takeover", None), ("notes", {"text": "kigger"}), ("messages", {"text": "hej"})):
        assert (await staff.post(f"{base}/{path}", json=body)).status_code == 403, path
    assert await first_event(staff, f"/staff/conversations/{conv}/events") == 403
    assert (await staff.post(f"{base}/open", json={"reason": "nysgerrig"})).status_code == 403  # admins only
    assert not any(c == conv and a in ("view", "take_over") for a, c, _ in await actions(records, "mette"))

    asked, _ = await citizen_waiting(http)
    assert (await staff.get(f"/staff/conversations/{asked}")).status_code == 200
    assert (await staff.post(f"/api/v1/staff/conversations/{asked}/takeover")).status_code == 200
    # once another holds it, it still asked for a person: colleagues may look, not answer
    colleague = await login("jonas")
    assert (await colleague.get(f"/staff/conversations/{asked}")).status_code == 200


async def test_an_admin_opens_any_conversation_only_with_a_recorded_reason(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    records: Database,
) -> None:
    conv = await quiet_conversation(http)
    admin = await login("anne", Role.ADMIN)
    refused = await admin.get(f"/staff/conversations/{conv}")
    assert refused.status_code == 403 and 'name="reason"' in refused.text  # the form asks why
    base = f"/api/v1/staff/conversations/{conv}"
    assert (await admin.post(f"{base}/takeover")).status_code == 403
    assert (await admin.post(f"{base}/open", json={"reason": " "})).status_code == 422

    token = {"csrf_token": admin.headers[CSRF_HEADER]}
    reason = "borgerens anmodning om indsigt, sag 2026-17"
    opened = await admin.post(f"/staff/conversations/{conv}/open", data={**token, "reason": reason})
    assert opened.status_code == 303 and opened.headers["location"] == f"/staff/conversations/{conv}"
    page = await admin.get(f"/staff/conversations/{conv}")
    assert page.status_code == 200 and "hvad er et værested" in page.text
    assert await first_event(admin, f"/staff/conversations/{conv}/events") == 200
    assert ("open", keys.pseudonym(conv), reason) in await actions(records, "anne")
    # the reason opens it for this admin only
    other_admin = await login("bo", Role.ADMIN)
    assert (await other_admin.get(f"/staff/conversations/{conv}")).status_code == 403

    again = await quiet_conversation(http)
    api = await other_admin.post(f"/api/v1/staff/conversations/{again}/open", json={"reason": reason})
    assert api.status_code == 200
    assert (await other_admin.post(f"/api/v1/staff/conversations/{again}/takeover")).status_code == 200
    assert ("open", keys.pseudonym(again), reason) in await actions(records, "bo")


async def test_every_staff_view_is_audited(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    records: Database,
) -> None:
    conv, _ = await citizen_waiting(http)
    staff = await login("mette")
    before = len(await actions(records, "mette"))
    assert (await staff.get("/staff")).status_code == 200
    assert await first_event(staff, "/staff/inbox/events") == 200
    assert await first_event(staff, f"/staff/conversations/{conv}/events") == 200
    seen = (await actions(records, "mette"))[: len(await actions(records, "mette")) - before]
    assert ("inbox", "", "page") in seen
    assert ("inbox", "", "stream") in seen
    assert ("view", keys.pseudonym(conv), "stream") in seen

    admin = await login("anne", Role.ADMIN)
    assert (await admin.get("/staff/audit")).status_code == 200
    assert (await admin.get("/staff/webhooks")).status_code == 200
    assert {("audit_log", "", "page"), ("dead_letters", "", "page")} <= set(await actions(records, "anne"))


async def test_the_api_docs_and_the_metrics_are_for_admins(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    for path in ("/docs", "/redoc", "/metrics"):
        assert (await http.get(path)).status_code in (303, 401), path
    staff = await login("mette")
    admin = await login("anne", Role.ADMIN)
    for path in ("/docs", "/metrics"):
        assert (await staff.get(path)).status_code == 403, path
        assert (await admin.get(path)).status_code == 200, path
    # the metrics count turns without personal data
    conv = f"metrics-{uuid.uuid4().hex}"
    crisis = await http.post(
        "/api/v1/chat", json={"conversation_id": conv, "text": "jeg vil slå mig selv ihjel"}
    )
    assert crisis.json()["replies"][0]["crisis"] is True
    text = (await admin.get("/metrics")).text
    assert 'indgang_crisis_total{channel="web"}' in text
    assert conv not in text and "ihjel" not in text
    # the contract serves the schema itself at /openapi.json, for the evaluation and integrations
    assert (await http.get("/openapi.json")).json()["info"]["title"] == "Indgang gateway"
