"""Speech for replies: sentence by sentence while the reply streams, within a
daily quota, never at the cost of the text; whole-text synthesis, previews and
cached reply audio."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from personae.core.clock import ManualClock
from personae.core.types import Turn
from personae.plugins.voice import QuotaExceeded, VoiceChoice, VoiceNotFound
from personae.plugins.voice.audio import parse_wav
from personae.testing.fake_elevenlabs import SECONDS_PER_CHAR, FakeElevenLabs
from personae.testing.fake_ollama import FakeOllama
from tests.voice.conftest import StartVoice, add_persona, service_of

RACHEL = VoiceChoice("elevenlabs", "21m00Tcm4TlvDq8ikWAM", "preset")
ESPEAK = VoiceChoice("espeak", "en-us", "default")
REPLY = "The river is calm today. I walked along it at dawn. Then I came home and wrote to you."
SENTENCES = [
    "The river is calm today.",
    "I walked along it at dawn.",
    "Then I came home and wrote to you.",
]


async def test_the_first_sentence_is_spoken_before_the_reply_has_finished(
    start_voice: StartVoice, fake_ollama: FakeOllama
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    user = await runtime.users.create("User")
    fake_ollama.reply_with(REPLY)
    stream = runtime.stream(Turn(user.id, "sage", "How are you?"))
    speech = service.speak(ESPEAK, user.id)
    text = ""
    first = None
    async for chunk in stream:
        text += chunk
        speech.feed(chunk)
        if first is None and text.startswith(SENTENCES[0] + " "):
            first = await anext(speech)
            assert stream.reply is None  # the reply is still streaming
    speech.end()
    rest = [chunk async for chunk in speech]

    assert first is not None and first.text == SENTENCES[0]
    assert [c.text for c in [first, *rest]] == SENTENCES
    assert [c.index for c in [first, *rest]] == [0, 1, 2]
    assert all(parse_wav(c.audio).duration == pytest.approx(c.duration) for c in rest)
    assert speech.complete and speech.note is None
    assert stream.reply is not None and stream.reply.text == REPLY


async def test_speak_stream_pulls_text_and_yields_audio_in_order_as_ogg(
    start_voice: StartVoice,
) -> None:
    runtime = await start_voice(concurrency=3)
    service = service_of(runtime)

    async def words() -> AsyncIterator[str]:
        for word in REPLY.split(" "):
            yield word + " "

    speech = service.speak_stream(words(), ESPEAK, None, format="ogg")
    chunks = [chunk async for chunk in speech]
    assert [c.text for c in chunks] == SENTENCES
    assert all(c.format == "ogg" and c.audio[:4] == b"OggS" for c in chunks)
    whole = parse_wav(speech.wav())
    assert whole.duration == pytest.approx(sum(c.duration for c in chunks))


async def test_cloud_speech_counts_toward_the_daily_quota_and_local_speech_does_not(
    start_voice: StartVoice,
) -> None:
    runtime = await start_voice(daily_quota_seconds=100)
    service = service_of(runtime)
    user = await runtime.users.create("User")
    await service.synthesize("Hello there.", ESPEAK, user.id)
    assert (await service.quota(user.id)).used == 0
    await service.synthesize("Hello there.", RACHEL, user.id)
    status = await service.quota(user.id)
    assert status.used == pytest.approx(len("Hello there.") * SECONDS_PER_CHAR, abs=0.01)
    assert status.remaining == pytest.approx(100 - status.used)


async def test_local_speech_counts_when_configured(start_voice: StartVoice) -> None:
    runtime = await start_voice(daily_quota_seconds=100, count_local_engines=True)
    service = service_of(runtime)
    user = await runtime.users.create("User")
    wav = await service.synthesize("Hello there.", ESPEAK, user.id)
    assert (await service.quota(user.id)).used == pytest.approx(parse_wav(wav).duration)


async def test_over_quota_the_text_reply_arrives_with_a_clear_note(
    start_voice: StartVoice, fake_ollama: FakeOllama
) -> None:
    runtime = await start_voice(daily_quota_seconds=1.0)
    service = service_of(runtime)
    user = await runtime.users.create("User")
    fake_ollama.reply_with(REPLY)
    stream = runtime.stream(Turn(user.id, "sage", "Tell me about your day."))
    speech = service.speak_stream(_tee(stream, text := []), RACHEL, user.id)
    chunks = [chunk async for chunk in speech]

    assert "".join(text) == REPLY and stream.reply is not None
    # a sentence that starts under the limit is finished (1.44 s); then speech stops
    assert [c.text for c in chunks] == SENTENCES[:1]
    assert speech.note is not None and not speech.complete
    assert "used today's 1 seconds of speech" in speech.note
    assert "00:00 UTC" in speech.note and "text only" in speech.note
    with pytest.raises(QuotaExceeded):
        await service.synthesize("More?", RACHEL, user.id)
    other = await runtime.users.create("Other")
    assert await service.synthesize("Mine.", RACHEL, other.id)


async def test_the_quota_is_back_the_next_day(start_voice: StartVoice, clock: ManualClock) -> None:
    runtime = await start_voice(daily_quota_seconds=1.0)
    service = service_of(runtime)
    user = await runtime.users.create("User")
    await service.synthesize("A sentence long enough.", RACHEL, user.id)
    with pytest.raises(QuotaExceeded):
        await service.synthesize("Again.", RACHEL, user.id)
    clock.advance(days=1)
    assert (await service.quota(user.id)).used == 0
    assert await service.synthesize("Again.", RACHEL, user.id)


async def test_a_failing_engine_ends_the_speech_with_a_note_and_never_the_text(
    start_voice: StartVoice, fake_ollama: FakeOllama, fake_elevenlabs: FakeElevenLabs
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    user = await runtime.users.create("User")
    fake_ollama.reply_with(REPLY)
    fake_elevenlabs.fail_next(503, times=100, path="/v1/text-to-speech")
    stream = runtime.stream(Turn(user.id, "sage", "Hi"))
    speech = service.speak_stream(_tee(stream, text := []), RACHEL, user.id)
    chunks = [chunk async for chunk in speech]
    assert chunks == []
    assert "".join(text) == REPLY and stream.reply is not None
    assert speech.note is not None and "ElevenLabs had a server error (503" in speech.note
    assert (await service.quota(user.id)).used == 0


async def test_whole_text_synthesis_gives_wav_or_ogg(start_voice: StartVoice) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    wav = await service.synthesize(REPLY, ESPEAK, None)
    ogg = await service.synthesize(REPLY, ESPEAK, None, format="ogg")
    assert parse_wav(wav).duration > 3
    assert ogg[:4] == b"OggS"


async def test_a_preview_speaks_a_listed_voice_or_the_callers_own_sample(
    start_voice: StartVoice, fake_elevenlabs: FakeElevenLabs, audio_files: dict
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    owner = await runtime.users.create("Owner")
    other = await runtime.users.create("Other")
    assert parse_wav(await service.preview("espeak:fr-fr")).duration > 1
    assert (await service.preview(RACHEL.id, format="ogg"))[:4] == b"OggS"
    with pytest.raises(VoiceNotFound):
        await service.preview("espeak:xx-nope")
    await add_persona(runtime, "echo", owner.id)
    sample = await service.save_sample(owner.id, "echo", audio_files["wav"].read_bytes(), "a.wav")
    preview = await service.preview(f"sample:{sample.id}", user_id=owner.id)
    assert parse_wav(preview).duration > 1
    cloned = (await service.get_sample(owner.id, sample.id)).cloned_voice_id
    assert fake_elevenlabs.requests[-1].path == f"/v1/text-to-speech/{cloned.split(':')[1]}"
    with pytest.raises(VoiceNotFound):
        await service.preview(f"sample:{sample.id}", user_id=other.id)
    with pytest.raises(VoiceNotFound):  # a cloned voice is not a public preset
        await service.preview(cloned, user_id=other.id)


async def test_reply_audio_is_synthesised_once_then_served_from_the_cache(
    start_voice: StartVoice, fake_ollama: FakeOllama, fake_elevenlabs: FakeElevenLabs
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    user = await runtime.users.create("User")
    fake_ollama.reply_with(REPLY)
    reply = await runtime.reply(Turn(user.id, "sage", "Hi"))
    key = (user.id, "sage", reply.reply_message_id)
    assert await service.cached_reply_audio(*key) is None

    ogg = await service.reply_audio(*key, reply.text, RACHEL, format="ogg")
    calls = len(fake_elevenlabs.requests)
    again = await service.reply_audio(*key, reply.text, RACHEL, format="ogg")
    wav = await service.reply_audio(*key, reply.text, RACHEL, format="wav")

    assert ogg[:4] == b"OggS" and again == ogg
    assert parse_wav(wav).duration == pytest.approx(len(REPLY) * SECONDS_PER_CHAR, abs=0.01)
    assert len(fake_elevenlabs.requests) == calls
    folder = runtime.settings.data_dir / "voice-cache" / str(user.id) / "sage"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{reply.reply_message_id}.ogg",
        f"{reply.reply_message_id}.wav",
    ]


async def test_a_streamed_replys_audio_can_be_cached_for_later(
    start_voice: StartVoice, fake_ollama: FakeOllama
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)
    user = await runtime.users.create("User")
    fake_ollama.reply_with(REPLY)
    stream = runtime.stream(Turn(user.id, "sage", "Hi"))
    speech = service.speak_stream(_tee(stream, []), ESPEAK, user.id)
    async for _ in speech:
        pass
    assert speech.complete and stream.reply is not None
    await service.store_reply_audio(user.id, "sage", stream.reply.reply_message_id, speech.wav())
    cached = await service.cached_reply_audio(user.id, "sage", stream.reply.reply_message_id)
    assert cached == speech.wav()


async def _tee(stream: AsyncIterator[str], seen: list[str]) -> AsyncIterator[str]:
    async for chunk in stream:
        seen.append(chunk)
        yield chunk


async def test_an_error_of_the_text_source_reaches_the_listener_after_the_audio(
    start_voice: StartVoice,
) -> None:
    runtime = await start_voice()
    service = service_of(runtime)

    async def failing() -> AsyncIterator[str]:
        yield SENTENCES[0] + " "
        yield "And then"
        raise ConnectionError("the model went away")

    speech = service.speak_stream(failing(), ESPEAK, None)
    spoken = []
    with pytest.raises(ConnectionError, match="went away"):
        async for chunk in speech:
            spoken.append(chunk.text)
    assert spoken == [SENTENCES[0], "And then"]
