"""Which voice a persona speaks in: its owner's sample, else the preset its card
names, else the system default."""

from __future__ import annotations

from pathlib import Path

from personae.testing.fake_elevenlabs import FakeElevenLabs
from tests.voice.conftest import StartVoice, add_persona, service_of

RACHEL = "21m00Tcm4TlvDq8ikWAM"


async def test_the_plugin_offers_a_voice_service_with_both_builtin_engines(
    start_voice: StartVoice,
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    assert runtime.services["voice"] is service
    assert sorted(service.engines) == ["elevenlabs", "espeak"]
    ids = {voice.id for voice in await service.list_voices()}
    assert {"espeak:en-us", f"elevenlabs:{RACHEL}"} <= ids


async def test_without_an_api_key_only_espeak_is_available(start_voice: StartVoice) -> None:
    runtime = await start_voice(elevenlabs=False)
    assert sorted(service_of(runtime).engines) == ["espeak"]


async def test_a_persona_without_a_voice_speaks_in_the_system_default(
    start_voice: StartVoice,
) -> None:
    runtime = await start_voice(default_voice="espeak:en-gb")
    owner = await runtime.users.create("Owner")
    card = await add_persona(runtime, "plain", owner.id)
    choice = await service_of(runtime).resolve_voice(card, owner.id)
    assert (choice.id, choice.source) == ("espeak:en-gb", "default")


async def test_a_preset_named_on_the_card_beats_the_default(start_voice: StartVoice) -> None:
    runtime = await start_voice()
    owner = await runtime.users.create("Owner")
    card = await add_persona(runtime, "rachel", owner.id, voice=f"elevenlabs:{RACHEL}")
    choice = await service_of(runtime).resolve_persona_voice("rachel", viewer=owner.id)
    assert (choice.id, choice.source) == (f"elevenlabs:{RACHEL}", "preset")
    bare = await service_of(runtime).resolve_voice(card.with_settings(voice="de"), owner.id)
    assert (bare.id, bare.source) == ("espeak:de", "preset")


async def test_a_preset_of_an_unavailable_engine_falls_back_to_the_default(
    start_voice: StartVoice,
) -> None:
    runtime = await start_voice(elevenlabs=False)
    owner = await runtime.users.create("Owner")
    card = await add_persona(runtime, "rachel", owner.id, voice=f"elevenlabs:{RACHEL}")
    choice = await service_of(runtime).resolve_voice(card, owner.id)
    assert (choice.id, choice.source) == ("espeak:en-us", "default")


async def test_the_owners_sample_beats_the_preset_and_is_cloned_once(
    start_voice: StartVoice, fake_elevenlabs: FakeElevenLabs, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    card = await add_persona(runtime, "echo", owner.id, voice="espeak:en-gb")
    sample = await service.save_sample(owner.id, "echo", audio_files["wav"].read_bytes(), "me.wav")

    choice = await service.resolve_voice(card, owner.id)
    again = await service.resolve_persona_voice("echo", viewer=owner.id)

    assert choice.source == "sample" and choice.engine == "elevenlabs"
    assert choice.sample_id == sample.id
    assert again == choice
    assert len(fake_elevenlabs.requests_to("/v1/voices/add")) == 1
    stored = await service.get_sample(owner.id, sample.id)
    assert stored.cloned_voice_id == choice.id
    assert fake_elevenlabs.samples[choice.voice] == [audio_files["wav"].read_bytes()]


async def test_the_card_can_pin_one_of_several_samples(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    card = await add_persona(runtime, "echo", owner.id)
    first = await service.save_sample(owner.id, "echo", audio_files["wav"].read_bytes(), "a.wav")
    newest = await service.save_sample(owner.id, "echo", audio_files["flac"].read_bytes(), "b.flac")
    assert (await service.resolve_voice(card, owner.id)).sample_id == newest.id
    pinned = card.with_settings(voice_sample=str(first.id))
    assert (await service.resolve_voice(pinned, owner.id)).sample_id == first.id


async def test_a_sample_without_a_cloning_engine_falls_back_to_the_preset(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice(elevenlabs=False)
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    card = await add_persona(runtime, "echo", owner.id, voice="espeak:en-gb")
    await service.save_sample(owner.id, "echo", audio_files["wav"].read_bytes(), "me.wav")
    choice = await service.resolve_voice(card, owner.id)
    assert (choice.id, choice.source) == ("espeak:en-gb", "preset")


async def test_a_failed_clone_falls_back_to_the_preset_without_breaking_anything(
    start_voice: StartVoice, fake_elevenlabs: FakeElevenLabs, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    card = await add_persona(runtime, "echo", owner.id, voice="espeak:en-gb")
    await service.save_sample(owner.id, "echo", audio_files["wav"].read_bytes(), "me.wav")
    fake_elevenlabs.fail_next(500, times=10, path="/v1/voices/add")
    choice = await service.resolve_voice(card, owner.id)
    assert (choice.id, choice.source) == ("espeak:en-gb", "preset")


async def test_a_system_persona_speaks_in_a_sample_an_administrator_uploaded(
    start_voice: StartVoice, audio_files: dict[str, Path]
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    admin = await runtime.users.create("Admin", is_admin=True)
    sage = await runtime.personas.get("sage")
    assert (await service.resolve_voice(sage, None)).source != "sample"
    await service.save_sample(admin.id, "sage", audio_files["wav"].read_bytes(), "sage.wav")
    assert (await service.resolve_voice(sage, None)).source == "sample"
