"""Gateway close codes that end the bot for good, as errors an operator can act on.

Discord closes the gateway with these codes when reconnecting cannot help
(discord.py raises :class:`discord.ConnectionClosed` for them, or
:class:`discord.PrivilegedIntentsRequired` for 4014, and stops)."""

from __future__ import annotations

import discord

from personae.core.errors import ConfigError

PORTAL = "the Discord Developer Portal (https://discord.com/developers/applications)"

_FATAL = {
    4004: (
        "Discord rejected the bot token (gateway close code 4004): copy it again from "
        f"{PORTAL}, Bot -> Reset Token, into PERSONAE_DISCORD__TOKEN."
    ),
    4010: (
        "Discord refused the shard id (gateway close code 4010): every process needs the "
        "same --shard-count and its own --shard-ids below it."
    ),
    4011: (
        "Discord requires sharding for this bot (gateway close code 4011): leave "
        "shard_count unset so Discord chooses, or raise it."
    ),
    4012: "Discord refused the gateway API version (close code 4012): upgrade discord.py.",
    4013: (
        "Discord refused the bot's intents as invalid (gateway close code 4013); this is a "
        "bug in personae, please report it."
    ),
    4014: (
        "Discord refused the Message Content intent (gateway close code 4014): turn it on "
        f"in {PORTAL}, Bot -> Privileged Gateway Intents. See docs/discord.md."
    ),
}


def fatal_gateway_error(error: BaseException) -> ConfigError | None:
    """The operator's error for a gateway failure that ends the bot, else None."""
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return ConfigError(_FATAL[4014])
    if isinstance(error, discord.ConnectionClosed) and error.code in _FATAL:
        return ConfigError(_FATAL[error.code])
    return None
