"""A broken connection to Discord costs at most one message, never the channel,
and what Discord refuses in a body is handled as Discord refuses it."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from personae.adapters.discord.delivery import webhook_username
from personae.core.cards import PersonaCard, parse_card_json
from personae.core.types import Scope
from personae.testing.fake_discord import RESET, STALL
from tests.discord.conftest import Harness, StartBot, World, chat_reply, eventually, final_contents

WEBHOOK_EXECUTE = r"/webhooks/\d+/\w+"
WEBHOOK_EDIT = r"/webhooks/\d+/\w+/messages/\d+"


async def _stored(bot: Harness, world: World) -> list[str]:
    user_id = await bot.runtime.users.resolve("discord", world.alice["id"])
    messages = await bot.runtime.history.recent(
        Scope("sage", user_id), f"discord:{world.channel['id']}", 20
    )
    return [m.content for m in messages]


async def test_a_reset_while_a_reply_streams_does_not_wedge_the_channel(
    bot: Harness, world: World
) -> None:
    # The first edit of the streaming reply meets a connection reset.
    bot.fake.fail_next("PATCH", WEBHOOK_EDIT, RESET)
    bot.ollama.reply_with(chat_reply(["One ", "two ", "three."]))
    await bot.fake.send_message(world.channel, world.alice, "count", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    assert final_contents(bot.fake, world.channel) == ["One two three."]

    # The channel answers the next message, for anyone.
    bot.ollama.reply_with(chat_reply("Still here."))
    await bot.fake.send_message(world.channel, world.bob, "hello?", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 2)
    assert final_contents(bot.fake, world.channel)[-1] == "Still here."


async def test_a_failed_edit_continues_in_a_new_message_and_removes_the_stale_one(
    bot: Harness, world: World
) -> None:
    bot.fake.fail_next("PATCH", WEBHOOK_EDIT, 500)
    bot.ollama.reply_with(chat_reply(["Half ", "and the rest."]))
    await bot.fake.send_message(world.channel, world.alice, "go", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    assert final_contents(bot.fake, world.channel) == ["Half and the rest."]
    assert bot.bot.turns_undelivered == 0
    assert await _stored(bot, world) == ["go", "Half and the rest."]


async def test_a_reset_on_the_first_message_is_tried_once_more(bot: Harness, world: World) -> None:
    bot.fake.fail_next("POST", WEBHOOK_EXECUTE, RESET)
    bot.ollama.reply_with(chat_reply("Made it."))
    await bot.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    assert final_contents(bot.fake, world.channel) == ["Made it."]
    assert bot.bot.turns_undelivered == 0


async def test_two_resets_lose_the_message_but_store_the_reply_and_free_the_channel(
    bot: Harness, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    bot.fake.fail_next("POST", WEBHOOK_EXECUTE, RESET)
    bot.fake.fail_next("POST", WEBHOOK_EXECUTE, RESET)
    bot.ollama.reply_with(chat_reply("Lost in transit."))
    with caplog.at_level(logging.ERROR, logger="personae.discord.streaming"):
        await bot.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
        await eventually(lambda: bot.bot.turns_answered == 1)
    assert bot.bot.turns_undelivered == 1
    assert await _stored(bot, world) == ["hi", "Lost in transit."]
    assert "could not deliver" in caplog.text

    bot.ollama.reply_with(chat_reply("Next one arrives."))
    await bot.fake.send_message(world.channel, world.alice, "again", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 2)
    assert final_contents(bot.fake, world.channel) == ["Next one arrives."]


@pytest.mark.parametrize("name", ["Discord Helper", "CLYDE", "my dIsCoRd pal", "Clyde"])
async def test_a_persona_named_like_discord_still_speaks_through_the_webhook(
    world: World, start_bot: StartBot, name: str
) -> None:
    harness = await start_bot()
    await harness.runtime.personas.save(_card(name), owner_id=None)
    await harness.bot.state.set_active_persona(
        int(world.guild["id"]), int(world.channel["id"]), "helper"
    )
    harness.ollama.reply_with(chat_reply("At your service."))
    await harness.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 1)
    assert final_contents(harness.fake, world.channel) == ["At your service."]
    [execute] = harness.fake.find("POST", WEBHOOK_EXECUTE)
    assert execute.json["username"] == webhook_username(name)


def _card(name: str) -> PersonaCard:
    return parse_card_json(
        {
            "spec": "chara_card_v2",
            "data": {
                "name": name,
                "description": "Helps.",
                "extensions": {"personae": {"id": "helper"}},
            },
        }
    )


async def test_the_fake_refuses_an_over_long_message_as_discord_does(
    bot: Harness, world: World
) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{bot.fake.api_base}/channels/{world.channel['id']}/messages"
        async with session.post(url, json={"content": "x" * 2001}) as response:
            assert response.status == 400
            body = await response.json()
    assert body["code"] == 50035
    assert "content" in body["errors"]


def test_webhook_usernames_never_contain_the_forbidden_words() -> None:
    for name in ["Discord", "clyde", "CLYDE the discordian", "x" * 200]:
        cleaned = webhook_username(name)
        assert "discord" not in cleaned.lower() and "clyde" not in cleaned.lower()
        assert 1 <= len(cleaned) <= 80


async def test_a_burst_of_replies_waits_out_the_rate_limit_and_delivers_each(
    world: World, start_bot: StartBot
) -> None:
    bot = await start_bot(max_queued_per_channel=10)
    bot.ollama.reply_with(chat_reply("Noted."))
    for n in range(7):  # more than the 5 messages per 5 s Discord allows a channel
        await bot.fake.send_message(world.channel, world.alice, f"note {n}", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 7, timeout=30)
    assert final_contents(bot.fake, world.channel) == ["Noted."] * 7
    assert bot.bot.turns_undelivered == 0
    # The client read the buckets' headers and waited instead of being refused.
    assert bot.fake.rate_limits.refused == 0


async def test_the_fake_refuses_a_sixth_message_in_five_seconds_with_a_429(
    bot: Harness, world: World
) -> None:
    url = f"{bot.fake.api_base}/channels/{world.channel['id']}/messages"
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(6):
            async with session.post(url, json={"content": "hi"}) as response:
                statuses.append(response.status)
                remaining = response.headers.get("X-RateLimit-Remaining")
    assert statuses == [200] * 5 + [429]
    assert remaining == "0"


async def test_a_stalled_edit_times_out_and_the_reply_continues_in_a_new_message(
    world: World, start_bot: StartBot
) -> None:
    bot = await start_bot(delivery_timeout_seconds=0.5)
    bot.fake.fail_next("PATCH", WEBHOOK_EDIT, STALL, retry_after=5.0)
    bot.ollama.reply_with(chat_reply(["Slowly ", "but surely."]))
    await bot.fake.send_message(world.channel, world.alice, "go", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    # The stalled edit was given up after 0.5 s; the text went out anew.
    assert final_contents(bot.fake, world.channel)[-1] == "Slowly but surely."
    assert bot.bot.turns_undelivered == 0
    bot.ollama.reply_with(chat_reply("And the channel is free."))
    await bot.fake.send_message(world.channel, world.bob, "next", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 2)


async def test_the_fake_forgets_an_interaction_not_answered_within_three_seconds(
    bot: Harness, world: World
) -> None:
    interaction = await bot.fake.run_command(world.channel, world.alice, "help")
    await bot.fake.wait_for_request(
        "POST", rf"/interactions/{interaction['id']}/{interaction['token']}/callback"
    )  # the bot answered in time
    late = bot.fake.interactions[int(interaction["id"])]
    late_id = str(late["id"])
    bot.fake._interaction_created[int(late_id)] -= 10  # as if it had come 10 s ago
    url = f"{bot.fake.api_base}/interactions/{late_id}/{late['token']}/callback"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"type": 4, "data": {"content": "late"}}) as answer:
            assert answer.status == 404
            assert (await answer.json())["code"] == 10062
