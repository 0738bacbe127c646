"""Speech in a Discord voice channel: each sentence becomes a discord.py audio
source fed by ffmpeg, played in order. (No voice gateway: the tests read the
sources the way discord.py's player thread does.)"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest

from personae.plugins.voice import AudioChunk, EspeakEngine
from personae.plugins.voice.audio import parse_wav, wav_to_ogg
from personae.plugins.voice.discord_audio import audio_source, play_speech

FRAME = discord.opus.Encoder.FRAME_SIZE  # 20 ms of 48 kHz stereo 16-bit PCM
SENTENCES = ["Welcome to the channel.", "I will read this aloud.", "That is all."]


def read_all(source: discord.AudioSource) -> list[bytes]:
    frames = []
    while frame := source.read():
        frames.append(frame)
    source.cleanup()
    return frames


async def chunk(index: int, text: str) -> AudioChunk:
    wav = await EspeakEngine().synthesize(text, "en-us", timeout=10)
    return AudioChunk(index, text, wav, "wav", parse_wav(wav).duration, wav)


async def test_a_wav_becomes_20_ms_frames_of_48_khz_stereo_pcm() -> None:
    spoken = await chunk(0, SENTENCES[0])
    source = audio_source(spoken)
    assert isinstance(source, discord.FFmpegPCMAudio)
    assert not source.is_opus()
    frames = read_all(source)
    assert FRAME == 3840 and all(len(frame) == FRAME for frame in frames)
    assert len(frames) == pytest.approx(spoken.duration / 0.02, abs=3)
    assert any(frame.strip(b"\x00") for frame in frames)  # not silence


async def test_ogg_opus_bytes_play_too() -> None:
    spoken = await chunk(0, SENTENCES[1])
    frames = read_all(audio_source(await wav_to_ogg(spoken.wav)))
    assert len(frames) == pytest.approx(spoken.duration / 0.02, abs=5)


class PlayerThread:
    """Stands in for the voice client's player: like discord.py's ``AudioPlayer``,
    a thread reads the source to its end, cleans it up and calls ``after``."""

    def __init__(self, *, connected: bool = True) -> None:
        self.connected = connected
        self.played: list[tuple[discord.AudioSource, int]] = []

    def is_connected(self) -> bool:
        return self.connected

    def play(self, source: discord.AudioSource, *, after: Callable[[Any], None]) -> None:
        def run() -> None:
            self.played.append((source, len(read_all(source))))
            after(None)

        threading.Thread(target=run, daemon=True).start()


async def test_each_sentence_is_played_in_order_through_an_audio_source() -> None:
    chunks = [await chunk(i, text) for i, text in enumerate(SENTENCES)]

    async def speech() -> AsyncIterator[AudioChunk]:
        for item in chunks:
            yield item

    player = PlayerThread()
    assert await play_speech(player, speech()) == 3
    assert all(isinstance(source, discord.FFmpegPCMAudio) for source, _ in player.played)
    frame_counts = [count for _, count in player.played]
    expected = [c.duration / 0.02 for c in chunks]
    assert frame_counts == [pytest.approx(e, abs=3) for e in expected]


async def test_nothing_is_played_after_the_client_disconnects() -> None:
    async def speech() -> AsyncIterator[AudioChunk]:
        yield await chunk(0, SENTENCES[2])

    player = PlayerThread(connected=False)
    assert await play_speech(player, speech()) == 0
    assert player.played == []
