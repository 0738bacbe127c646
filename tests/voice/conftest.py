"""Fixtures for the voice plugin: real espeak-ng and ffmpeg, the loopback fake
ElevenLabs, and a started runtime on each database with voice settings a test
chooses."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from personae.core.cards import PersonaCard
from personae.core.clock import ManualClock
from personae.core.runtime import Runtime
from personae.plugins.voice import VoiceService, get_voice_service
from personae.testing.fake_elevenlabs import FakeElevenLabs
from personae.testing.fake_ollama import FakeOllama
from tests.conftest import make_settings

API_KEY = "test-key"
SAMPLE_TEXT = (
    "This is my voice. I am reading a few sentences so that a voice can be made from "
    "them. The weather is mild today and the river is calm."
)

StartVoice = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def fake_elevenlabs() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(api_key=API_KEY, lifetime=120) as fake:
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def start_voice(
    tmp_path: Path,
    fake_ollama: FakeOllama,
    db_url: str,
    fake_elevenlabs: FakeElevenLabs,
    clock: ManualClock,
) -> AsyncIterator[StartVoice]:
    """``await start_voice(elevenlabs=True, plugins={name: plugin}, **voice_settings)``:
    a started runtime whose voice plugin has the given settings (ElevenLabs pointed
    at the fake), with extra plugins registered, stopped after the test."""
    async with AsyncExitStack() as stack:

        async def start(
            *,
            elevenlabs: bool = True,
            plugins: dict[str, object] | None = None,
            overrides: dict[str, Any] | None = None,
            **voice: Any,
        ) -> Runtime:
            voice.setdefault("sample_min_seconds", 1.0)
            if elevenlabs:
                voice.setdefault(
                    "elevenlabs",
                    {"api_key": API_KEY, "base_url": fake_elevenlabs.url, "retry_backoff": 0.01},
                )
            settings = make_settings(
                tmp_path, fake_ollama, db_url, plugin_settings={"voice": voice}, **(overrides or {})
            )
            runtime = Runtime(settings, load_entry_points=False, clock=clock)
            for name, plugin in (plugins or {}).items():
                runtime.plugins.add(plugin, name=name)
            await runtime.start()
            stack.push_async_callback(runtime.stop)
            return runtime

        yield start


def service_of(runtime: Runtime) -> VoiceService:
    service = get_voice_service(runtime)
    assert service is not None
    return service


async def add_persona(
    runtime: Runtime, persona_id: str, owner_id: int | None, **settings: Any
) -> PersonaCard:
    card = PersonaCard(name=persona_id.title(), id=persona_id, description="A test persona.")
    if settings:
        card = card.with_settings(**settings)
    await runtime.personas.save(card, owner_id=owner_id)
    return card


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same few seconds of speech as WAV, MP3, Ogg, FLAC and M4A, plus a
    one-second WAV and a PNG image, made with espeak-ng and ffmpeg."""
    folder = tmp_path_factory.mktemp("audio")
    wav = folder / "speech.wav"
    _run("espeak-ng", "-v", "en-us", "-w", str(wav), SAMPLE_TEXT)
    files = {"wav": wav}
    for kind, codec in (("mp3", "libmp3lame"), ("ogg", "libopus"), ("flac", "flac")):
        target = folder / f"speech.{kind}"
        _run("ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", codec, str(target))
        files[kind] = target
    m4a = folder / "speech.m4a"
    _run("ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", str(m4a))
    files["m4a"] = m4a
    short = folder / "short.wav"
    _run("espeak-ng", "-v", "en-us", "-w", str(short), "Hi.")
    files["short"] = short
    png = folder / "picture.png"
    _run(
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=8x8",
        "-frames:v",
        "1",
        str(png),
    )
    files["png"] = png
    return files
