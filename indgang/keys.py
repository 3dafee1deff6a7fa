"""Every Redis key Indgang uses, and how long each lives. No other module builds key strings.

Rasa's own tracker and lock keys are made by Rasa (prefix set in bot/endpoints.yml); the names
here only need to stay clear of those.
"""

from __future__ import annotations

import hashlib

PREFIX = "indgang"


def pseudonym(conversation_id: str) -> str:
    """A one-way stand-in for a conversation id where the id itself must not be kept: the audit
    log (it outlives an erased conversation), log lines and rate counters. Whoever holds the id
    can compute it (to find the audit entries of a conversation); nobody can go back."""
    return "c-" + hashlib.sha256(conversation_id.encode()).hexdigest()[:20]


def conversation(conversation_id: str) -> str:
    """Hash: channel, language, created/updated times, slots the gateway remembers; for a web
    conversation also the SHA-256 of its token (never the token itself)."""
    return f"{PREFIX}:conv:{conversation_id}"


def transcript(conversation_id: str) -> str:
    """Stream of messages in and out (XADD ids are the transcript cursor)."""
    return f"{PREFIX}:conv:{conversation_id}:transcript"


def handoff(conversation_id: str) -> str:
    """Hash: handoff state, priority, staff member, times; what the queue watch noted about the
    current request (alerts sent, the booking offered, the place told)."""
    return f"{PREFIX}:conv:{conversation_id}:handoff"


SPOOL_LEASE_SECONDS = 120  # a replay that crashed mid-record is tried again after this
SPOOL_DONE_SECONDS = 7 * 24 * 60 * 60  # a replayed record stays known while it might linger


def spool_replay(record_id: str) -> str:
    """String "pending" (a replay of this spool record is under way, for SPOOL_LEASE_SECONDS)
    or "done" (replayed, for SPOOL_DONE_SECONDS): each record is replayed once."""
    return f"{PREFIX}:spool:{record_id}"


def handoff_queue() -> str:
    """Sorted set of conversations waiting for or held by staff (score orders the inbox); a
    member whose handoff expired is dropped whenever the queue is read."""
    return f"{PREFIX}:handoff:queue"


def handoff_watch() -> str:
    """Sorted set of handoffs waiting for pick-up, scored by when the queue watch looks at them
    next (or a worker's lease deadline): staff alerts, the queue timeout and place updates
    (indgang/queue_watch.py). A request adds its conversation; a pick-up or an erasure removes it."""
    return f"{PREFIX}:handoff:watch"


def rate_limit_prefix() -> str:
    """Prefix of every rate-limit key (indgang/ratelimit.py). The `limits` library appends
    ":LIMITER/<kind>/<pseudonym of the subject>/<limit>/<window>/second", a list of recent hits;
    the kind comes first, so counters of different kinds never share a key whatever the subject
    is, and no counter names a conversation, a number or an address."""
    return f"{PREFIX}:rate"


def idempotency(scope: str, key: str) -> str:
    """Marker that a request (e.g. a Twilio MessageSid) was already processed."""
    return f"{PREFIX}:seen:{scope}:{key}"


def events_stream() -> str:
    """Stream of outbound events for the municipality's systems (consumer group delivers). An
    entry goes once its deliveries are done or scheduled; older than EVENTS_RETENTION_SECONDS,
    it is trimmed."""
    return f"{PREFIX}:events"


def events_dead_letter() -> str:
    """Hash: delivery id -> a delivery (event, URL, attempts, last error) that failed every
    attempt; swept by the dispatcher after EVENTS_RETENTION_SECONDS."""
    return f"{PREFIX}:events:dead"


def rasa_tracker(conversation_id: str) -> str:
    """Rasa's own tracker (RedisTrackerStore with key_prefix "indgang" in bot/endpoints.yml)."""
    return f"{PREFIX}:tracker:{conversation_id}"


def retained_keys(conversation_id: str) -> list[str]:
    """The keys that live exactly as long as the conversation: each has its retention time
    (CONVERSATION_TTL_SECONDS), and every stored message renews them all together, so no part
    of a conversation (Rasa's tracker included) outlives or outruns another."""
    return [
        conversation(conversation_id),
        transcript(conversation_id),
        handoff(conversation_id),
        rasa_tracker(conversation_id),
        sms_recipient(conversation_id),
        sms_deliveries(conversation_id),
    ]


def rasa_lock(conversation_id: str) -> str:
    """Rasa's RedisLockStore lock (default prefix "lock:"): Rasa deletes it after each turn."""
    return f"lock:{conversation_id}"


def turn_lock(conversation_id: str) -> str:
    """Held while the gateway handles one of the conversation's messages (indgang/inbound.py),
    so its turns run one at a time across gateways and Rasa replicas; expires by itself."""
    return f"{PREFIX}:turn:{conversation_id}"


def conversation_keys(conversation_id: str) -> list[str]:
    """Every per-conversation key, for erasure: the retained ones and the short-lived markers
    (their own, shorter TTLs). Its bookings are SQL records (indgang/booking)."""
    return [
        *retained_keys(conversation_id),
        booking_collecting(conversation_id),
        sms_choices(conversation_id),
        sms_erase_pending(conversation_id),
        sms_stop_pending(conversation_id),
        engine_waiting_messages(conversation_id),
        staff_opened(conversation_id),
        *followup_conversation_keys(conversation_id),
        rasa_lock(conversation_id),
        turn_lock(conversation_id),
    ]


def engine_waiting() -> str:
    """Sorted set of conversations with messages waiting for the dialogue engine, scored by the
    epoch of their next try (or a worker's lease deadline); indgang/engine_retry.py."""
    return f"{PREFIX}:engine:waiting"


def engine_waiting_messages(conversation_id: str) -> str:
    """List: the conversation's messages that found the engine down, in order (JSON); the
    conversation's TTL."""
    return f"{PREFIX}:conv:{conversation_id}:engine:waiting"


# --- bookings with a tovholder (indgang/booking) ---------------------------------------------


def booking(booking_id: str) -> str:
    """Hash: one booking (tovholder, start, state, name, phone, topic, .ics token ...), where
    bookings lived before the SQL records: read only by `indgang db import-redis`."""
    return f"{PREFIX}:booking:{booking_id}"


def booking_notifications() -> str:
    """Sorted set of due SMS notifications, member "<kind>:<booking id>", scored by due epoch."""
    return f"{PREFIX}:booking:notifications"


def booking_notice_sent(member: str) -> str:
    """String: the booking's start when notice `member` was handed to Twilio, so a notice
    claimed again after a crash is not sent twice; expires when the booking starts."""
    return f"{PREFIX}:booking:notice:{member}:sent"


def booking_notice_attempts() -> str:
    """Hash: notice member -> refused sends so far (the back-off of its next try)."""
    return f"{PREFIX}:booking:notifications:attempts"


def booking_collecting(conversation_id: str) -> str:
    """Marker that the booking form is active in this conversation (for the chat's booking state)."""
    return f"{PREFIX}:conv:{conversation_id}:booking:collecting"


# --- the SMS channel (indgang/sms) -----------------------------------------------------------


def sms_recipient(conversation_id: str) -> str:
    """String: the citizen's number (E.164), kept only to send replies; the conversation's TTL."""
    return f"{PREFIX}:conv:{conversation_id}:sms:to"


def sms_choices(conversation_id: str) -> str:
    """String (JSON): the buttons last offered as numbered choices, so "2" maps to a payload."""
    return f"{PREFIX}:conv:{conversation_id}:sms:choices"


def sms_erase_pending(conversation_id: str) -> str:
    """Marker that the citizen wrote SLET and the confirmation is awaited (minutes)."""
    return f"{PREFIX}:conv:{conversation_id}:sms:erase"


def sms_stop_pending(conversation_id: str) -> str:
    """String: the "stop" written inside the booking form, while its JA or NEJ is awaited (minutes)."""
    return f"{PREFIX}:conv:{conversation_id}:sms:stop"


def sms_deliveries(conversation_id: str) -> str:
    """Hash: Twilio message SID -> JSON delivery state (status callbacks update it)."""
    return f"{PREFIX}:conv:{conversation_id}:sms:deliveries"


SMS_SENT_TTL_SECONDS = 2 * 24 * 60 * 60  # longer than any retry of a queued SMS


def sms_outbox() -> str:
    """Sorted set of queued SMS replies by send id, scored by due (or lease deadline) epoch."""
    return f"{PREFIX}:sms:outbox"


def sms_outbox_items() -> str:
    """Hash: send id -> JSON of the SMS (number, conversation, text, kind, attempts)."""
    return f"{PREFIX}:sms:outbox:items"


def sms_sent(send_id: str) -> str:
    """String: the Twilio SID one body of a queued SMS got, so a retry never sends it twice."""
    return f"{PREFIX}:sms:sent:{send_id}"


def sms_opt_out(conversation_id: str) -> str:
    """Marker that the number wrote STOP. Deliberately outside conversation_keys(): erasing a
    conversation must not start sending SMS again to someone who said stop; so it names the
    conversation by its pseudonym only, and an erased conversation leaves no id behind."""
    return f"{PREFIX}:sms:optout:{pseudonym(conversation_id)}"


# --- the staff console ---


def staff_opened(conversation_id: str) -> str:
    """Hash: admin username -> epoch until which they may open this conversation, which never
    asked for a person, after recording why (one login, STAFF_SESSION_SECONDS)."""
    return f"{PREFIX}:conv:{conversation_id}:staff:opened"


def staff_account(username: str) -> str:
    """Hash: password_hash (argon2), role, display_name; disabled; totp_secret and
    totp_last_step once TOTP is enrolled. Where accounts lived before the SQL records: read only
    by `indgang db import-redis` (indgang/records/import_redis.py)."""
    return f"{PREFIX}:staff:account:{username}"


def staff_session(session_hash: str) -> str:
    """Hash: a staff login session (username, stage; a TOTP secret being enrolled),
    keyed by the SHA-256 of the id in the browser's cookie. Lives STAFF_SESSION_SECONDS, or
    STAFF_LOGIN_STEP_SECONDS while the login waits for its second step."""
    return f"{PREFIX}:staff:session:{session_hash}"


STAFF_LOGIN_STEP_SECONDS = 300  # to type the TOTP code, or to enrol it


def staff_account_sessions(username: str) -> str:
    """Set: the hashes of an account's sessions, so that all of them can be ended at once; lives
    as long as the longest of them."""
    return f"{PREFIX}:staff:account:{username}:sessions"


def login_failures(kind: str, subject: str) -> str:
    """Hash: recent failed staff logins (failures, last) of one `kind` of subject: "client" (an
    address) or "account" (a username); forgotten LOGIN_FAILURES_MEMORY_SECONDS after the last."""
    return f"{PREFIX}:login:{kind}:{subject}"


LOGIN_FAILURES_MEMORY_SECONDS = 3600


def staff_audit() -> str:
    """Stream: every staff access to a conversation (who, what, when), where the audit log lived
    before the SQL records: read only by `indgang db import-redis`."""
    return f"{PREFIX}:staff:audit"


# --- outbound webhooks (indgang/webhooks) ----------------------------------------------------


def events_retries() -> str:
    """Sorted set: delivery id -> when its next attempt is due (epoch seconds)."""
    return f"{PREFIX}:events:retries"


def events_deliveries() -> str:
    """Hash: delivery id -> a delivery waiting in events_retries() (event body, URL, attempts);
    swept with the dead letters."""
    return f"{PREFIX}:events:deliveries"


# --- follow-up and satisfaction (indgang/followup.py) -------------------------------------------


def followup_consent_asked(conversation_id: str) -> str:
    """Marker that the follow-up consent was asked in this conversation (once); its TTL."""
    return f"{PREFIX}:conv:{conversation_id}:followup:consent:asked"


def followup_pending(conversation_id: str) -> str:
    """String (JSON): the one question the gateway asked and awaits an answer to (follow-up
    consent, the follow-up itself, or satisfaction), with the offer types it is about; the next
    message takes it, answer or not. Days (FOLLOWUP_ANSWER_SECONDS)."""
    return f"{PREFIX}:conv:{conversation_id}:followup:pending"


def followup_of(conversation_id: str) -> str:
    """String: the id of the follow-up the conversation consented to, so erasure finds it; lives
    as long as the follow-up."""
    return f"{PREFIX}:conv:{conversation_id}:followup"


def satisfaction_asked(conversation_id: str) -> str:
    """Marker that the satisfaction question was asked in this conversation (never again); its TTL."""
    return f"{PREFIX}:conv:{conversation_id}:satisfaction:asked"


def followup_conversation_keys(conversation_id: str) -> list[str]:
    return [
        followup_consent_asked(conversation_id),
        followup_pending(conversation_id),
        followup_of(conversation_id),
        satisfaction_asked(conversation_id),
    ]


def followup(followup_id: str) -> str:
    """Hash: a consented follow-up (conversation, channel, language, offer types, due); no words,
    no number. Lives until FOLLOWUP_KEEP_SECONDS after it is due, or until asked."""
    return f"{PREFIX}:followup:{followup_id}"


def followup_due() -> str:
    """Sorted set of SMS follow-ups by id, scored by due (or lease deadline) epoch; each is
    removed once asked, dropped or erased (indgang/outbox.py's leases)."""
    return f"{PREFIX}:followup:due"


def followup_outcomes() -> str:
    """Hash: "<offer type>:<yes|no|partly>" -> count, where follow-up answers were counted before
    the insight counts in SQL: read only by `indgang db import-redis`."""
    return f"{PREFIX}:stats:followup"


def satisfaction_counts() -> str:
    """Hash: "1".."5" -> count, where satisfaction was counted before the insight counts in SQL:
    read only by `indgang db import-redis`."""
    return f"{PREFIX}:stats:satisfaction"
