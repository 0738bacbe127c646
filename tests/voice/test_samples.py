"""Uploaded voice samples: type from content, size and duration limits, random
names under the data directory, served only to their owner."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.core.errors import PersonaNotFound
from personae.plugins.voice import SampleRejected, VoiceNotAllowed, VoiceNotFound
from tests.voice.conftest import StartVoice, add_persona, service_of

SUPPORTED = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
}


async def test_each_supported_type_is_stored_under_a_random_name(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    await add_persona(runtime, "echo", owner.id)
    for kind, content_type in SUPPORTED.items():
        data = audio_files[kind].read_bytes()

        record = await service.save_sample(owner.id, "echo", data, "../../etc/My Voice.bin")

        assert record.content_type == content_type
        assert record.size == len(data)
        assert 3.0 < record.duration < 15.0
        path = await service.sample_path(owner.id, record.id)
        assert path.parent == runtime.settings.data_dir / "voices"
        assert path.suffix == f".{kind}" and "Voice" not in path.name and len(path.stem) >= 24
        assert path.read_bytes() == data
    assert len(await service.list_samples(owner.id, "echo")) == len(SUPPORTED)


async def test_a_file_disguised_by_its_name_is_rejected_by_content(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    await add_persona(runtime, "echo", owner.id)
    with pytest.raises(SampleRejected, match=r"a PNG image, whatever its name ends in \(\.mp3\)"):
        await service.save_sample(owner.id, "echo", audio_files["png"].read_bytes(), "voice.mp3")
    with pytest.raises(SampleRejected, match="its content is text"):
        await service.save_sample(owner.id, "echo", b"just some text, no audio " * 50, "voice.wav")
    assert await service.list_samples(owner.id) == []
    assert not any((runtime.settings.data_dir / "voices").glob("*"))


async def test_audio_that_starts_right_but_is_broken_is_rejected(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    await add_persona(runtime, "echo", owner.id)
    broken = b"fLaC" + b"\x00" * 4000
    with pytest.raises(SampleRejected, match="cannot be read as audio"):
        await service.save_sample(owner.id, "echo", broken, "voice.flac")
    assert not any((runtime.settings.data_dir / "voices").glob("*"))


async def test_an_oversized_upload_is_rejected_before_anything_is_written(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice(upload_max_bytes=64 * 1024)
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    await add_persona(runtime, "echo", owner.id)
    data = audio_files["wav"].read_bytes()
    assert len(data) > 64 * 1024
    with pytest.raises(SampleRejected, match=r"the limit is 0\.1 MB"):
        await service.save_sample(owner.id, "echo", data, "me.wav")
    assert not (runtime.settings.data_dir / "voices").exists()


async def test_samples_too_long_or_too_short_are_rejected(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice(sample_min_seconds=1.0, sample_max_seconds=3.0)
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    await add_persona(runtime, "echo", owner.id)
    with pytest.raises(SampleRejected, match=r"it may last at most 3 s"):
        await service.save_sample(owner.id, "echo", audio_files["mp3"].read_bytes(), "me.mp3")
    with pytest.raises(SampleRejected, match=r"it must last at least 1 s"):
        await service.save_sample(owner.id, "echo", audio_files["short"].read_bytes(), "hi.wav")
    assert not any((runtime.settings.data_dir / "voices").glob("*"))


async def test_only_the_personas_owner_may_upload(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    other = await runtime.users.create("Other")
    await add_persona(runtime, "echo", owner.id)
    data = audio_files["wav"].read_bytes()
    with pytest.raises(PersonaNotFound):
        await service.save_sample(other.id, "echo", data, "me.wav")
    with pytest.raises(VoiceNotAllowed, match="Only the owner of 'sage'"):
        await service.save_sample(other.id, "sage", data, "me.wav")


async def test_a_sample_is_served_only_to_its_owner(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    other = await runtime.users.create("Other")
    await add_persona(runtime, "echo", owner.id)
    record = await service.save_sample(owner.id, "echo", audio_files["wav"].read_bytes(), "a.wav")
    assert (await service.sample_path(owner.id, record.id)).is_file()
    with pytest.raises(VoiceNotFound, match=f"no voice sample {record.id}"):
        await service.sample_path(other.id, record.id)
    with pytest.raises(VoiceNotFound):
        await service.delete_sample(other.id, record.id)
    await service.delete_sample(owner.id, record.id)
    assert await service.list_samples(owner.id) == []
    assert not any((runtime.settings.data_dir / "voices").glob("*"))


async def test_the_number_of_samples_per_persona_is_limited(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice(samples_per_persona=1)
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    await add_persona(runtime, "echo", owner.id)
    data = audio_files["wav"].read_bytes()
    await service.save_sample(owner.id, "echo", data, "a.wav")
    with pytest.raises(SampleRejected, match="already has 1 voice samples"):
        await service.save_sample(owner.id, "echo", data, "b.wav")
