"""Discord's rate limits, refusals and dropped connections lose no turn."""

from __future__ import annotations

from personae.core.types import Scope
from personae.testing.fake_discord import BASIC_PERMISSIONS, FakeDiscord
from tests.discord.conftest import Harness, StartBot, World, chat_reply, eventually, final_contents

WEBHOOK_EXECUTE = r"/webhooks/\d+/\w+"


async def test_a_rate_limited_message_is_sent_after_retry_after(bot: Harness, world: World) -> None:
    bot.fake.fail_next("POST", WEBHOOK_EXECUTE, 429, retry_after=0.05)
    bot.ollama.reply_with(chat_reply("Patience."))
    await bot.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    assert len(bot.fake.find("POST", WEBHOOK_EXECUTE)) == 2  # refused, then accepted
    assert final_contents(bot.fake, world.channel) == ["Patience."]
    assert bot.bot.turns_undelivered == 0


async def test_a_refused_webhook_falls_back_to_a_plain_message(bot: Harness, world: World) -> None:
    bot.fake.fail_next("POST", WEBHOOK_EXECUTE, 403)
    bot.ollama.reply_with(chat_reply("Still here."))
    await bot.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    assert final_contents(bot.fake, world.channel) == ["**Sage**\nStill here."]


async def test_an_undeliverable_reply_is_logged_and_still_stored(
    fake_discord: FakeDiscord, start_bot: StartBot, db_url: str
) -> None:
    guild = fake_discord.add_guild("Strict", bot_permissions=BASIC_PERMISSIONS)
    channel = fake_discord.add_channel(guild, "general")
    alice = fake_discord.add_user("alice")
    harness = await start_bot(db_url)
    harness.ollama.reply_with(chat_reply("Nobody will see this."))
    fake_discord.fail_next("POST", rf"/channels/{channel['id']}/messages", 403)

    await fake_discord.send_message(channel, alice, "hi", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 1)

    assert harness.bot.turns_undelivered == 1
    assert final_contents(fake_discord, channel) == []
    user_id = await harness.runtime.users.resolve("discord", alice["id"])
    stored = await harness.runtime.history.recent(
        Scope("sage", user_id), f"discord:{channel['id']}", 10
    )
    assert [m.content for m in stored] == ["hi", "Nobody will see this."]


async def test_a_dropped_gateway_resumes_and_replays_the_missed_message(
    bot: Harness, world: World
) -> None:
    fake = bot.fake
    await fake.drop_connections()
    # Sent while the bot is disconnected: delivered when the session resumes.
    await fake.send_message(world.channel, world.alice, "are you back?", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    assert len(fake.identifies) == 1  # resumed, not re-identified
    assert len(fake.resumes) == 1
    assert final_contents(fake, world.channel) == ["You said: are you back?"]


async def test_a_reconnect_request_is_followed_and_messages_still_answered(
    bot: Harness, world: World
) -> None:
    await bot.fake.request_reconnect()
    await eventually(lambda: len(bot.fake.resumes) == 1 and bot.fake.connected_shards() == {0})
    await bot.fake.send_message(world.channel, world.alice, "still there?", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)


async def test_a_model_failure_is_shown_in_the_channel(bot: Harness, world: World) -> None:
    bot.ollama.fail_next(500, "model crashed", path="/api/chat")
    await bot.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
    await eventually(lambda: bot.runtime.turns_failed == 1)
    await eventually(lambda: final_contents(bot.fake, world.channel))
    assert final_contents(bot.fake, world.channel)[0].startswith("⚠️")
