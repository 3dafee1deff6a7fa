"""The logs hold no personal data: the whole stack (trained Rasa model, action server, Redis) and a
gateway whose Twilio settings point at a local fake, driven through a web conversation with a
name, a phone number and distinctive words, an offer search, a booking with its calendar file, a
crisis and an SMS; then every log any process wrote is searched for any of them."""

from __future__ import annotations

import random
import re
import string
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.twilio_api import FakeTwilio
from twilio.request_validator import RequestValidator

from indgang.devstack import Stack, free_port
from indgang.phone import normalise_phone
from indgang.sms import recipients
from webhook.citizen import TOKEN_HEADER


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(stack: Stack, twilio: FakeTwilio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A second gateway on the running stack (same Redis, Rasa and actions), talking to the fake,
    with its own log file."""
    port = free_port()
    settings = twilio.configure(stack.settings).model_copy(
        update={
            "gateway_port": port,
            "public_base_url": f"http://127.0.0.1:{port}",
            "phone_hash_key": stack.settings.phone_hash_key,  # the actions hash numbers with it too
            "metrics_port": free_port(),
        }
    )
    running = Stack(settings, log_dir=tmp_path_factory.mktemp("logs"))
    try:
        running.start_gateway()
        yield running
    finally:
        running.stop_all()


def word() -> str:
    """A word no log could hold by chance."""
    return "".join(random.choices(string.ascii_lowercase, k=10))


def phone_number() -> str:
    while not normalise_phone(number := f"+452{random.randrange(10**7):07d}"):
        pass
    return number


class Web:
    def __init__(self, gateway: Stack) -> None:
        self.client = httpx.Client(base_url=gateway.gateway_url, timeout=90)
        self.id = f"logscan-{uuid.uuid4().hex}"
        self.token = ""
        self.last: dict[str, Any] = {}

    def say(self, text: str) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/chat",
            json={"conversation_id": self.id, "text": text},
            headers={TOKEN_HEADER: self.token} if self.token else {},
        )
        assert response.status_code == 200, response.text
        self.last = response.json()
        self.token = self.last.get("conversation_token") or self.token
        return self.last

    @property
    def text(self) -> str:
        return "\n".join(r["text"] for r in self.last["replies"])


def sms(gateway: Stack, twilio: FakeTwilio, number: str, body: str) -> None:
    s = gateway.settings
    form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": twilio.account_sid, "From": number,
            "To": "+4570000000", "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01"}  # fmt: skip
    url = f"{s.public_base_url}/twilio/sms"
    signature = RequestValidator(s.twilio_auth_token or "").compute_signature(url, form)
    response = httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=90)
    assert response.status_code == 200, response.text


def every_log(*stacks: Stack) -> dict[Path, str]:
    return {
        path: path.read_text(errors="replace") for stack in stacks for path in stack.log_dir.rglob("*.log")
    }


def test_no_log_holds_a_citizens_number_name_words_conversation_or_token(
    stack: Stack, gateway: Stack, twilio: FakeTwilio
) -> None:
    number, name = phone_number(), f"Ellinor {word().capitalize()}"
    need, topic, search, crisis_word, sms_word = (word() for _ in range(5))
    web = Web(gateway)
    web.say(f"hej, jeg hedder {name} og mit nummer er {number[3:]}. Jeg drikker for meget {need}")
    assert web.token
    messages = web.client.get(f"/api/v1/chat/{web.id}/messages", headers={TOKEN_HEADER: web.token})
    assert messages.status_code == 200
    offers = web.client.get("/api/v1/offers", params={"q": f"værested {search}", "limit": 3})
    assert offers.status_code == 200

    web.say("jeg vil gerne booke en tid hos en tovholder")
    for answer in (
        "ja",
        "mig selv",
        name,
        number[3:],
        f"hjælp til at finde et sted at bo {topic}",
        "telefon",
        "1",
    ):
        web.say(answer)
    assert web.last["booking"] and web.last["booking"]["state"] == "confirmed", web.last
    link = re.search(r"/api/v1/bookings/(bk_[0-9a-f]+)\.ics\?token=([\w-]+)", web.text)
    assert link, web.text
    booking_token = link[2]
    assert web.client.get(link[0]).status_code == 200

    web.say(f"jeg kan ikke mere, jeg vil tage mit eget liv i nat {crisis_word}")
    assert web.last["replies"][0]["crisis"] is True

    before = len(twilio.sent())
    sms(gateway, twilio, number, f"hej, jeg har brug for hjælp til bolig {sms_word}")
    twilio.wait_for(before + 1)
    # Prometheus reads the gateway's metrics on the private port; the public one wants an admin.
    metrics = httpx.get(f"http://127.0.0.1:{gateway.settings.metrics_port}/metrics", timeout=10)
    assert metrics.status_code == 200 and "indgang_messages_total" in metrics.text
    time.sleep(2)  # every process has written its lines

    secrets = {
        "the phone number": number,
        "the phone number without +45": number[3:],
        "the name": name.split()[1],
        "the citizen's words": need,
        "the booking topic": topic,
        "the search words": search,
        "the crisis message": crisis_word,
        "the SMS": sms_word,
        "the web conversation id": web.id,
        "the SMS conversation id": recipients.conversation_id(number, gateway.settings),
        "the conversation token": web.token,
        "the calendar file's token": booking_token,
    }
    logs = every_log(stack, gateway)
    assert {path.name for path in logs} >= {"gateway.log", "rasa.log", "actions.log"}
    found = [
        f"{what} in {path.name}: {line[:200]}"
        for path, text in logs.items()
        for line in text.splitlines()
        for what, secret in secrets.items()
        if secret in line
    ]
    assert found == []
    # the access log keeps method, route template, status and time
    access = [line for line in logs[gateway.log_dir / "gateway.log"].splitlines() if '"access"' in line]
    assert any(
        "/api/v1/chat/{conversation_id}/messages" in line and '"status": 200' in line for line in access
    )
