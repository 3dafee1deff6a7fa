"""The dialogue engine over Rasa's REST channel, mapped into Indgang's reply model.

Bot messages carry a `custom` payload (from actions or the NLG endpoint) with offers, buttons
and flags; a custom message without its own text belongs to the text message before it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from indgang.dialogue import Button, EngineUnavailable, OfferCard, Reply

log = logging.getLogger(__name__)


def to_replies(messages: list[dict[str, Any]]) -> list[Reply]:
    replies: list[Reply] = []
    for message in messages:
        custom = message.get("custom") if isinstance(message.get("custom"), dict) else None
        if message.get("text"):
            replies.append(
                Reply(text=message["text"], buttons=[Button(**b) for b in message.get("buttons") or []])
            )
        if custom is None:
            continue
        if custom.get("text") or not replies:
            replies.append(Reply(text=custom.get("text") or ""))
        target = replies[-1]
        target.buttons += [Button(**b) for b in custom.get("buttons") or []]
        target.offers += [OfferCard(**o) for o in custom.get("offers") or []]
        target.crisis = target.crisis or bool(custom.get("crisis"))
    return replies


class RasaEngine:
    """Rasa's REST channel takes no token (only the network keeps it private); its HTTP API
    (`--enable-api`) needs Rasa's `--auth-token`, sent as the `token` query parameter."""

    def __init__(self, client: httpx.AsyncClient, rasa_url: str, auth_token: str, timeout: float) -> None:
        self.client = client
        self.base = rasa_url.rstrip("/")
        self.url = f"{self.base}/webhooks/rest/webhook"
        self.auth = {"token": auth_token}
        self.timeout = timeout

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[Reply]:
        body = {"sender": conversation_id, "message": text, "metadata": metadata}
        try:
            response = await self.client.post(self.url, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"Rasa unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise EngineUnavailable(f"Rasa answered {response.status_code}")
        return to_replies(response.json() or [])

    async def record_staff_turn(self, conversation_id: str, text: str, staff: str) -> None:
        """Append the staff answer to Rasa's tracker as a bot turn (Rasa's HTTP API, enabled with
        --enable-api). The answer has reached the citizen already, so a failure is only logged."""
        event = {"event": "bot", "text": text, "metadata": {"staff": staff}}
        url = f"{self.base}/conversations/{quote(conversation_id, safe='')}/tracker/events"
        try:
            response = await self.client.post(url, json=event, params=self.auth, timeout=self.timeout)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("staff turn not recorded in Rasa: %s", type(exc).__name__)
