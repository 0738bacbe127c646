"""Engines are plugins: a third-party engine takes one hook, a plugin can replace
a built-in one, and a broken registration stops the start naming the plugin."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

import pytest

import personae
from personae.core.errors import StartupError
from personae.core.settings import Settings
from personae.plugins.voice import BaseEngine, TTSEngine, VoiceInfo
from personae.plugins.voice.audio import parse_wav, wav_bytes
from tests.voice.conftest import StartVoice, add_persona, service_of


class ToneEngine(BaseEngine):
    """A third-party engine: one beep per word, in pure Python."""

    cloud = False

    def __init__(self, name: str = "tone") -> None:
        self.name = name
        self.calls: list[tuple[str, str]] = []

    async def list_voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(self.name, "a440", "A 440 Hz"), VoiceInfo(self.name, "a220", "A 220 Hz")]

    async def synthesize(self, text: str, voice: str, *, timeout: float) -> bytes:
        self.calls.append((text, voice))
        rate, pitch = 8000, int(voice[1:])
        beep = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * pitch * i / rate)))
            for i in range(rate // 5)
        )
        return wav_bytes(beep * len(text.split()), rate)


class TonePlugin:
    def __init__(self, engine: TTSEngine) -> None:
        self.engine = engine

    @personae.hookimpl
    def register_tts_engines(
        self, register: Callable[[TTSEngine], None], settings: Settings
    ) -> None:
        register(self.engine)


async def test_a_third_party_engine_is_added_with_one_hook(start_voice: StartVoice) -> None:
    engine = ToneEngine()
    runtime = await start_voice(plugins={"tone": TonePlugin(engine)})
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    card = await add_persona(runtime, "beeper", owner.id, voice="tone:a440")

    choice = await service.resolve_voice(card, owner.id)
    speech = service.speak_stream(_chunks("One two. Three."), choice, owner.id)
    chunks = [chunk async for chunk in speech]

    assert (choice.id, choice.source) == ("tone:a440", "preset")
    assert engine.calls == [("One two.", "a440"), ("Three.", "a440")]
    assert [parse_wav(c.wav).duration for c in chunks] == [pytest.approx(0.4), pytest.approx(0.2)]
    assert {"tone:a440", "tone:a220"} <= {v.id for v in await service.list_voices()}


async def test_a_plugin_engine_with_a_builtin_name_replaces_the_builtin(
    start_voice: StartVoice,
) -> None:
    engine = ToneEngine(name="espeak")
    runtime = await start_voice(plugins={"fake-espeak": TonePlugin(engine)}, elevenlabs=False)
    service = service_of(runtime)
    assert service.engines == {"espeak": engine}
    await service.preview("espeak:a220")
    assert engine.calls == [(service.settings.preview_text, "a220")]


async def test_registering_something_that_is_not_an_engine_stops_the_start(
    start_voice: StartVoice,
) -> None:
    with pytest.raises(StartupError, match="plugin 'broken'.*not a TTS engine"):
        await start_voice(plugins={"broken": TonePlugin(object())})  # type: ignore[arg-type]
    with pytest.raises(StartupError, match="plugin 'colon'.*'a:b' is not allowed"):
        await start_voice(plugins={"colon": TonePlugin(ToneEngine("a:b"))})


async def test_invalid_voice_settings_stop_the_start_naming_the_key(
    start_voice: StartVoice,
) -> None:
    with pytest.raises(StartupError, match=r"plugin_settings\.voice.*daily_quota_seconds"):
        await start_voice(daily_quota_seconds=-5)


async def test_with_the_plugin_disabled_there_is_no_voice_service(
    start_voice: StartVoice,
) -> None:
    runtime = await start_voice(overrides={"disabled_plugins": ["voice"]})
    assert "voice" not in runtime.services


async def _chunks(text: str):  # type: ignore[no-untyped-def]
    for word in text.split(" "):
        yield word + " "
