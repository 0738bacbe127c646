"""The espeak-ng engine, for real: valid audio, the expected format, a duration
that grows with the text, Ogg/Opus through ffmpeg, clear errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from personae.plugins.voice import EspeakEngine, VoiceNotFound, VoiceTimeout
from personae.plugins.voice.audio import parse_wav, wav_to_ogg

SHORT = "Hello there."
LONG = (
    "Hello there. I have been thinking about the river all morning, and I would like "
    "to tell you what I saw when the sun came up over the hills."
)


def ffprobe(path: Path) -> dict[str, object]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    document: dict[str, object] = json.loads(out)
    return document


async def test_espeak_produces_a_valid_16_bit_mono_wav(tmp_path: Path) -> None:
    wav = await EspeakEngine().synthesize(SHORT, "en-us", timeout=10)
    info = parse_wav(wav)
    assert (info.sample_rate, info.channels, info.sample_width) == (22050, 1, 2)
    assert info.duration > 0.3
    path = tmp_path / "out.wav"
    path.write_bytes(wav)
    probed = ffprobe(path)
    stream = probed["streams"][0]  # type: ignore[index]
    assert stream["codec_name"] == "pcm_s16le"
    assert float(probed["format"]["duration"]) == pytest.approx(info.duration, abs=0.01)  # type: ignore[index]


async def test_the_duration_grows_with_the_text() -> None:
    engine = EspeakEngine()
    short = parse_wav(await engine.synthesize(SHORT, "en-us", timeout=10)).duration
    long = parse_wav(await engine.synthesize(LONG, "en-us", timeout=10)).duration
    longer = parse_wav(await engine.synthesize(f"{LONG} {LONG}", "en-us", timeout=10)).duration
    assert short < long < longer
    assert longer == pytest.approx(2 * long, rel=0.15)


async def test_ogg_opus_conversion_gives_valid_opus_of_the_same_length(tmp_path: Path) -> None:
    wav = await EspeakEngine().synthesize(LONG, "en-us", timeout=10)
    ogg = await wav_to_ogg(wav)
    assert ogg[:4] == b"OggS"
    path = tmp_path / "out.ogg"
    path.write_bytes(ogg)
    probed = ffprobe(path)
    assert probed["streams"][0]["codec_name"] == "opus"  # type: ignore[index]
    duration = float(probed["format"]["duration"])  # type: ignore[index]
    assert duration == pytest.approx(parse_wav(wav).duration, abs=0.1)


async def test_an_unknown_voice_is_a_clear_error() -> None:
    with pytest.raises(VoiceNotFound, match="espeak-ng --voices"):
        await EspeakEngine().synthesize(SHORT, "xx-nonexistent", timeout=10)
    with pytest.raises(VoiceNotFound):
        await EspeakEngine().synthesize(SHORT, "--help", timeout=10)


async def test_voices_are_listed_by_language_without_mbrola() -> None:
    voices = await EspeakEngine().list_voices()
    ids = {voice.id for voice in voices}
    assert {"espeak:en-us", "espeak:de", "espeak:fr-fr"} <= ids
    assert len(ids) == len(voices)
    assert not any(voice.name.startswith(("us-mbrola", "en-german")) for voice in voices)


async def test_a_synthesis_over_its_timeout_is_stopped() -> None:
    with pytest.raises(VoiceTimeout, match="espeak-ng took longer"):
        await EspeakEngine().synthesize(LONG * 200, "en-us", timeout=0.01)
