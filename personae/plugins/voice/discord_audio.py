"""Playing synthesised speech through discord.py's voice client.

The Discord adapter joins a voice channel (``/voice join``) and, for each reply
spoken there, hands the :class:`~personae.plugins.voice.service.SpeechStream` to
:func:`play_speech`: each sentence becomes a :class:`discord.FFmpegPCMAudio`
(ffmpeg turns the WAV into the 48 kHz stereo PCM Discord sends, PyNaCl encrypts
it) and is played as soon as the one before it ends, while later sentences are
still being synthesised.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterable
from typing import Any, Protocol

import discord

from personae.plugins.voice.service import AudioChunk

log = logging.getLogger("personae.voice.discord")


class VoicePlayer(Protocol):
    """What :func:`play_speech` needs of a :class:`discord.VoiceClient`."""

    def is_connected(self) -> bool: ...

    def play(self, source: discord.AudioSource, *, after: Any = ...) -> None: ...


def audio_source(audio: AudioChunk | bytes, *, ffmpeg: str = "ffmpeg") -> discord.FFmpegPCMAudio:
    """An :class:`discord.AudioSource` playing ``audio`` (WAV or Ogg/Opus bytes, or
    an :class:`AudioChunk`): ffmpeg reads it from a pipe and writes the 20 ms
    frames of 48 kHz stereo 16-bit PCM that ``VoiceClient.play`` sends."""
    data = audio.audio if isinstance(audio, AudioChunk) else audio
    return discord.FFmpegPCMAudio(
        io.BytesIO(data),
        pipe=True,
        executable=ffmpeg,
        before_options="-hide_banner -nostdin",
        options="-vn",
    )


async def play_speech(
    voice_client: VoicePlayer, chunks: AsyncIterable[AudioChunk], *, ffmpeg: str = "ffmpeg"
) -> int:
    """Play each chunk in order on ``voice_client``, waiting for one to finish
    before the next. Stops when the client disconnects or playback fails.
    Returns how many chunks were played."""
    loop = asyncio.get_running_loop()
    played = 0
    async for chunk in chunks:
        if not voice_client.is_connected():
            break
        finished: asyncio.Future[Exception | None] = loop.create_future()

        def after(
            error: Exception | None, finished: asyncio.Future[Exception | None] = finished
        ) -> None:
            loop.call_soon_threadsafe(_settle, finished, error)

        voice_client.play(audio_source(chunk, ffmpeg=ffmpeg), after=after)
        error = await finished
        if error is not None:
            log.warning("playing speech in a voice channel failed: %s", error)
            break
        played += 1
    return played


def _settle(future: asyncio.Future[Exception | None], error: Exception | None) -> None:
    if not future.done():
        future.set_result(error)
