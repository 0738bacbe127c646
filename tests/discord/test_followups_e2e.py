"""Curiosity follow-ups reaching a Discord user, end to end: a conversation on
the fake Discord with a curious persona, the user goes quiet (a ManualClock
moves), the curiosity plugin's tick runs, and the persona asks its question in
the channel, mentioning the user (a webhook message created on the fake)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.adapters.discord.bot import DiscordService
from personae.core.clock import ManualClock
from personae.core.runtime import Runtime
from personae.core.types import Scope
from personae.plugins import curiosity
from personae.testing.fake_discord import FakeDiscord
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama
from tests.conftest import make_settings
from tests.discord.conftest import Harness, World, discord_settings, eventually

QUESTION = "How did the chess tournament go in the end?"


def respond(request: FakeChatRequest) -> str:
    if isinstance(request.format, dict):
        if request.format.get("title") == "personae_curiosity_question":
            return json.dumps({"ask": True, "topic": "the chess tournament", "question": QUESTION})
        return json.dumps({"items": []})
    return "Good luck on Sunday!"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def curious_bot(
    tmp_path: Path,
    fake_ollama: FakeOllama,
    fake_discord: FakeDiscord,
    world: World,
    sqlite_url: str,
    clock: ManualClock,
) -> AsyncIterator[Harness]:
    """The bot with pip (curiosity "high") answering in every channel, on a
    runtime whose clock the test moves."""
    settings = make_settings(
        tmp_path,
        fake_ollama,
        sqlite_url,
        discord=discord_settings(fake_discord, default_persona="pip"),
        plugin_settings={"curiosity": {"tick_seconds": 0, "min_exchanges": 1, "idle_seconds": 600}},
    )
    runtime = Runtime(settings, load_entry_points=False, clock=clock)
    await runtime.start()
    service = DiscordService(runtime, settings)
    try:
        await service.start()
        await service.wait_until_ready()
        yield Harness(fake_discord, fake_ollama, runtime, service, settings)
    finally:
        await service.stop()
        await runtime.stop()


async def test_a_curious_persona_asks_in_the_channel_after_the_user_went_quiet(
    curious_bot: Harness, world: World, clock: ManualClock
) -> None:
    harness, fake = curious_bot, curious_bot.fake
    harness.ollama.reply_with(respond)
    await fake.send_message(
        world.channel, world.alice, "I have a chess tournament on Sunday", mention_bot=True
    )
    await eventually(lambda: harness.bot.turns_answered == 1)
    await harness.runtime.background.drain()
    user_id = await harness.runtime.users.resolve("discord", world.alice["id"])
    replies = len(fake.created_messages(world.channel))

    early = await curiosity.tick(harness.runtime)
    clock.advance(seconds=600)
    delivered = await curiosity.tick(harness.runtime)

    assert early == 0 and delivered == 1
    await eventually(lambda: len(fake.created_messages(world.channel)) == replies + 1)
    asked = fake.created_messages(world.channel)[-1]
    assert asked["content"] == f"<@{world.alice['id']}> {QUESTION}"
    assert asked["author"]["username"] == "Pip"  # the persona, through the channel webhook
    sent = fake.find("POST", r"/webhooks/\d+/\w+")[-1]
    assert sent.json["allowed_mentions"]["users"] == [int(world.alice["id"])]
    [follow_up] = await harness.runtime.followups.list(Scope("pip", user_id), status="sent")
    assert follow_up.sent_at == clock.now()
    assert await curiosity.tick(harness.runtime) == 0  # asked once


async def test_a_user_who_speaks_again_first_is_not_asked(
    curious_bot: Harness, world: World, clock: ManualClock
) -> None:
    harness, fake = curious_bot, curious_bot.fake
    harness.ollama.reply_with(respond)
    await fake.send_message(
        world.channel, world.alice, "I have a chess tournament on Sunday", mention_bot=True
    )
    await eventually(lambda: harness.bot.turns_answered == 1)
    await harness.runtime.background.drain()
    clock.advance(seconds=300)
    await fake.send_message(world.channel, world.alice, "Wish me luck", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 2)
    await harness.runtime.background.drain()
    before = len(fake.created_messages(world.channel))

    clock.advance(seconds=300)
    early = await curiosity.tick(harness.runtime)

    assert early == 0  # the new exchange pushed the question back
    assert len(fake.created_messages(world.channel)) == before
