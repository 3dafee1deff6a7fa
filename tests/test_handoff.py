from __future__ import annotations

import asyncio
import json

import pytest

from indgang import handoff, keys
from indgang.handoff import HandoffError, HandoffState, Priority

pytestmark = pytest.mark.anyio


async def test_the_state_machine_walks_its_legal_path(redis) -> None:
    assert (await handoff.get(redis, "c")).state == HandoffState.NONE
    assert await handoff.request(redis, "c", 60, reason="request_human") is True
    assert await handoff.request(redis, "c", 60, reason="again") is False  # already waiting
    await handoff.take(redis, "c", "anna", 60)
    state = await handoff.get(redis, "c")
    assert (state.state, state.staff, state.api_state) == (HandoffState.ACTIVE, "anna", "active")
    with pytest.raises(HandoffError, match="another staff member"):
        await handoff.release(redis, "c", "bo", 60)
    await handoff.release(redis, "c", "anna", 60)
    released = await handoff.get(redis, "c")
    assert released.state == HandoffState.RELEASED and released.api_state == "none"
    with pytest.raises(HandoffError, match="cannot release"):
        await handoff.release(redis, "c", "anna", 60)
    assert await redis.zscore(keys.handoff_queue(), "c") is None


async def test_urgent_requests_go_first_in_the_queue(redis) -> None:
    await handoff.request(redis, "old", 60, reason="request_human")
    await handoff.request(redis, "new-urgent", 60, reason="crisis", priority=Priority.URGENT)
    assert await handoff.queue_position(redis, "new-urgent") == 1
    assert await handoff.queue_position(redis, "old") == 2
    # a repeated request may raise the priority, never lower it
    await handoff.request(redis, "old", 60, reason="crisis", priority=Priority.URGENT)
    assert (await handoff.get(redis, "old")).priority == Priority.URGENT


async def test_a_request_does_not_take_a_conversation_from_staff(redis) -> None:
    await handoff.take(redis, "c", "anna", 60)
    assert await handoff.request(redis, "c", 60, reason="crisis") is False
    assert (await handoff.get(redis, "c")).staff == "anna"


async def test_exactly_one_of_many_racing_staff_wins(redis) -> None:
    for round_ in range(25):
        conversation_id = f"race-{round_}"
        await handoff.request(redis, conversation_id, 60, reason="request_human")

        async def claim(staff: str, conversation_id: str = conversation_id) -> str | None:
            try:
                await handoff.take(redis, conversation_id, staff, 60)
                return staff
            except HandoffError:
                return None

        results = await asyncio.gather(*(claim(f"staff-{i}") for i in range(8)))
        winners = [r for r in results if r]
        assert len(winners) == 1
        assert (await handoff.get(redis, conversation_id)).staff == winners[0]


async def test_request_person_emits_one_event_per_request(redis) -> None:
    await handoff.request_person(redis, "c", "web", 60, reason="request_human")
    await handoff.request_person(redis, "c", "web", 60, reason="request_human")
    entries = await redis.xrange(keys.events_stream())
    events = [json.loads(fields["event"]) for _, fields in entries]
    assert [e["type"] for e in events] == ["handoff.requested"]
    assert events[0]["data"]["conversation_id"] == "c"
