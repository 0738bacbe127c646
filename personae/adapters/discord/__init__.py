"""The Discord frontend: personas answer in servers and DMs, with their own names
and avatars, streaming replies, and every plugin command as a slash command.

Run it with ``personae discord``, or next to the HTTP service with
``personae serve --discord``; in your own program::

    from personae.adapters.discord import discord_bot

    async with Runtime(settings) as runtime, discord_bot(runtime, settings) as service:
        await service.wait_closed()

See docs/discord.md for setting up the bot application, intents and sharding.

Modules: :mod:`.bot` (client and service), :mod:`.events` (messages to turns),
:mod:`.streaming` (throttled edits), :mod:`.splitting`, :mod:`.identity` (webhooks),
:mod:`.commands` (slash commands), :mod:`.voice` (voice channels), :mod:`.linking`
(link codes), :mod:`.state`, :mod:`.settings`, :mod:`.cli`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from personae.adapters.discord.settings import DiscordSettings

if TYPE_CHECKING:
    from personae.adapters.discord.bot import (
        DiscordService,
        PersonaeBot,
        discord_bot,
        run_discord,
    )
    from personae.adapters.discord.linking import LinkCodeError, LinkCodes, LinkResult

__all__ = [
    "DiscordService",
    "DiscordSettings",
    "LinkCodeError",
    "LinkCodes",
    "LinkResult",
    "PersonaeBot",
    "discord_bot",
    "run_discord",
]

_LAZY = {
    "DiscordService": "bot",
    "PersonaeBot": "bot",
    "discord_bot": "bot",
    "run_discord": "bot",
    "LinkCodeError": "linking",
    "LinkCodes": "linking",
    "LinkResult": "linking",
}


def __getattr__(name: str) -> Any:
    # Imported lazily: personae.core.settings imports DiscordSettings from this
    # package, and the bot imports the runtime, which imports the settings.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f"personae.adapters.discord.{module}"), name)
