"""The Discord client: gateway events in, persona replies out.

:class:`PersonaeBot` is a :class:`discord.AutoShardedClient`. Each message that
addresses a persona becomes a :class:`~personae.core.types.Turn`; its reply streams
into the channel (:mod:`.streaming`) as the persona (:mod:`.identity`). One turn at
a time per channel, any number of channels at once. :class:`DiscordService` starts
and stops the bot next to a running :class:`~personae.core.runtime.Runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from personae.adapters.discord.commands import SlashCommands
from personae.adapters.discord.delivery import DELIVERY_ERRORS, within
from personae.adapters.discord.events import (
    PLATFORM,
    addressed_persona,
    channel_of,
    clean_text,
    make_turn,
)
from personae.adapters.discord.fatal import fatal_gateway_error
from personae.adapters.discord.identity import NO_MENTIONS, Outbox, Speaker
from personae.adapters.discord.limits import BUSY_NOTICE, TOO_FAST_NOTICE, TurnLimits, Verdict
from personae.adapters.discord.linking import LinkCodes
from personae.adapters.discord.ordering import ChannelLine, Place
from personae.adapters.discord.settings import DiscordSettings
from personae.adapters.discord.splitting import split_message
from personae.adapters.discord.state import DiscordState
from personae.adapters.discord.streaming import ReplyWriter, Throttle
from personae.adapters.discord.voice import DiscordVoice
from personae.core.cards import PersonaCard
from personae.core.errors import ConfigError, PersonaeError
from personae.core.locks import KeyedLocks
from personae.core.proactive import ProactiveMessage
from personae.core.runtime import Runtime
from personae.core.settings import Settings

log = logging.getLogger("personae.discord")


def apply_endpoint_overrides(settings: DiscordSettings) -> None:
    """Point discord.py at ``api_base``/``gateway_url`` when set (process-wide)."""
    if settings.api_base:
        Route.BASE = settings.api_base.rstrip("/")
    if settings.gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def bot_token(settings: Settings) -> str:
    """The bot token from the settings, else ``DISCORD_TOKEN``; ConfigError if none."""
    token = settings.discord.token.get_secret_value() if settings.discord.token else ""
    token = token or os.environ.get("DISCORD_TOKEN", "")
    if not token:
        raise ConfigError(
            "No Discord bot token: set PERSONAE_DISCORD__TOKEN (or token under [discord] "
            "in the settings file). See docs/discord.md."
        )
    return token


def intents() -> discord.Intents:
    """Servers, their messages and DMs, with content (a privileged intent), and
    voice states (to speak in voice channels)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    wanted.voice_states = True
    return wanted


class PersonaeBot(discord.AutoShardedClient):
    """The personae Discord bot for one runtime."""

    def __init__(self, runtime: Runtime, settings: Settings) -> None:
        ds = settings.discord
        super().__init__(
            intents=intents(),
            shard_count=ds.shard_count,
            shard_ids=ds.shard_ids,  # type: ignore[arg-type]  # None: all shards
            chunk_guilds_at_startup=False,
            guild_ready_timeout=ds.guild_ready_timeout,
            allowed_mentions=NO_MENTIONS,
        )
        self.runtime = runtime
        self.personae_settings = settings
        self.discord_settings = ds
        self.state = DiscordState(ds.state_dir or settings.data_dir / "discord")
        self.outbox = Outbox(self, ds)
        self.throttle = Throttle(ds.edit_interval_seconds)
        self.links = LinkCodes(runtime.clock)
        self.slash = SlashCommands(self)
        self.voice = DiscordVoice(self)
        self.turns_answered = 0
        self.turns_undelivered = 0
        self._channel_locks: KeyedLocks[int] = KeyedLocks()
        self.limits = TurnLimits(ds)
        self._line = ChannelLine()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._synced = False
        self._unsubscribe: Any = None

    # -- lifecycle ------------------------------------------------------------------

    async def setup_hook(self) -> None:
        self._unsubscribe = self.runtime.proactive.subscribe(PLATFORM, self.deliver_proactive)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.discord_settings.identify_delay_seconds)

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s (shards %s)", self.user, self.shard_ids or "all")
        ds = self.discord_settings
        runs_shard_zero = ds.shard_ids is None or 0 in ds.shard_ids
        if ds.sync_commands and runs_shard_zero and not self._synced:
            self._synced = True
            try:
                await self.slash.sync()
            except DELIVERY_ERRORS as exc:
                log.error("registering slash commands failed: %s", exc)

    async def close(self) -> None:
        """Let replies in flight finish (up to ``shutdown_grace_seconds``), then close."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.discord_settings.shutdown_grace_seconds)
        await self.voice.close()
        await super().close()

    @asynccontextmanager
    async def _channel(self, channel_id: int, place: Place | None = None) -> AsyncIterator[None]:
        """One turn at a time per channel; messages go in arrival order (``place``,
        taken when the message arrived)."""
        self._busy += 1
        self._idle.clear()
        waiting = self.limits.waiting
        waiting[channel_id] = waiting.get(channel_id, 0) + 1
        try:
            if place is not None:
                await place.turn()
            async with self._channel_locks.hold(channel_id):
                yield
        finally:
            waiting[channel_id] -= 1
            if not waiting[channel_id]:
                del waiting[channel_id]
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    # -- personas -----------------------------------------------------------------------

    async def active_persona(self, channel: Any) -> str:
        """The persona that answers in ``channel``: chosen with /persona use (a thread
        inherits its parent's), else the default — whichever the server allows."""
        guild = getattr(channel, "guild", None)
        guild_id = guild.id if guild is not None else None
        rules = await self.state.rules(guild_id)
        candidates: list[str | None] = []
        if channel is not None:
            candidates.append(await self.state.active_persona(guild_id, channel.id))
            parent_id = getattr(channel, "parent_id", None)
            if isinstance(channel, discord.Thread) and parent_id:
                candidates.append(await self.state.active_persona(guild_id, parent_id))
        candidates += [
            self.discord_settings.default_persona,
            self.personae_settings.default_persona,
        ]
        for candidate in candidates:
            if candidate and rules.allows_persona(candidate):
                return candidate
        return (
            sorted(rules.personas)[0] if rules.personas else self.personae_settings.default_persona
        )

    async def card(self, persona_id: str, viewer: int | None = None) -> PersonaCard | None:
        try:
            return await self.runtime.personas.get(persona_id, viewer=viewer)
        except PersonaeError:
            return None

    # -- events -------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id is not None:
            return
        channel = message.channel
        if self.limits.ignores(message.author.id, _channel_ids(channel)):
            return
        place = self._line.place(channel.id)  # before any await: arrival order
        try:
            persona_id = await addressed_persona(self, message)
            if persona_id is None:
                return
            verdict = self.limits.admit(message.author.id, channel.id)
            if verdict is not Verdict.ANSWER:
                if verdict is not Verdict.IGNORE:
                    notice = TOO_FAST_NOTICE if verdict is Verdict.TOO_FAST else BUSY_NOTICE
                    with contextlib.suppress(*DELIVERY_ERRORS):
                        await within(
                            self.discord_settings.delivery_timeout_seconds,
                            message.reply(notice, allowed_mentions=NO_MENTIONS),
                        )
                return
            async with self._channel(channel.id, place):
                await self.answer(message, persona_id)
        finally:
            place.release()

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        channel_ids = _channel_ids(interaction.channel) if interaction.channel else ()
        if self.limits.ignores(interaction.user.id, channel_ids):
            return
        try:
            await self.slash.handle(interaction)
        except DELIVERY_ERRORS as exc:
            log.error("answering interaction %s failed: %s", interaction.id, exc)

    async def answer(self, message: discord.Message, persona_id: str) -> None:
        """Run the turn a message starts and stream the reply into its channel."""
        assert self.user is not None
        text = clean_text(message, self.user.id)
        if not text:
            return
        author = message.author
        user_id = await self.runtime.users.resolve(PLATFORM, str(author.id), author.display_name)
        card = await self.card(persona_id, viewer=user_id)
        if card is None:
            with contextlib.suppress(*DELIVERY_ERRORS):
                await message.channel.send(
                    f"The persona `{persona_id}` is not available. Try /persona list.",
                    allowed_mentions=NO_MENTIONS,
                )
            return
        writer = ReplyWriter(
            self.outbox,
            message.channel,
            Speaker.of(card, self.discord_settings),
            self.throttle,
            limit=self.discord_settings.max_message_chars,
            timeout=self.discord_settings.delivery_timeout_seconds,
        )
        await writer.start()
        stream = self.runtime.stream(make_turn(message, user_id, card.id, text))
        spoken = await self.voice.start_reply(message.channel, card.id, user_id)
        try:
            async for chunk in stream:
                await writer.feed(chunk)
                if spoken is not None:
                    spoken.feed(chunk)
        except PersonaeError as exc:
            await writer.feed(f"\n\n⚠️ {exc}")
        except Exception:
            log.exception("turn for %s in channel %s failed", persona_id, message.channel.id)
            await writer.feed("\n\n⚠️ Something went wrong; please try again.")
        finally:
            # However the loop ended, the runtime's turn ends here too: an abandoned
            # stream must release its conversation.
            await stream.aclose()
            delivered = await writer.finish()
            if spoken is not None:
                await spoken.finish(stream.reply is not None)
        if stream.reply is not None:
            self.turns_answered += 1
            if not delivered:
                self.turns_undelivered += 1
                log.error(
                    "reply %s of %s was stored but not (fully) delivered in channel %s",
                    stream.reply.reply_message_id,
                    persona_id,
                    message.channel.id,
                )

    # -- proactive messages -----------------------------------------------------------

    async def deliver_proactive(self, proactive: ProactiveMessage) -> bool:
        """Say a persona's follow-up in the conversation's channel; False when that
        channel is not Discord's or Discord refuses it."""
        channel_id = channel_of(proactive.conversation)
        if channel_id is None or self.is_closed() or self.user is None:
            return False
        scope = proactive.scope
        card = await self.card(proactive.persona_id, viewer=scope.user_id)
        if card is None:
            return False
        channel: Any = self.get_channel(channel_id) or self.get_partial_messageable(channel_id)
        mention: discord.Object | None = None
        text = proactive.text
        if getattr(channel, "guild", None) is not None:
            for platform, external_id in await self.runtime.users.identities(scope.user_id):
                if platform == PLATFORM and external_id.isdigit():
                    mention = discord.Object(int(external_id))
                    text = f"<@{external_id}> {text}"
                    break
        speaker = Speaker.of(card, self.discord_settings)
        budget = self.discord_settings.max_message_chars - len(Outbox.header(speaker))
        async with self._channel(channel_id):
            try:
                for part in split_message(text, budget):
                    await within(
                        self.discord_settings.delivery_timeout_seconds,
                        self.outbox.send(channel, speaker, part, mention=mention),
                    )
            except DELIVERY_ERRORS as exc:
                log.warning("could not deliver follow-up %s: %s", proactive.id, exc)
                return False
        return True


def _channel_ids(channel: Any) -> tuple[int, ...]:
    """A channel's id and, for a thread, its parent's."""
    parent = getattr(channel, "parent_id", None)
    return (channel.id, parent) if parent else (channel.id,)


class DiscordService:
    """The bot as a service next to a runtime: ``await start()``, ``await stop()``.

    For ``personae serve --discord`` use it in the aiohttp app's ``cleanup_ctx``
    (see :func:`discord_bot`)."""

    def __init__(self, runtime: Runtime, settings: Settings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.bot: PersonaeBot | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Log in and connect in the background; raises ConfigError for a missing or
        rejected token."""
        token = bot_token(self.settings)
        apply_endpoint_overrides(self.settings.discord)
        bot = PersonaeBot(self.runtime, self.settings)
        try:
            await bot.login(token)
        except discord.LoginFailure:
            await bot.close()
            raise ConfigError(
                "Discord rejected the bot token; copy it again from the Developer Portal "
                "(Bot -> Reset Token) into PERSONAE_DISCORD__TOKEN."
            ) from None
        self.bot = bot
        self._task = asyncio.create_task(self._connect(bot), name="discord")

    async def _connect(self, bot: PersonaeBot) -> None:
        try:
            await bot.connect(reconnect=True)
        except (discord.PrivilegedIntentsRequired, discord.ConnectionClosed) as exc:
            fatal = fatal_gateway_error(exc)
            if fatal is None:
                raise
            log.error("the Discord bot stopped: %s", fatal)
            raise fatal from None

    async def wait_until_ready(self) -> None:
        assert self.bot is not None, "start() first"
        await self.bot.wait_until_ready()

    async def wait_closed(self) -> None:
        """Until the bot stops (re-raises why, if it failed)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Finish replies in flight, close the connections."""
        bot, task = self.bot, self._task
        if bot is not None:
            await bot.close()
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        self.bot = self._task = None


@asynccontextmanager
async def discord_bot(runtime: Runtime, settings: Settings) -> AsyncIterator[DiscordService]:
    """Run the bot while the block runs: ``async with discord_bot(rt, settings): ...``."""
    service = DiscordService(runtime, settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def run_discord(runtime: Runtime, settings: Settings) -> None:
    """Run the bot with a started runtime until it fails, is cancelled, or the
    process gets SIGTERM or SIGINT (``docker stop``, systemd, Ctrl-C): then replies
    in flight finish (``shutdown_grace_seconds``) before the bot closes, and the
    caller's runtime drains background work as it stops."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(number, stop.set)
    try:
        async with discord_bot(runtime, settings) as service:
            closed = asyncio.ensure_future(service.wait_closed())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            if closed.done():
                closed.result()  # re-raise why the bot stopped
            else:
                log.info("stopping: finishing replies in flight")
                closed.cancel()
    finally:
        for number in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(number)
