"""From a Discord message to a :class:`~personae.core.types.Turn`: whether a
persona is addressed, which one, and the text it hears."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import discord

from personae.core.cards import PersonaCard
from personae.core.types import Turn

if TYPE_CHECKING:
    from personae.adapters.discord.bot import PersonaeBot

PLATFORM = "discord"
_ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)


def conversation_key(channel_id: int) -> str:
    """Each channel (DM, thread) is one conversation: ``discord:<channel id>``."""
    return f"{PLATFORM}:{channel_id}"


def channel_of(conversation: str) -> int | None:
    """The channel id of a ``discord:<id>`` conversation key, else None."""
    prefix, _, rest = conversation.partition(":")
    return int(rest) if prefix == PLATFORM and rest.isdigit() else None


def names_persona(text: str, card: PersonaCard) -> bool:
    """Whether ``text`` addresses the persona by name, nickname or id (whole words)."""
    names = {card.name, card.id, *([card.nickname] if card.nickname else [])}
    for name in names:
        if name and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE):
            return True
    return False


def clean_text(message: discord.Message, bot_id: int) -> str:
    """The message text with the bot's mention removed and other mentions shown
    as names, plus a note for each attachment."""
    text = re.sub(rf"<@!?{bot_id}>", "", message.content)
    for user in message.mentions:
        if user.id != bot_id:
            text = re.sub(rf"<@!?{user.id}>", f"@{user.display_name}", text)
    for attachment in message.attachments:
        text += f"\n[attachment: {attachment.filename}]"
    return text.strip()


async def addressed_persona(bot: PersonaeBot, message: discord.Message) -> str | None:
    """The id of the persona a message is for, or None when no persona should answer.

    A persona answers in DMs, when the bot is mentioned, when a message replies to
    something it said, in threads the bot started, and (``respond_to_names``) when
    the channel's active persona is named. Bots — the personae webhook and the bot
    itself included — are never answered."""
    me = bot.user
    if me is None or message.author.bot or message.webhook_id is not None:
        return None
    if message.author.id == me.id or message.type not in _ANSWERED_TYPES:
        return None
    channel = message.channel
    guild_id = message.guild.id if message.guild else None
    reference = message.reference
    if reference is not None and reference.message_id in bot.outbox.authors:
        assert reference.message_id is not None
        persona_id = bot.outbox.authors[reference.message_id]
        if (await bot.state.rules(guild_id)).allows_persona(persona_id):
            return persona_id
    persona_id = await bot.active_persona(channel)
    if message.guild is None:
        return persona_id
    if me in message.mentions:
        return persona_id
    if isinstance(channel, discord.Thread) and channel.owner_id == me.id:
        return persona_id
    if bot.discord_settings.respond_to_names:
        card = await bot.card(persona_id)
        if card is not None and names_persona(message.content, card):
            return persona_id
    return None


def make_turn(message: discord.Message, user_id: int, persona_id: str, text: str) -> Turn:
    return Turn(
        user_id=user_id,
        persona_id=persona_id,
        text=text,
        conversation=conversation_key(message.channel.id),
        platform=PLATFORM,
        user_name=message.author.display_name,
        metadata={
            "discord_message_id": message.id,
            "discord_channel_id": message.channel.id,
            "discord_guild_id": message.guild.id if message.guild else None,
        },
    )
