"""Personas speaking on Discord: ``/voice join``, ``/voice leave`` and ``/voice say``.

- ``/voice join [channel]`` connects the bot to a voice channel (the one named,
  else the one the caller is in). From then on, every reply a persona gives in
  the text channel where ``/voice join`` was used is also spoken there, in the
  persona's voice, sentence by sentence while the reply still streams
  (:func:`~personae.plugins.voice.discord_audio.play_speech`). One voice channel
  per server; one reply is spoken at a time, in order.
- ``/voice leave`` disconnects.
- ``/voice say`` sends the caller, privately, the last reply the channel's
  persona gave them there as an Ogg/Opus file (cached like the web's reply audio).

Speech never breaks a text reply: when synthesis fails or the speaker's daily
quota runs out, the speaking stops and a short note says why. The voice
connection is made by :attr:`DiscordVoice.connect` (``channel.connect()`` by
default), so tests can hand over a recording client instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import discord

from personae.adapters.discord.delivery import DELIVERY_ERRORS
from personae.adapters.discord.events import PLATFORM, conversation_key
from personae.adapters.discord.identity import NO_MENTIONS
from personae.core.errors import PersonaeError
from personae.plugins.voice import SpeechStream, VoiceService, get_voice_service
from personae.plugins.voice.discord_audio import play_speech

if TYPE_CHECKING:
    from personae.adapters.discord.bot import PersonaeBot

log = logging.getLogger("personae.discord.voice")

SUB_COMMAND, CHANNEL = 1, 7
VOICE_CHANNEL_TYPES = [2, 13]  # voice, stage
COMMAND = "voice"


def command_payload() -> dict[str, Any]:
    """The ``/voice`` application command."""
    channel = {
        "type": CHANNEL,
        "name": "channel",
        "description": "The voice channel (default: the one you are in)",
        "required": False,
        "channel_types": VOICE_CHANNEL_TYPES,
    }
    return {
        "name": COMMAND,
        "description": "Hear the personas: join or leave a voice channel, or get a reply as audio",
        "options": [
            {"type": SUB_COMMAND, "name": "join", "options": [channel],
             "description": "Speak the replies in this channel aloud in a voice channel"},
            {"type": SUB_COMMAND, "name": "leave", "options": [],
             "description": "Stop speaking and leave the voice channel"},
            {"type": SUB_COMMAND, "name": "say", "options": [],
             "description": "The persona's last reply to you here, as an audio file"},
        ],
    }  # fmt: skip


class VoiceConnection(Protocol):
    """What the adapter needs of a :class:`discord.VoiceClient`."""

    def is_connected(self) -> bool: ...

    def play(self, source: discord.AudioSource, *, after: Any = ...) -> None: ...

    async def disconnect(self, *, force: bool = False) -> None: ...


Connector = Callable[[Any], Awaitable[VoiceConnection]]


async def connect_channel(channel: Any) -> VoiceConnection:
    """Join ``channel`` with discord.py's voice client (needs PyNaCl and libopus)."""
    client: VoiceConnection = await channel.connect(self_deaf=True, timeout=20.0)
    return client


@dataclass(slots=True)
class VoiceSession:
    """The bot in one server's voice channel, speaking one text channel's replies."""

    guild_id: int
    voice_channel_id: int
    text_channel_id: int
    client: VoiceConnection
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Replies are spoken one after another."""


class SpokenReply:
    """One reply being spoken: ``feed`` it the text as it streams, then ``finish``.
    The voice is chosen in the background, so the text never waits for it; text
    that arrives before is kept and spoken first."""

    def __init__(self) -> None:
        self.speech: SpeechStream | None = None
        self.playing: asyncio.Task[None] | None = None
        self._early: list[str] = []
        self._outcome: bool | None = None  # None while the reply streams

    def feed(self, text: str) -> None:
        if self.speech is None:
            self._early.append(text)
            return
        try:
            self.speech.feed(text)
        except Exception:  # speech must never break the text reply
            log.exception("feeding a reply to speech failed")

    async def attach(self, speech: SpeechStream) -> None:
        """The voice is chosen: speak what came so far, and whatever follows."""
        self.speech = speech
        for text in self._early:
            self.feed(text)
        self._early.clear()
        if self._outcome is not None:
            await self.finish(self._outcome)

    async def finish(self, completed: bool) -> None:
        """The reply is complete (speak the rest) or failed (stop speaking)."""
        self._outcome = completed
        if self.speech is None:
            return
        if completed:
            with contextlib.suppress(Exception):
                self.speech.end()
        else:
            await self.speech.aclose()


class DiscordVoice:
    """The bot's voice connections, one per server, and the ``/voice`` command."""

    def __init__(self, bot: PersonaeBot, connect: Connector = connect_channel) -> None:
        self.bot = bot
        self.connect = connect
        """Makes the voice connection for a channel (replace it to record playback)."""
        self.sessions: dict[int, VoiceSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def service(self) -> VoiceService | None:
        return get_voice_service(self.bot.runtime)

    # -- /voice ------------------------------------------------------------------------

    async def handle(
        self, interaction: discord.Interaction[Any], sub: str | None, args: dict[str, str]
    ) -> None:
        rules = await self.bot.state.rules(interaction.guild_id)
        if not rules.allows_command(COMMAND):
            await _say(interaction, "/voice is turned off on this server.")
        elif self.service is None:
            await _say(interaction, "Voice is turned off for this bot.")
        elif sub == "join":
            await self._join(interaction, args.get("channel"))
        elif sub == "leave":
            await self._leave(interaction)
        elif sub == "say":
            await self._say_last_reply(interaction)

    async def _join(self, interaction: discord.Interaction[Any], named: str | None) -> None:
        guild = interaction.guild
        if guild is None or interaction.channel_id is None:
            await _say(interaction, "Voice channels are in servers; here, use /voice say.")
            return
        target: Any = guild.get_channel(int(named)) if named and named.isdigit() else None
        if target is None and not named:
            state = getattr(interaction.user, "voice", None)
            target = state.channel if state is not None else None
        if not isinstance(target, discord.VoiceChannel | discord.StageChannel):
            await _say(
                interaction,
                "Join a voice channel first, or name one: /voice join channel:<voice channel>.",
            )
            return
        permissions = target.permissions_for(guild.me)
        if not (permissions.connect and permissions.speak):
            await _say(interaction, f"I may not connect and speak in {target.mention}.")
            return
        await interaction.response.defer(thinking=True)
        current = self.sessions.pop(guild.id, None)
        if current is not None:
            await _disconnect(current)
        try:
            client = await self.connect(target)
        except (TimeoutError, discord.ClientException, RuntimeError) as exc:
            log.warning("joining voice channel %s failed: %s", target.id, exc)
            await interaction.followup.send(
                f"I could not join {target.mention}: {exc or 'it took too long'}."
            )
            return
        self.sessions[guild.id] = VoiceSession(guild.id, target.id, interaction.channel_id, client)
        persona_id = await self.bot.active_persona(interaction.channel)
        card = await self.bot.card(persona_id)
        name = card.name if card is not None else persona_id
        await interaction.followup.send(
            f"🔊 Joined {target.mention}. I will speak {name}'s replies in this channel there "
            "until /voice leave.",
            allowed_mentions=NO_MENTIONS,
        )

    async def _leave(self, interaction: discord.Interaction[Any]) -> None:
        session = self.sessions.pop(interaction.guild_id or 0, None)
        if session is None:
            await _say(interaction, "I am not in a voice channel on this server.")
            return
        await _disconnect(session)
        await _say(interaction, "👋 Left the voice channel.", ephemeral=False)

    async def _say_last_reply(self, interaction: discord.Interaction[Any]) -> None:
        voice = self.service
        channel = interaction.channel
        if voice is None or channel is None:
            return
        user = interaction.user
        user_id = await self.bot.runtime.users.resolve(PLATFORM, str(user.id), user.display_name)
        persona_id = await self.bot.active_persona(channel)
        scope = await self.bot.runtime.personas.scope(persona_id, user_id)
        history = await self.bot.runtime.history.recent(scope, conversation_key(channel.id), 20)
        reply = next((m for m in reversed(history) if m.role == "assistant"), None)
        card = await self.bot.card(persona_id, viewer=user_id)
        name = card.name if card is not None else persona_id
        if reply is None:
            await _say(interaction, f"{name} has not answered you in this channel yet.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            choice = await voice.resolve_persona_voice(persona_id, viewer=user_id)
            audio = await voice.reply_audio(
                user_id, scope.persona_id, reply.id, reply.content, choice, format="ogg"
            )
        except PersonaeError as exc:
            await interaction.followup.send(str(exc)[:2000], ephemeral=True)
            return
        await interaction.followup.send(
            f"🔊 {name}'s last reply to you",
            file=discord.File(io.BytesIO(audio), f"{persona_id}-{reply.id}.ogg"),
            ephemeral=True,
        )

    # -- speaking replies ----------------------------------------------------------------

    def session_for(self, channel: Any) -> VoiceSession | None:
        """The voice session speaking ``channel``'s replies (or its parent's), if any."""
        guild = getattr(channel, "guild", None)
        session = self.sessions.get(guild.id) if guild is not None else None
        if session is None:
            return None
        if session.text_channel_id not in (channel.id, getattr(channel, "parent_id", None)):
            return None
        if not session.client.is_connected():
            self.sessions.pop(session.guild_id, None)
            return None
        return session

    async def start_reply(self, channel: Any, persona_id: str, user_id: int) -> SpokenReply | None:
        """Speak a reply about to stream in ``channel`` when the bot has joined a
        voice channel for it; None otherwise."""
        session = self.session_for(channel)
        voice = self.service
        if session is None or voice is None:
            return None
        spoken = SpokenReply()
        task = asyncio.create_task(
            self._speak(session, spoken, voice, channel, persona_id, user_id),
            name=f"voice:{session.guild_id}",
        )
        spoken.playing = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return spoken

    async def _speak(
        self,
        session: VoiceSession,
        spoken: SpokenReply,
        voice: VoiceService,
        channel: Any,
        persona_id: str,
        user_id: int,
    ) -> None:
        try:
            choice = await voice.resolve_persona_voice(persona_id, viewer=user_id)
            speech = voice.speak(choice, user_id, format="wav")
        except PersonaeError as exc:
            log.warning("cannot speak %s's reply: %s", persona_id, exc)
            return
        try:
            await spoken.attach(speech)
            async with session.turn:
                await play_speech(session.client, speech, ffmpeg=voice.settings.ffmpeg)
        except Exception:
            log.exception("speaking in voice channel %s failed", session.voice_channel_id)
        finally:
            await speech.aclose()
        if speech.note:
            with contextlib.suppress(*DELIVERY_ERRORS):
                await channel.send(f"🔇 {speech.note}", allowed_mentions=NO_MENTIONS)

    async def close(self) -> None:
        """Stop speaking and leave every voice channel."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            await _disconnect(session)


async def _disconnect(session: VoiceSession) -> None:
    try:
        await session.client.disconnect(force=True)
    except (discord.ClientException, OSError) as exc:
        log.info("leaving voice channel %s: %s", session.voice_channel_id, exc)


async def _say(interaction: discord.Interaction[Any], text: str, *, ephemeral: bool = True) -> None:
    await interaction.response.send_message(text, ephemeral=ephemeral)


__all__ = [
    "Connector",
    "DiscordVoice",
    "SpokenReply",
    "VoiceConnection",
    "VoiceSession",
    "command_payload",
    "connect_channel",
]
