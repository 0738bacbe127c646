"""The ElevenLabs engine against a loopback fake of its API: voices, synthesis,
instant cloning, and the 401 / 429 / 5xx answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.plugins.voice import (
    ElevenLabsEngine,
    VoiceAuthError,
    VoiceEngineError,
    VoiceNotFound,
    VoiceRateLimited,
    VoiceUnavailable,
)
from personae.plugins.voice.audio import parse_wav
from personae.plugins.voice.settings import ElevenLabsSettings
from personae.testing.fake_elevenlabs import SECONDS_PER_CHAR, FakeElevenLabs
from tests.voice.conftest import API_KEY

RACHEL = "21m00Tcm4TlvDq8ikWAM"


@pytest.fixture
async def engine(fake_elevenlabs: FakeElevenLabs) -> AsyncIterator[ElevenLabsEngine]:
    settings = ElevenLabsSettings(base_url=fake_elevenlabs.url, retries=2, retry_backoff=0.01)
    engine = ElevenLabsEngine(settings, API_KEY)
    yield engine
    await engine.aclose()


async def test_preset_voices_are_listed(engine: ElevenLabsEngine) -> None:
    voices = await engine.list_voices()
    assert [(v.id, v.name, v.gender) for v in voices] == [
        (f"elevenlabs:{RACHEL}", "Rachel", "female"),
        ("elevenlabs:pNInz6obpgDQGcFmaJgB", "Adam", "male"),
    ]
    assert not any(v.cloned for v in voices)


async def test_synthesis_asks_for_pcm_and_returns_wav_of_the_configured_rate(
    engine: ElevenLabsEngine, fake_elevenlabs: FakeElevenLabs
) -> None:
    text = "Good morning to you."
    info = parse_wav(await engine.synthesize(text, RACHEL, timeout=10))
    assert (info.sample_rate, info.channels, info.sample_width) == (22050, 1, 2)
    assert info.duration == pytest.approx(len(text) * SECONDS_PER_CHAR, abs=0.01)
    request = fake_elevenlabs.requests[-1]
    assert request.path == f"/v1/text-to-speech/{RACHEL}"
    assert request.query == {"output_format": "pcm_22050"}
    assert request.json == {"text": text, "model_id": "eleven_multilingual_v2"}
    assert request.api_key == API_KEY


async def test_a_voice_is_cloned_from_a_sample_used_and_deleted(
    engine: ElevenLabsEngine, fake_elevenlabs: FakeElevenLabs, audio_files: dict[str, Path]
) -> None:
    voice = await engine.clone_voice("Echo (echo)", audio_files["mp3"], "audio/mpeg")
    request = fake_elevenlabs.requests_to("/v1/voices/add")[-1]
    assert request.form["name"] == "Echo (echo)"
    assert request.files == [("speech.mp3", "audio/mpeg", audio_files["mp3"].stat().st_size)]
    assert fake_elevenlabs.samples[voice] == [audio_files["mp3"].read_bytes()]
    assert [v.cloned for v in await engine.list_voices() if v.voice == voice] == [True]
    assert parse_wav(await engine.synthesize("Hi.", voice, timeout=10)).duration > 0
    await engine.delete_voice(voice)
    with pytest.raises(VoiceNotFound):
        await engine.synthesize("Hi.", voice, timeout=10)


async def test_a_wrong_api_key_is_a_clear_error_and_not_retried(
    fake_elevenlabs: FakeElevenLabs,
) -> None:
    settings = ElevenLabsSettings(base_url=fake_elevenlabs.url, retries=3, retry_backoff=0.01)
    engine = ElevenLabsEngine(settings, "wrong-key")
    try:
        with pytest.raises(VoiceAuthError, match="rejected the API key.*Invalid API key"):
            await engine.synthesize("Hello.", RACHEL, timeout=10)
    finally:
        await engine.aclose()
    assert len(fake_elevenlabs.requests) == 1


async def test_a_429_is_retried_with_backoff_and_then_succeeds(
    engine: ElevenLabsEngine, fake_elevenlabs: FakeElevenLabs
) -> None:
    fake_elevenlabs.fail_next(429, times=2)
    assert parse_wav(await engine.synthesize("Hello.", RACHEL, timeout=10)).duration > 0
    assert len(fake_elevenlabs.requests_to("/v1/text-to-speech")) == 3


async def test_a_429_that_persists_is_reported_as_rate_limiting(
    engine: ElevenLabsEngine, fake_elevenlabs: FakeElevenLabs
) -> None:
    fake_elevenlabs.fail_next(429, times=10)
    with pytest.raises(VoiceRateLimited, match="429: Too many concurrent requests"):
        await engine.synthesize("Hello.", RACHEL, timeout=10)
    assert len(fake_elevenlabs.requests) == 3  # one try and two retries


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried_then_reported(
    engine: ElevenLabsEngine, fake_elevenlabs: FakeElevenLabs, status: int
) -> None:
    fake_elevenlabs.fail_next(status)
    assert await engine.list_voices()
    fake_elevenlabs.fail_next(status, times=10)
    with pytest.raises(VoiceEngineError, match=f"server error \\({status}"):
        await engine.list_voices()
    assert len(fake_elevenlabs.requests) == 2 + 3


async def test_a_refused_clone_carries_the_api_message(
    engine: ElevenLabsEngine, fake_elevenlabs: FakeElevenLabs, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(VoiceEngineError, match="422: at least one non-empty audio file"):
        await engine.clone_voice("Echo", empty, "audio/wav")


async def test_an_unreachable_api_is_reported_with_its_address() -> None:
    fake = FakeElevenLabs(api_key=API_KEY)
    await fake.start()
    url = fake.url
    await fake.stop()
    engine = ElevenLabsEngine(
        ElevenLabsSettings(base_url=url, retries=1, retry_backoff=0.01), API_KEY
    )
    try:
        with pytest.raises(VoiceUnavailable, match=f"not reachable at {url}"):
            await engine.list_voices()
    finally:
        await engine.aclose()
