"""The data contract: a user's samples (files and rows, and their cloned voices),
usage and cached reply audio are exported and forgotten."""

from __future__ import annotations

import base64
from pathlib import Path

from personae.core.runtime import Runtime
from personae.plugins.voice import VoiceChoice
from personae.plugins.voice.service import VoiceService
from personae.testing.fake_elevenlabs import FakeElevenLabs
from tests.voice.conftest import StartVoice, add_persona, service_of

RACHEL = VoiceChoice("elevenlabs", "21m00Tcm4TlvDq8ikWAM", "preset")


async def _fill(runtime: Runtime, audio_files: dict[str, Path]) -> tuple[int, int]:
    """Two users, each with a sample and cached audio for two personas."""
    service = service_of(runtime)
    ids = []
    for name in ("Ann", "Bob"):
        user = await runtime.users.create(name)
        ids.append(user.id)
        for persona in (f"{name.lower()}-one", f"{name.lower()}-two"):
            card = await add_persona(runtime, persona, user.id)
            await service.save_sample(user.id, persona, audio_files["wav"].read_bytes(), "s.wav")
            await service.resolve_voice(card, user.id)  # clones it at the fake
            key = (await runtime.personas.entry(persona, viewer=user.id)).key  # audio's folder
            await service.reply_audio(user.id, key, 100 + len(persona), "Hello.", RACHEL)
    return ids[0], ids[1]


def _files(service: VoiceService) -> set[Path]:
    return {
        p for root in (service.voices_dir, service.cache_dir) if root.exists()
        for p in root.rglob("*") if p.is_file()
    }  # fmt: skip


async def test_export_holds_samples_with_their_audio_cached_audio_and_usage(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    ann, _bob = await _fill(runtime, audio_files)

    export = await runtime.export_user_data(ann)
    data = export["plugins"]["voice"]

    assert sorted(s["persona_id"] for s in data["samples"]) == ["ann-one", "ann-two"]
    assert all(s["cloned_voice_id"].startswith("elevenlabs:") for s in data["samples"])
    wav = audio_files["wav"].read_bytes()
    assert all(base64.b64decode(s["data_base64"]) == wav for s in data["samples"])
    assert sorted((c["persona_id"], c["format"]) for c in data["cached_audio"]) == [
        ("ann-one", "wav"),
        ("ann-two", "wav"),
    ]
    assert len(data["usage"]) == 1 and data["usage"][0]["seconds"] > 0
    one = (await runtime.export_user_data(ann, "ann-one"))["plugins"]["voice"]
    assert [s["persona_id"] for s in one["samples"]] == ["ann-one"]
    assert [c["persona_id"] for c in one["cached_audio"]] == ["ann-one"]
    assert one["usage"] == []


async def test_forgetting_a_user_deletes_files_rows_cloned_voices_and_cache(
    start_voice: StartVoice, audio_files: dict[str, Path], fake_elevenlabs: FakeElevenLabs
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    ann, bob = await _fill(runtime, audio_files)
    bob_samples = {service.voices_dir / s.filename for s in await service.list_samples(bob)}
    bob_files = bob_samples | set((service.cache_dir / str(bob)).rglob("*.wav"))
    ann_clones = [str(s.cloned_voice_id) for s in await service.list_samples(ann)]

    counts = await runtime.forget_user(ann)

    assert counts["voice"] == 2 + 2 + 2 + 1  # sample rows, sample files, cached files, usage
    assert await service.list_samples(ann) == []
    assert (await service.quota(ann)).used == 0
    assert "voice" not in (await runtime.export_user_data(ann))["plugins"]
    at_elevenlabs = {v["voice_id"] for v in fake_elevenlabs.voices}
    assert not {clone.split(":")[1] for clone in ann_clones} & at_elevenlabs
    assert _files(service) == bob_files
    assert not (service.cache_dir / str(ann)).exists()
    assert len(await service.list_samples(bob)) == 2


async def test_forgetting_one_persona_keeps_the_others(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    ann, _bob = await _fill(runtime, audio_files)

    counts = await runtime.forget_user(ann, "ann-one")

    assert counts["voice"] == 1 + 1 + 1
    one, two = [(await runtime.personas.entry(p, viewer=ann)).key for p in ("ann-one", "ann-two")]
    assert [s.persona_id for s in await service.list_samples(ann)] == [two]
    assert await service.cached_reply_audio(ann, one, 107) is None
    assert await service.cached_reply_audio(ann, two, 107) is not None
    assert (await service.quota(ann)).used > 0
