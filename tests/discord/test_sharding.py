"""Sharding: one process runs every shard Discord recommends, or several processes
split them with shard_count and shard_ids while sharing one database."""

from __future__ import annotations

import asyncio
from typing import Any

from personae.adapters.discord.bot import DiscordService
from personae.adapters.discord.settings import DiscordSettings
from personae.testing.fake_discord import FakeDiscord
from tests.discord.conftest import StartBot, eventually, final_contents


def guild_on_shard(fake: FakeDiscord, shard: int) -> dict[str, Any]:
    """A server whose events go to ``shard`` of 2 ((id >> 22) % shard count)."""
    guild = fake.add_guild(f"shard {shard}", guild_id=((1000 + shard) << 22) | 7)
    assert fake.shard_of(guild["id"]) == shard
    return guild


async def test_one_process_runs_the_recommended_shards(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    fake_discord.shard_count = 2
    guilds = [guild_on_shard(fake_discord, n) for n in (0, 1)]
    channels = [fake_discord.add_channel(g, "general") for g in guilds]
    alice = fake_discord.add_user("alice")
    harness = await start_bot()
    assert sorted(tuple(i["shard"]) for i in fake_discord.identifies) == [(0, 2), (1, 2)]
    for channel in channels:
        await fake_discord.send_message(channel, alice, "hi", mention_bot=True)
    await eventually(lambda: harness.bot.turns_answered == 2)
    assert all(final_contents(fake_discord, c) == ["You said: hi"] for c in channels)


async def test_two_processes_split_the_shards(
    fake_discord: FakeDiscord, start_bot: StartBot
) -> None:
    fake_discord.shard_count = 2
    guilds = [guild_on_shard(fake_discord, n) for n in (0, 1)]
    channels = [fake_discord.add_channel(g, "general") for g in guilds]
    alice = fake_discord.add_user("alice")
    first = await start_bot(shard_count=2, shard_ids=[0])
    discord = DiscordSettings.model_validate(
        {**first.settings.discord.model_dump(), "shard_ids": [1]}
    )
    second = DiscordService(first.runtime, first.settings.model_copy(update={"discord": discord}))
    await second.start()
    try:
        await asyncio.wait_for(second.wait_until_ready(), 10)
        assert sorted(tuple(i["shard"]) for i in fake_discord.identifies) == [(0, 2), (1, 2)]
        for channel in channels:
            await fake_discord.send_message(channel, alice, "hi", mention_bot=True)
        assert second.bot is not None
        await eventually(lambda: first.bot.turns_answered == 1)
        await eventually(lambda: second.bot is not None and second.bot.turns_answered == 1)
        # Only the process that runs shard 0 registers the slash commands.
        assert len(fake_discord.find("PUT", r"/applications/\d+/commands")) == 1
    finally:
        await second.stop()


def test_shard_ids_need_a_shard_count() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="shard_ids needs shard_count"):
        DiscordSettings(shard_ids=[0])
    with pytest.raises(ValidationError, match="shard_ids must be in"):
        DiscordSettings(shard_count=2, shard_ids=[2])
