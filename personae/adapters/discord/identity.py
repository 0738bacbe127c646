"""Speaking as a persona: through a channel webhook (the persona's own name and
avatar) when the bot may manage webhooks there, otherwise as a plain bot message
headed with the persona's name."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from personae.adapters.discord.delivery import DELIVERY_ERRORS, webhook_username
from personae.core.cards import PersonaCard

if TYPE_CHECKING:
    from personae.adapters.discord.settings import DiscordSettings

log = logging.getLogger("personae.discord.identity")

NO_MENTIONS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=False)
_REMEMBERED_MESSAGES = 2000


@dataclass(frozen=True, slots=True)
class Speaker:
    """Who a message is from: a persona's id, display name and avatar."""

    persona_id: str
    name: str
    avatar_url: str | None = None

    @classmethod
    def of(cls, card: PersonaCard, settings: DiscordSettings) -> Speaker:
        avatar = card.settings.avatar
        url: str | None = None
        if avatar and avatar.startswith(("https://", "http://")):
            url = avatar
        elif avatar and settings.public_base_url:
            url = f"{settings.public_base_url.rstrip('/')}/api/personas/{card.id}/avatar"
        return cls(card.id, webhook_username(card.name) or webhook_username(card.id), url)


@dataclass(slots=True)
class Sent:
    """A message the bot sent, and how to edit it."""

    message_id: int
    prefix: str = ""
    """The header the text is shown under (plain messages only)."""
    message: discord.Message | None = None
    webhook: discord.Webhook | None = None
    thread: discord.abc.Snowflake | None = None


def _webhook_parent(channel: Any) -> discord.TextChannel | discord.ForumChannel | None:
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        return parent if isinstance(parent, discord.TextChannel | discord.ForumChannel) else None
    return channel if isinstance(channel, discord.TextChannel) else None


class Outbox:
    """Sends and edits the messages personas say, per channel."""

    def __init__(self, client: discord.Client, settings: DiscordSettings) -> None:
        self.client = client
        self.settings = settings
        self._webhooks: dict[int, discord.Webhook | None] = {}
        self.authors: OrderedDict[int, str] = OrderedDict()
        """Recently sent message id -> persona id, so a reply to it reaches that persona."""

    def remember(self, message_id: int, persona_id: str) -> None:
        self.authors[message_id] = persona_id
        while len(self.authors) > _REMEMBERED_MESSAGES:
            self.authors.popitem(last=False)

    async def webhook_for(self, channel: Any) -> discord.Webhook | None:
        """The channel's personae webhook (created on first use), or None when the
        bot may not manage webhooks there (or in DMs)."""
        if not self.settings.use_webhooks:
            return None
        parent = _webhook_parent(channel)
        if parent is None:
            return None
        if parent.id in self._webhooks:
            return self._webhooks[parent.id]
        me = parent.guild.me
        if me is None or not parent.permissions_for(me).manage_webhooks:
            return None  # not cached: permissions may be granted later
        webhook: discord.Webhook | None = None
        try:
            for candidate in await parent.webhooks():
                if (
                    candidate.name == self.settings.webhook_name
                    and candidate.token
                    and candidate.user is not None
                    and self.client.user is not None
                    and candidate.user.id == self.client.user.id
                ):
                    webhook = candidate
                    break
            if webhook is None:
                webhook = await parent.create_webhook(
                    name=self.settings.webhook_name, reason="personae: persona identities"
                )
        except DELIVERY_ERRORS as exc:
            log.warning("cannot use a webhook in channel %s (%s); sending plainly", parent.id, exc)
            webhook = None
        self._webhooks[parent.id] = webhook
        return webhook

    def forget_webhook(self, channel: Any) -> None:
        parent = _webhook_parent(channel)
        if parent is not None:
            self._webhooks[parent.id] = None

    @staticmethod
    def header(speaker: Speaker) -> str:
        """What heads a plain message so readers know which persona speaks."""
        return f"**{speaker.name}**\n"

    async def send(
        self,
        channel: Any,
        speaker: Speaker,
        text: str,
        *,
        mention: discord.abc.Snowflake | None = None,
    ) -> Sent:
        """Send ``text`` as ``speaker``; it must leave room for :meth:`header`.
        Falls back to a plain message when the webhook is refused or gone."""
        allowed = (
            NO_MENTIONS
            if mention is None
            else discord.AllowedMentions(everyone=False, roles=False, users=[mention])
        )
        webhook = await self.webhook_for(channel)
        if webhook is not None:
            thread = channel if isinstance(channel, discord.Thread) else discord.utils.MISSING
            try:
                message = await webhook.send(
                    text,
                    username=speaker.name,
                    avatar_url=speaker.avatar_url or discord.utils.MISSING,
                    allowed_mentions=allowed,
                    thread=thread,
                    wait=True,
                )
                sent = Sent(message.id, webhook=webhook, thread=thread or None)
                self.remember(message.id, speaker.persona_id)
                return sent
            except (discord.Forbidden, discord.NotFound) as exc:
                log.warning("webhook of channel %s failed (%s); sending plainly", channel.id, exc)
                self.forget_webhook(channel)
            except discord.HTTPException as exc:
                if exc.status != 400:
                    raise
                # Refused as sent (a name Discord will not show, say): this message
                # goes out plainly; the webhook stays for the next one.
                log.warning("webhook message refused in channel %s (%s); sending plainly",
                            channel.id, exc)  # fmt: skip
        prefix = self.header(speaker)
        plain = await channel.send(prefix + text, allowed_mentions=allowed)
        self.remember(plain.id, speaker.persona_id)
        return Sent(plain.id, prefix=prefix, message=plain)

    async def edit(self, sent: Sent, text: str) -> None:
        """Replace a sent message's text (its header stays)."""
        if sent.webhook is not None:
            await sent.webhook.edit_message(
                sent.message_id,
                content=text,
                allowed_mentions=NO_MENTIONS,
                thread=sent.thread or discord.utils.MISSING,
            )
        elif sent.message is not None:
            await sent.message.edit(content=sent.prefix + text, allowed_mentions=NO_MENTIONS)

    async def delete(self, sent: Sent) -> None:
        """Remove a sent message."""
        if sent.webhook is not None:
            await sent.webhook.delete_message(
                sent.message_id, thread=sent.thread or discord.utils.MISSING
            )
        elif sent.message is not None:
            await sent.message.delete()
