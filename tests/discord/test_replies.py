"""A persona answers on Discord: when, as whom, and how the reply streams."""

from __future__ import annotations

import itertools

from personae.core.types import Scope
from personae.testing.fake_discord import BASIC_PERMISSIONS
from tests.discord.conftest import Harness, StartBot, World, chat_reply, eventually, final_contents

WEBHOOK_EXECUTE = r"/webhooks/\d+/\w+"
WEBHOOK_EDIT = r"/webhooks/\d+/\w+/messages/\d+"


async def discord_user_id(harness: Harness, user: dict) -> int:
    return await harness.runtime.users.resolve("discord", user["id"])


async def test_mention_gets_a_streamed_reply_stored_under_the_speaker(
    world: World, start_bot: StartBot, db_url: str
) -> None:
    harness = await start_bot(db_url)
    fake = harness.fake
    harness.ollama.reply_with(chat_reply("Greetings, traveller. The stars are bright tonight."))

    await fake.send_message(world.channel, world.alice, "hello!", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 1)

    first = fake.find("POST", WEBHOOK_EXECUTE)
    assert len(first) == 1
    assert first[0].json["username"] == "Sage"
    assert final_contents(fake, world.channel) == [
        "Greetings, traveller. The stars are bright tonight."
    ]
    scope = Scope("sage", await discord_user_id(harness, world.alice))
    stored = await harness.runtime.history.recent(scope, f"discord:{world.channel['id']}", 10)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "hello!"),
        ("assistant", "Greetings, traveller. The stars are bright tonight."),
    ]


async def test_the_active_persona_answers_when_named(bot: Harness, world: World) -> None:
    bot.ollama.reply_with(chat_reply("Yes?"))
    await bot.fake.send_message(world.channel, world.alice, "sage, are you there?")
    await eventually(lambda: bot.bot.turns_answered == 1)
    assert final_contents(bot.fake, world.channel) == ["Yes?"]


async def test_a_message_addressed_to_nobody_is_not_answered(bot: Harness, world: World) -> None:
    await bot.fake.send_message(world.channel, world.alice, "anyone seen my keys?")
    await bot.fake.send_message(world.channel, world.alice, "sage, did you?")
    await eventually(lambda: bot.bot.turns_answered == 1)
    chats = [r for r in bot.ollama.requests if r.path == "/api/chat" and not r.json.get("format")]
    assert len(chats) == 1
    assert "keys" not in str(chats[0].json["messages"])


async def test_direct_messages_are_answered_with_a_named_plain_message(
    bot: Harness, world: World
) -> None:
    bot.ollama.reply_with(chat_reply("Hello in private."))
    dm = bot.fake.dm_channel(world.alice)
    await bot.fake.send_message(dm, world.alice, "hi")
    await eventually(lambda: bot.bot.turns_answered == 1)
    assert final_contents(bot.fake, dm) == ["**Sage**\nHello in private."]
    assert not bot.fake.find("POST", r"/channels/\d+/webhooks")


async def test_without_manage_webhooks_the_reply_is_headed_with_the_name(
    fake_discord, start_bot: StartBot
) -> None:
    guild = fake_discord.add_guild("Strict", bot_permissions=BASIC_PERMISSIONS)
    channel = fake_discord.add_channel(guild, "general")
    alice = fake_discord.add_user("alice")
    harness = await start_bot()
    harness.ollama.reply_with(chat_reply("Plainly said."))
    await fake_discord.send_message(channel, alice, "hi", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 1)
    assert final_contents(fake_discord, channel) == ["**Sage**\nPlainly said."]
    assert not fake_discord.find("GET", r"/channels/\d+/webhooks")


async def test_bot_messages_and_the_personas_own_are_never_answered(
    bot: Harness, world: World
) -> None:
    """The fake echoes every message the bot sends back as MESSAGE_CREATE, as
    Discord does; the reply names the persona, yet nothing answers it."""
    bot.ollama.reply_with(chat_reply("I am Sage, and Sage I remain."))
    other_bot = {**world.bob, "bot": True}
    await bot.fake.send_message(world.channel, other_bot, "sage, answer me", mention_bot=True)
    await bot.fake.send_message(world.channel, world.alice, "sage?")
    await eventually(lambda: bot.bot.turns_answered == 1)
    await bot.fake.send_message(world.channel, world.alice, "sage, once more")
    await eventually(lambda: bot.bot.turns_answered == 2)
    assert len(bot.fake.created_messages(world.channel)) == 2


async def test_edits_are_throttled_per_channel(world: World, start_bot: StartBot) -> None:
    harness = await start_bot(edit_interval_seconds=3600)
    words = [f"word{i} " for i in range(40)]
    harness.ollama.reply_with(chat_reply(words))
    await harness.fake.send_message(world.channel, world.alice, "talk", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 1)
    # The first words appear at once; then only the final text, however many chunks.
    assert len(harness.fake.find("POST", WEBHOOK_EXECUTE)) == 1
    assert len(harness.fake.find("PATCH", WEBHOOK_EDIT)) == 1
    assert final_contents(harness.fake, world.channel) == ["".join(words).strip()]


async def test_without_throttling_the_message_grows_as_tokens_arrive(
    bot: Harness, world: World
) -> None:
    words = [f"word{i} " for i in range(10)]
    bot.ollama.reply_with(chat_reply(words))
    await bot.fake.send_message(world.channel, world.alice, "talk", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    edits = [r.json["content"] for r in bot.fake.find("PATCH", WEBHOOK_EDIT)]
    assert len(edits) >= 5
    assert all(len(a) < len(b) for a, b in itertools.pairwise(edits))


async def test_long_replies_are_split_at_sentence_boundaries(
    world: World, start_bot: StartBot
) -> None:
    # Discord allows about one edit a second in a channel (the fake enforces its
    # rate limits): at the default interval, 900 streamed words are a few edits.
    bot = await start_bot(edit_interval_seconds=1.0)
    bot.settings.ollama.num_predict = 2048  # room for a 4,500-character reply
    sentence = "This sentence is part of a very long answer. "
    reply = sentence * 100  # 4500 characters
    bot.ollama.reply_with(chat_reply(reply))
    await bot.fake.send_message(world.channel, world.alice, "tell me all", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    parts = final_contents(bot.fake, world.channel)
    assert len(parts) == 3
    assert all(len(part) <= 2000 and part.endswith("answer.") for part in parts)
    assert " ".join(parts) == reply.strip()


async def test_a_split_code_block_is_closed_and_reopened(world: World, start_bot: StartBot) -> None:
    bot = await start_bot(edit_interval_seconds=1.0)
    bot.settings.ollama.num_predict = 2048  # room for 300 lines of code
    code = "\n".join(f"value_{i} = {i}" for i in range(300))
    bot.ollama.reply_with(chat_reply(f"Here:\n```python\n{code}\n```\nDone."))
    await bot.fake.send_message(world.channel, world.alice, "code please", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    parts = final_contents(bot.fake, world.channel)
    assert len(parts) >= 2
    assert all(len(part) <= 2000 and part.count("```") % 2 == 0 for part in parts)
    assert parts[1].startswith("```python\n")


async def test_a_typing_indicator_shows_while_waiting(bot: Harness, world: World) -> None:
    await bot.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    typing = bot.fake.find("POST", rf"/channels/{world.channel['id']}/typing")
    assert typing
    assert bot.fake.requests.index(typing[0]) < bot.fake.requests.index(
        bot.fake.find("POST", WEBHOOK_EXECUTE)[0]
    )


async def test_threads_the_bot_started_are_answered_without_mention(
    bot: Harness, world: World
) -> None:
    thread = bot.fake.add_thread(world.channel, "a chat", owner_id=bot.fake.bot_user["id"])
    await bot.fake.dispatch("THREAD_CREATE", thread, guild_id=world.guild["id"])
    bot.ollama.reply_with(chat_reply("In the thread."))
    await bot.fake.send_message(thread, world.alice, "no mention here")
    await eventually(lambda: bot.bot.turns_answered == 1)
    executed = bot.fake.find("POST", WEBHOOK_EXECUTE)
    assert executed[0].query["thread_id"] == thread["id"]
    assert final_contents(bot.fake, thread) == ["In the thread."]


async def test_replying_to_a_persona_message_reaches_that_persona(
    bot: Harness, world: World
) -> None:
    bot.ollama.reply_with(chat_reply("First."))
    await bot.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    said = bot.fake.created_messages(world.channel)[0]
    await bot.fake.send_message(world.channel, world.alice, "why?", reference=said["id"])
    await eventually(lambda: bot.bot.turns_answered == 2)


async def test_each_user_in_a_channel_has_their_own_history(bot: Harness, world: World) -> None:
    bot.ollama.reply_with(chat_reply("Noted."))
    await bot.fake.send_message(world.channel, world.bob, "my secret is 42", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1)
    await bot.fake.send_message(world.channel, world.alice, "what did bob say?", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 2)
    alice_chat = next(
        r
        for r in bot.ollama.requests
        if r.path == "/api/chat" and "what did bob say?" in str(r.json["messages"][-2:])
    )
    assert "my secret is 42" not in str(alice_chat.json["messages"])


async def test_turns_in_one_channel_are_answered_in_order(bot: Harness, world: World) -> None:
    bot.ollama.chunk_delay = 0.01
    for n in range(3):
        await bot.fake.send_message(world.channel, world.alice, f"question {n}", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 3)
    assert final_contents(bot.fake, world.channel) == [f"You said: question {n}" for n in range(3)]
