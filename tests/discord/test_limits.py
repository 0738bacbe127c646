"""Abuse limits: blocked people and ignored channels get no answer, one person
cannot flood a channel, a channel's queue is bounded, and commands that change a
channel for everyone need Manage Channels in a server."""

from __future__ import annotations

import asyncio

from personae.adapters.discord.limits import BUSY_NOTICE, TOO_FAST_NOTICE, TurnLimits, Verdict
from personae.adapters.discord.settings import DiscordSettings
from personae.testing.fake_discord import BASIC_PERMISSIONS, MODERATOR
from tests.discord.conftest import StartBot, World, chat_reply, eventually, final_contents
from tests.discord.test_commands import answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_second_message_inside_the_cooldown_is_refused_once_then_ignored() -> None:
    clock = Clock()
    limits = TurnLimits(DiscordSettings(user_cooldown_seconds=2), clock)
    assert limits.admit(1, 10) is Verdict.ANSWER
    clock.now += 0.5
    assert limits.admit(1, 10) is Verdict.TOO_FAST
    clock.now += 0.5
    assert limits.admit(1, 10) is Verdict.IGNORE  # the notice is said once
    assert limits.admit(2, 10) is Verdict.ANSWER  # others are not slowed
    clock.now += 2.0
    assert limits.admit(1, 10) is Verdict.ANSWER


def test_a_full_channel_queue_refuses_new_turns() -> None:
    limits = TurnLimits(DiscordSettings(user_cooldown_seconds=0, max_queued_per_channel=2))
    limits.waiting[10] = 2
    assert limits.admit(1, 10) is Verdict.BUSY
    assert limits.admit(1, 11) is Verdict.ANSWER


async def test_blocked_users_and_ignored_channels_get_no_answer(
    world: World, start_bot: StartBot
) -> None:
    harness = await start_bot(
        blocked_user_ids=[int(world.bob["id"])],
        ignored_channel_ids=[int(world.channel["id"])],
    )
    other = harness.fake.add_channel(world.guild, "other")
    harness.ollama.reply_with(chat_reply("Hello."))
    await harness.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
    await harness.fake.send_message(other, world.bob, "hi", mention_bot=True)
    await harness.fake.send_message(other, world.alice, "hi", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 1)
    await asyncio.sleep(0.2)
    assert harness.bot.turns_answered == 1
    assert final_contents(harness.fake, world.channel) == []
    [answered] = final_contents(harness.fake, other)
    assert answered.endswith("Hello.")


async def test_a_flood_from_one_person_gets_one_notice_and_one_answer(
    world: World, start_bot: StartBot
) -> None:
    harness = await start_bot(user_cooldown_seconds=30)
    harness.ollama.reply_with(chat_reply("One at a time."))
    for n in range(5):
        await harness.fake.send_message(world.channel, world.alice, f"spam {n}", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 1)
    await eventually(lambda: TOO_FAST_NOTICE in final_contents(harness.fake, world.channel))
    await asyncio.sleep(0.2)
    contents = final_contents(harness.fake, world.channel)
    assert contents.count(TOO_FAST_NOTICE) == 1
    assert contents.count("One at a time.") == 1
    assert harness.ollama.requests_to("/api/chat")  # the first was answered


async def test_a_long_queue_in_one_channel_is_cut_with_a_busy_notice(
    world: World, start_bot: StartBot
) -> None:
    harness = await start_bot(max_queued_per_channel=1)
    release = asyncio.Event()

    async def slow(request):  # type: ignore[no-untyped-def]
        if request.format:
            return '{"items": []}'
        await release.wait()
        return "Done."

    harness.ollama.reply_with(slow)
    await harness.fake.send_message(world.channel, world.alice, "first", mention_bot=True)
    await eventually(lambda: harness.bot.limits.waiting.get(int(world.channel["id"])) == 1)
    await harness.fake.send_message(world.channel, world.bob, "second", mention_bot=True)
    await eventually(lambda: BUSY_NOTICE in final_contents(harness.fake, world.channel))
    release.set()
    await eventually(lambda: harness.bot.turns_answered == 1)


async def test_persona_use_needs_manage_channels_in_a_server(
    world: World, start_bot: StartBot
) -> None:
    harness = await start_bot()
    fake = harness.fake
    refused = await answer(
        fake,
        await fake.run_command(
            world.channel, world.bob, "persona", {"persona": "pip"}, sub="use",
            permissions=BASIC_PERMISSIONS,
        ),
    )  # fmt: skip
    assert "Manage Channels" in refused
    assert await harness.bot.active_persona(harness.bot.get_channel(int(world.channel["id"])))
    allowed = await answer(
        fake,
        await fake.run_command(
            world.channel, world.bob, "persona", {"persona": "pip"}, sub="use",
            permissions=MODERATOR,
        ),
    )  # fmt: skip
    assert "now answers" in allowed
    listing = await answer(
        fake,
        await fake.run_command(
            world.channel, world.bob, "persona", sub="list", permissions=BASIC_PERMISSIONS
        ),
    )
    assert "pip" in listing.lower()
