"""Gateway failures that reconnecting cannot mend stop the bot with an error an
operator can act on; those it can mend are mended."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from personae.adapters.discord.bot import DiscordService
from personae.core.errors import ConfigError
from personae.core.runtime import Runtime
from personae.testing.fake_discord import FakeDiscord
from personae.testing.fake_ollama import FakeOllama
from tests.conftest import make_settings
from tests.discord.conftest import Harness, World, chat_reply, discord_settings, eventually


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (4004, "rejected the bot token"),
        (4013, "intents as invalid"),
        (4014, "Message Content intent"),
        (4011, "requires sharding"),
    ],
)
async def test_a_fatal_close_code_stops_the_bot_with_what_to_do(
    tmp_path: Path,
    fake_ollama: FakeOllama,
    fake_discord: FakeDiscord,
    sqlite_url: str,
    code: int,
    says: str,
) -> None:
    fake_discord.close_on_identify = code
    settings = make_settings(
        tmp_path, fake_ollama, sqlite_url, discord=discord_settings(fake_discord)
    )
    async with Runtime(settings, load_entry_points=False) as runtime:
        service = DiscordService(runtime, settings)
        await service.start()
        try:
            with pytest.raises(ConfigError, match=says):
                await asyncio.wait_for(service.wait_closed(), 20)
        finally:
            await service.stop()
    assert fake_discord.identifies  # it did try


async def test_an_invalidated_session_identifies_again_and_goes_on_answering(
    bot: Harness, world: World
) -> None:
    await bot.fake.invalidate_sessions(resumable=False)
    await eventually(lambda: len(bot.fake.identifies) == 2, timeout=20)
    await eventually(lambda: bot.fake.connected_shards() == {0}, timeout=20)
    bot.ollama.reply_with(chat_reply("Back again."))
    await bot.fake.send_message(world.channel, world.alice, "hi", mention_bot=True)
    await eventually(lambda: bot.bot.turns_answered == 1, timeout=20)
