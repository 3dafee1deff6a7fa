"""The dialogue engine over Rasa's REST channel, mapped into Indgang's reply model.

Bot messages carry a `custom` payload (from actions or the NLG endpoint) with offers, buttons
and flags; a custom message without its own text belongs to the text message before it.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Any
from urllib.parse import quote

import httpx

from indgang.background import BackgroundLoop
from indgang.dialogue import Button, EngineUnavailable, OfferCard, Reply

log = logging.getLogger(__name__)

WATCH_SECONDS = 1.0


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
    (`--enable-api`) needs Rasa's `--auth-token`, sent as the `token` query parameter.

    With several replicas (on one Redis, so any of them can carry any conversation) a
    conversation goes to the replica its id hashes to, and past one that is down: `check` looks
    at every replica and its action server each WATCH_SECONDS, and a request that finds its
    replica refusing connections tries the next at once. Only a request that never reached a
    replica goes to another: one that reached it may have changed the tracker, and sending it
    again would run the turn twice (a message that got no answer waits for engine_retry)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        rasa_urls: list[str],
        auth_token: str,
        timeout: float,
        action_urls: list[str] | None = None,
    ) -> None:
        self.client = client
        self.bases = [url.rstrip("/") for url in rasa_urls]
        self.actions = dict(zip(self.bases, action_urls or [], strict=False))  # replica -> its own
        self.auth = {"token": auth_token}
        self.timeout = timeout
        self.down: set[str] = set()
        self._watch = BackgroundLoop("rasa-watch", self.check, pause=WATCH_SECONDS, error_pause=WATCH_SECONDS)

    def replicas(self, conversation_id: str) -> list[str]:
        """The replicas in the order this conversation tries them: its own first, those seen
        down last (still tried: the view is up to WATCH_SECONDS old)."""
        first = zlib.crc32(conversation_id.encode()) % len(self.bases)
        ordered = self.bases[first:] + self.bases[:first]
        return sorted(ordered, key=lambda base: base in self.down)  # stable: hash order kept

    async def _answers(self, url: str) -> bool:
        try:
            return (await self.client.get(url, timeout=WATCH_SECONDS)).status_code == 200
        except httpx.HTTPError:
            return False

    async def check(self) -> None:
        """Which replicas are down: Rasa, or the action server it renders every text through."""
        urls = [(base, f"{base}/") for base in self.bases]
        urls += [(base, f"{self.actions[base]}/health") for base in self.bases if base in self.actions]
        answers = await asyncio.gather(*(self._answers(url) for _, url in urls))
        self.down = {base for (base, _), ok in zip(urls, answers, strict=True) if not ok}

    def start(self) -> None:
        if len(self.bases) > 1:  # one replica: nothing to choose between
            self._watch.start()

    async def stop(self) -> None:
        await self._watch.stop()

    async def _post(self, conversation_id: str, path: str, **request: Any) -> httpx.Response:
        *before, last = self.replicas(conversation_id)
        for base in before:
            try:
                return await self.client.post(f"{base}{path}", timeout=self.timeout, **request)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                log.warning("a Rasa replica refused the connection; trying the next one")
        return await self.client.post(f"{last}{path}", timeout=self.timeout, **request)

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[Reply]:
        body = {"sender": conversation_id, "message": text, "metadata": metadata}
        try:
            response = await self._post(conversation_id, "/webhooks/rest/webhook", json=body)
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"Rasa unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise EngineUnavailable(f"Rasa answered {response.status_code}")
        return to_replies(response.json() or [])

    async def record_staff_turn(self, conversation_id: str, text: str, staff: str) -> None:
        """Append the staff answer to Rasa's tracker as a bot turn (Rasa's HTTP API, enabled with
        --enable-api). The answer has reached the citizen already, so a failure is only logged."""
        event = {"event": "bot", "text": text, "metadata": {"staff": staff}}
        path = f"/conversations/{quote(conversation_id, safe='')}/tracker/events"
        try:
            response = await self._post(conversation_id, path, json=event, params=self.auth)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("staff turn not recorded in Rasa: %s", type(exc).__name__)
