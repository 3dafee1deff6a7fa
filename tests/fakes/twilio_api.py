"""A local fake of Twilio's Messages REST API, for tests: the real Twilio SDK talks to it over
real HTTP (point `settings.twilio_api_base` at `FakeTwilio.base_url`).

It speaks the API's shape: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP
Basic auth and form fields (To, From or MessagingServiceSid, Body, StatusCallback), answering
201 with a JSON message resource, or Twilio's JSON error with its error code. Tests can script
failures, read what was sent, and play Twilio's signed status callbacks.

Run alone: `python tests/fakes/twilio_api.py --port 8999` (GET /_fake/messages lists what was sent).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
from twilio.request_validator import RequestValidator

from indgang.settings import Settings

API_VERSION = "2010-04-01"
MAX_BODY = 1600


@dataclass(frozen=True)
class Failure:
    status: int
    code: int
    message: str


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-auth-token"
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)  # each: form, headers, resource
    requests: int = 0  # every POST, failed ones included
    _failures: list[Failure] = field(default_factory=list)
    held: int = 0  # message requests that arrived while held (see hold)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: threading.Event = field(default_factory=lambda: _set(threading.Event()))
    _server: ThreadingHTTPServer | None = None

    # --- running --------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-twilio", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def configure(self, settings: Settings) -> Settings:
        """`settings` with Twilio pointed here (the real SDK, this base URL), and a public URL."""
        return settings.model_copy(
            update={
                "twilio_account_sid": self.account_sid,
                "twilio_auth_token": self.auth_token,
                "twilio_from_number": "+4570000000",
                "twilio_api_base": self.base_url,
                "public_base_url": "https://indgang.example.dk",
                "sms_retry_wait_seconds": 0.01,
                "phone_hash_key": "test-phone-key",
            }
        )

    # --- what tests script and read ---------------------------------------------------------

    def fail_next(self, status: int, code: int, message: str, times: int = 1) -> None:
        """The next `times` message requests get this Twilio error (e.g. 500/20500, 400/21211)."""
        with self._lock:
            self._failures += [Failure(status, code, message)] * times

    def hold(self) -> None:
        """Message requests from now on wait unanswered: a send in flight, for a test to kill the
        sender during. `abandon_held` ends the hold."""
        self._open.clear()

    def abandon_held(self) -> None:
        """Answer the held requests 503 without taking them (the sender died before Twilio took
        its message), and let later requests through."""
        self._open.set()

    def _passes_hold(self) -> bool:
        with self._lock:
            if self._open.is_set():
                return True
            self.held += 1
        self._open.wait()
        return False

    def sent(self) -> list[dict[str, str]]:
        """The form fields of every accepted message, in order."""
        with self._lock:
            return [dict(m["form"]) for m in self.messages]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, str]]:
        """Block until at least `count` messages were accepted (the gateway sends after answering)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = self.sent()
            if len(sent) >= count:
                return sent
            time.sleep(0.05)
        raise TimeoutError(f"{len(self.sent())} SMS sent, expected {count}")

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self._failures.clear()
            self.requests = 0

    def status_callback(
        self, message: dict[str, str], status: str, error_code: str | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """What Twilio POSTs to a message's StatusCallback: (url, form fields, signed headers)."""
        with self._lock:
            resource = next(m["resource"] for m in self.messages if m["form"] == message)
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": resource["from"] or "",
            "MessageSid": resource["sid"],
            "MessageStatus": status,
            "SmsSid": resource["sid"],
            "SmsStatus": status,
            "To": resource["to"],
        }
        if error_code:
            form["ErrorCode"] = error_code
        url = message["StatusCallback"]
        signature = RequestValidator(self.auth_token).compute_signature(url, form)
        return url, form, {"X-Twilio-Signature": signature}

    # --- the API ----------------------------------------------------------------------------

    def handle(
        self, path: str, auth: str | None, form: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
            if auth != expected:
                return 401, _error(401, 20003, "Authenticate")
            if path != f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json":
                return 404, _error(404, 20404, "The requested resource was not found")
            problem = _invalid(form)
            if problem is not None:
                return problem
            if self._failures:
                failure = self._failures.pop(0)
                return failure.status, _error(failure.status, failure.code, failure.message)
            resource = self._resource(form)
            self.messages.append({"form": form, "headers": headers, "resource": resource})
            return 201, resource

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=False).replace("-0000", "+0000")
        service = form.get("MessagingServiceSid")
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": None if service else form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(_segments(form.get("Body", ""))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": message, "more_info": more_info, "status": status}


def _invalid(form: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
    """Twilio's own checks of a message request, with its error codes."""
    if not form.get("To"):
        return 400, _error(400, 21604, "A 'To' phone number is required.")
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return 400, _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required")
    if not form.get("Body") and not form.get("MediaUrl"):
        return 400, _error(400, 21602, "Message body is required.")
    if len(form.get("Body", "")) > MAX_BODY:
        return 400, _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    return None


def _segments(body: str) -> int:
    """Roughly as Twilio counts (the fake's own, deliberately independent of Indgang's)."""
    try:
        body.encode("gsm03.38")
        single, multi = 160, 153
    except UnicodeEncodeError:
        single, multi = 70, 67
    return 1 if len(body) <= single else math.ceil(len(body) / multi)


def _set(event: threading.Event) -> threading.Event:
    event.set()
    return event


def _handler(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8")
            form = dict(parse_qsl(raw, keep_blank_values=True))
            if not fake._passes_hold():
                self._json(503, _error(503, 20503, "Service Unavailable"))
                return
            status, body = fake.handle(
                urlsplit(self.path).path, self.headers.get("Authorization"), form, dict(self.headers)
            )
            self._json(status, body)

        def do_GET(self) -> None:
            if urlsplit(self.path).path == "/_fake/messages":
                self._json(200, {"messages": fake.sent()})
            else:
                self._json(404, _error(404, 20404, "The requested resource was not found"))

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:  # quiet: tests read .messages instead
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A local fake of Twilio's Messages API")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account-sid", default=FakeTwilio.account_sid)
    parser.add_argument("--auth-token", default=FakeTwilio.auth_token)
    args = parser.parse_args()
    fake = FakeTwilio(account_sid=args.account_sid, auth_token=args.auth_token, port=args.port).start()
    print(f"fake Twilio at {fake.base_url}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
