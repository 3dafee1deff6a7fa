"""Rasa's Redis tracker store, with the cost of a turn bounded by the last few turns instead of the
whole conversation (bot/endpoints.yml: `type: bot.bounded_tracker_store.BoundedRedisTrackerStore`).

Rasa 3.6's RedisTrackerStore keeps a conversation as one JSON string and replays every event of
it several times a turn (read: deserialise, split into sessions; save: read again, deserialise,
travel back in time to merge, serialise), and the tracker it hands on is sent whole to the action
server with every action and response. On one conversation straight at Rasa, messages 51-60 took
139 ms against 37 ms for 1-10.

This store keeps a conversation under the same key (so the gateway's renewal and erasure work as
before) as a Redis list: item 0 is a small header, then one item per event.

- **save appends**: a tracker this store handed out remembers how many events it had; only the
  events added since are pushed. No merge: Rasa's lock store and the gateway's per-conversation
  order (indgang/inbound.py) let one turn at a time change a tracker.
- **retrieve reads the last turns**: at the end of each turn the header notes the state (slot
  values, the active form) and where the next turn's events start. Once a conversation has
  KEEP_TURNS turns, the tracker starts at the oldest noted turn, with that state set up front as
  Rasa starts a session that carries its slots over. The dialogue is rules and forms only
  (bot/config.yml: RulePolicy), whose rules look back a turn or two; the booking form's actions
  look back to the start of the booking at most.

`retrieve_full_tracker` (Rasa's HTTP API: the whole history) still reads everything. A
conversation stored the old way (one JSON string) is converted when first read.
This module runs inside Rasa's environment (.venv-rasa); it imports nothing of Indgang's.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.conversation import Dialogue
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    Event,
    SessionStarted,
    SlotSet,
    deserialise_events,
)
from rasa.shared.core.trackers import DialogueStateTracker, get_trackers_for_conversation_sessions

log = logging.getLogger(__name__)

# Turns a retrieved tracker holds at least. The rules look back one or two turns; the booking
# form's actions look back to the start of the booking (about six turns, with a re-ask or two).
KEEP_TURNS = 12
LOADED = "_indgang_loaded"  # attribute: the number of events the tracker had when handed out


class BoundedRedisTrackerStore(RedisTrackerStore):
    def _key(self, sender_id: str) -> str:
        return self.key_prefix + sender_id

    def _header(self, key: str) -> dict[str, Any] | None:
        """The stored conversation's header (None: no conversation); converts the old form."""
        try:
            header = self.red.lindex(key, 0)
        except redis.ResponseError:  # WRONGTYPE: one JSON string, as Rasa's own store keeps it
            self._convert(key)
            header = self.red.lindex(key, 0)
        return json.loads(header) if header is not None else None

    def _convert(self, key: str) -> None:
        stored = self.red.get(key)
        if stored is None:
            return
        doc = json.loads(stored)
        ttl = self.red.ttl(key)
        pipe = self.red.pipeline()
        pipe.delete(key)
        pipe.rpush(key, json.dumps({"turns": []}), *(json.dumps(e) for e in doc.get("events") or ()))
        if ttl > 0:
            pipe.expire(key, ttl)
        pipe.execute()

    def _tracker(self, sender_id: str, events: list[Event]) -> DialogueStateTracker:
        tracker = self.init_tracker(sender_id)
        tracker.recreate_from_dialogue(Dialogue(sender_id, events))
        setattr(tracker, LOADED, len(tracker.events))
        return tracker

    def _events(self, key: str, start: int) -> list[Event]:
        """The stored events from the `start`-th on (item 0 is the header)."""
        return deserialise_events([json.loads(item) for item in self.red.lrange(key, start + 1, -1)])

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        key = self._key(sender_id)
        header = self._header(key)
        if header is None:
            return None
        turns = header["turns"]
        if len(turns) < KEEP_TURNS:
            # Rasa's own store hands out the latest session only
            whole = self._tracker(sender_id, self._events(key, 0))
            sessions = get_trackers_for_conversation_sessions(whole)
            if len(sessions) <= 1:
                return whole
            setattr(sessions[-1], LOADED, len(sessions[-1].events))
            return sessions[-1]
        turn = turns[0]
        at = float(turn["timestamp"])
        head: list[Event] = [
            ActionExecuted("action_session_start", timestamp=at),
            SessionStarted(timestamp=at),
            *(SlotSet(name, value, timestamp=at) for name, value in turn["slots"].items()),
            *([ActiveLoop(turn["loop"], timestamp=at)] if turn.get("loop") else []),
            ActionExecuted("action_listen", timestamp=at),
        ]
        return self._tracker(sender_id, [*head, *self._events(key, turn["at"])])

    async def retrieve_full_tracker(self, sender_id: str) -> DialogueStateTracker | None:
        key = self._key(sender_id)
        if self._header(key) is None:
            return None
        return self._tracker(sender_id, self._events(key, 0))

    async def save(self, tracker: DialogueStateTracker, timeout: float | None = None) -> None:
        await self.stream_events(tracker)
        key = self._key(tracker.sender_id)
        events = list(tracker.events)
        loaded = getattr(tracker, LOADED, None)
        header = self._header(key) if loaded is not None else None
        pipe = self.red.pipeline()
        if header is None:
            # A tracker this store did not hand out (a new conversation): stored whole.
            header, new = {"turns": []}, events
            pipe.delete(key)
            pipe.rpush(key, json.dumps(header))
        elif len(events) < loaded:
            log.error("tracker shorter than when it was read: not saved", extra={"sender": tracker.sender_id})
            return
        else:
            new = events[loaded:]
        if new:
            pipe.rpush(key, *(json.dumps(event.as_dict()) for event in new))
        pipe.llen(key)
        stored = pipe.execute()[-1] - 1
        pipe = self.red.pipeline()
        if self._note_turn(header, tracker, stored):
            pipe.lset(key, 0, json.dumps(header))
        ttl = timeout or self.record_exp
        if ttl:
            pipe.expire(key, int(float(ttl)))
        pipe.execute()
        setattr(tracker, LOADED, len(events))

    @staticmethod
    def _note_turn(header: dict[str, Any], tracker: DialogueStateTracker, stored: int) -> bool:
        """At the end of a turn (the bot listens), the state the next turn starts from, and where
        its events will start (`stored`: the events stored so far)."""
        last = tracker.events[-1] if tracker.events else None
        turns = header["turns"]
        if not isinstance(last, ActionExecuted) or last.action_name != "action_listen":
            return False
        if turns and turns[-1]["at"] == stored:
            return False
        slots = {name: value for name, value in tracker.current_slot_values().items() if value is not None}
        loop = tracker.active_loop_name
        turns.append({"at": stored, "timestamp": last.timestamp, "slots": slots, "loop": loop})
        del turns[:-KEEP_TURNS]
        return True
