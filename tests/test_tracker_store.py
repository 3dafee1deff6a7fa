"""Rasa's tracker store as bot/endpoints.yml configures it (bot/bounded_tracker_store.py), in Rasa's
own environment against the real Redis: a turn's tracker stays the same size however long the
conversation, and nothing of the conversation is lost, doubled or reordered (issue 18)."""

from __future__ import annotations

import json
import subprocess

import pytest
import redis.asyncio as aioredis

from indgang import keys
from indgang.devstack import PROJECT_DIR, RASA_BIN, Stack
from indgang.settings import Settings

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

# Plays turns as Rasa's processor does (retrieve, add the turn's events, save) and prints what a
# test can check. A form starts at turn 20 and asks for a slot; a need is noted on some turns.
PLAY_TURNS = r"""
import asyncio, json, sys
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered
from rasa.utils.endpoints import read_endpoint_config

async def main(endpoints, conv, turns):
    store = TrackerStore.create(read_endpoint_config(endpoints, "tracker_store"), Domain.load("bot/domain"))
    seen = []
    for i in range(turns):
        tracker = await store.get_or_create_tracker(conv)
        seen.append(len(tracker.events))
        tracker.update(UserUttered(f"besked {i}"))
        if i % 3 == 0:
            tracker.update(SlotSet("need_text", f"behov {i}"))
        if i == 20:
            tracker.update(ActiveLoop("booking_form"))
            tracker.update(SlotSet("requested_slot", "booking_name"))
        tracker.update(BotUttered(f"svar {i}"))
        tracker.update(ActionExecuted("action_listen"))
        await store.save(tracker)
        if i == turns - 1:
            await store.save(tracker)  # saved twice: nothing doubles
    last = await store.retrieve(conv)
    full = await store.retrieve_full_tracker(conv)
    print(json.dumps({
        "store": type(store).__name__,
        "seen": seen,
        "slots": {k: last.get_slot(k) for k in ("need_text", "requested_slot")},
        "loop": last.active_loop_name,
        "said": [e.text for e in full.events if isinstance(e, UserUttered)],
        "answered": [e.text for e in full.events if isinstance(e, BotUttered)],
        "full_slots": {k: full.get_slot(k) for k in ("need_text", "requested_slot")},
    }))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


# A conversation Rasa's own store wrote (one JSON string) goes on under this one.
CONVERTS = r"""
import asyncio, json, sys
from rasa.core.tracker_store import RedisTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

async def main(endpoints, conv):
    config = read_endpoint_config(endpoints, "tracker_store")
    domain = Domain.load("bot/domain")
    old = RedisTrackerStore(domain, host=config.url, **config.kwargs)
    said = [UserUttered("første"), ActionExecuted("action_listen"), UserUttered("anden")]
    await old.save(DialogueStateTracker.from_events(conv, said))
    store = TrackerStore.create(config, domain)
    tracker = await store.get_or_create_tracker(conv)
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered("tredje"))
    await store.save(tracker)
    full = await store.retrieve_full_tracker(conv)
    print(json.dumps([e.text for e in full.events if isinstance(e, UserUttered)]))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def run_in_rasa(settings: Settings, script: str, *args: str) -> object:
    done = subprocess.run(
        [str(RASA_BIN.parent / "python"), "-c", script, "bot/endpoints.yml", *args],
        cwd=PROJECT_DIR,
        env={**Stack(settings).env(), "ACTION_SERVER_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def play(settings: Settings, conv: str, turns: int) -> dict:
    played = run_in_rasa(settings, PLAY_TURNS, conv, str(turns))
    assert isinstance(played, dict)
    return played


CONV = "web-store-0123456789abcdef"


async def test_a_turn_reads_the_same_whether_it_is_the_5th_or_the_40th(
    base_settings: Settings, redis: aioredis.Redis
) -> None:
    played = play(base_settings, CONV, 40)
    assert played["store"] == "BoundedRedisTrackerStore"  # Rasa falls back to memory silently
    seen = played["seen"]
    assert seen[10] > seen[5] > seen[1] > 0  # short conversations are read whole
    assert max(seen[14:]) <= min(seen[14:]) + 8  # long ones from a fixed number of turns back


async def test_a_long_conversation_keeps_every_turn_once_in_order_and_its_state(
    base_settings: Settings, redis: aioredis.Redis
) -> None:
    played = play(base_settings, CONV, 40)
    assert await redis.ttl(keys.rasa_tracker(CONV)) > 0
    assert played["said"] == [f"besked {i}" for i in range(40)]
    assert played["answered"] == [f"svar {i}" for i in range(40)]
    # what the last turns see, though the form and the need were set many turns before
    assert played["slots"] == {"need_text": "behov 39", "requested_slot": "booking_name"}
    assert played["loop"] == "booking_form"
    assert played["full_slots"] == played["slots"]


async def test_a_conversation_stored_by_rasas_own_store_goes_on_whole(
    base_settings: Settings, redis: aioredis.Redis
) -> None:
    assert run_in_rasa(base_settings, CONVERTS, CONV) == ["første", "anden", "tredje"]
    assert await redis.ttl(keys.rasa_tracker(CONV)) > 0
