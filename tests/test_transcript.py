from __future__ import annotations

import pytest

from indgang import conversation, keys, transcript

pytestmark = pytest.mark.anyio


async def test_messages_come_back_in_order_with_a_cursor(redis) -> None:
    first = await transcript.append(redis, "c1", "user", "hej", 60, channel="web")
    await transcript.append(
        redis, "c1", "bot", "Hej, jeg er ...", 60, offers=[{"id": "x", "type": "raadgivning"}]
    )
    messages, cursor = await transcript.read(redis, "c1")
    assert [m.sender for m in messages] == ["user", "bot"]
    assert messages[1].offers == [{"id": "x", "type": "raadgivning"}]
    assert cursor == messages[-1].id

    after_first, _ = await transcript.read(redis, "c1", after=first.id)
    assert [m.text for m in after_first] == ["Hej, jeg er ..."]
    nothing_new, same = await transcript.read(redis, "c1", after=cursor)
    assert nothing_new == [] and same == cursor


async def test_every_message_renews_the_retention_time(redis) -> None:
    await transcript.append(redis, "c2", "user", "hej", 120)
    ttl = await redis.ttl(keys.transcript("c2"))
    assert 0 < ttl <= 120


async def test_conversation_record_keeps_channel_language_and_offers(redis) -> None:
    await conversation.touch(redis, "c3", "sms", "en", 60)
    await conversation.record_offers(redis, "c3", [{"id": "a", "type": "vaerested"}], 60)
    record = await conversation.get(redis, "c3")
    assert record is not None
    assert (record.channel, record.language) == ("sms", "en")
    assert record.offers_shown == [{"id": "a", "type": "vaerested"}]
    assert await conversation.get(redis, "unknown") is None


def test_cursor_validation() -> None:
    assert transcript.is_valid_cursor("1700000000000-0")
    assert not transcript.is_valid_cursor("abc")
    assert not transcript.is_valid_cursor("1-x")
