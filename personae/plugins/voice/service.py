"""The voice service adapters call: which voice a persona speaks in, speech for
streamed and whole replies, previews, uploaded samples, the daily quota, cached
reply audio and the data contract.

The plugin attaches one :class:`VoiceService` per runtime at
``runtime.services["voice"]`` (absent when the plugin is disabled)::

    voice = runtime.services.get("voice")
    choice = await voice.resolve_persona_voice(turn.persona_id, viewer=turn.user_id)
    speech = voice.speak(choice, turn.user_id)           # push text in ...
    async for chunk in runtime.stream(turn):
        speech.feed(chunk)
    speech.end()
    async for audio in speech:                            # ... audio out, sentence by sentence
        play(audio.audio)
    if speech.note:                                       # over quota, engine down ...
        show(speech.note)

No voice error ever escapes :class:`SpeechStream`: a failing engine or a used-up
quota ends the audio and leaves a note; the text reply is untouched.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from personae.core.locks import KeyedLocks
from personae.core.private_files import write_private
from personae.plugins.voice import audio as audio_mod
from personae.plugins.voice.audio import AudioFormat, concat_wav, parse_wav
from personae.plugins.voice.engines.base import TTSEngine, VoiceInfo
from personae.plugins.voice.errors import (
    QuotaExceeded,
    SampleRejected,
    VoiceEngineError,
    VoiceError,
    VoiceNotAllowed,
    VoiceNotFound,
    VoiceTimeout,
    VoiceUnavailable,
)
from personae.plugins.voice.segment import SentenceSegmenter, speakable
from personae.plugins.voice.settings import VoiceSettings
from personae.plugins.voice.store import VoiceSampleRecord, VoiceStore

if TYPE_CHECKING:
    from personae.core.cards import PersonaCard
    from personae.core.clock import Clock
    from personae.core.personas import PersonaRegistry
    from personae.storage.users import UserStore

log = logging.getLogger("personae.voice")

_PERSONA_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
"""A persona key (an id, or a generated ``k.<hex>``): a safe folder name."""
_CLONE_RETRY_SECONDS = 600.0
_MAX_TEXT_PER_CALL = 2500


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """The voice a persona speaks in, and why: its owner's ``"sample"``, a
    ``"preset"`` named on its card, or the system ``"default"``."""

    engine: str
    voice: str
    source: Literal["sample", "preset", "default"]
    sample_id: int | None = None

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.voice}"


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """One spoken sentence. ``audio`` is in ``format``; ``wav`` is always the WAV."""

    index: int
    text: str
    audio: bytes
    format: AudioFormat
    duration: float
    wav: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """A user's speech today. ``limit``/``remaining`` are None when unlimited."""

    used: float
    limit: float | None
    resets_at: datetime

    @property
    def remaining(self) -> float | None:
        return None if self.limit is None else max(0.0, self.limit - self.used)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used >= self.limit


class SpeechStream:
    """Speech for a reply as it streams: push text in with :meth:`feed` (and
    :meth:`end`), iterate :class:`AudioChunk` s out in sentence order.

    Each sentence is synthesised as soon as it is complete, off the event loop,
    while later text is still arriving (one sentence at a time per stream, so
    the quota is checked before each). When the quota runs out or an engine
    fails, the audio ends early and :attr:`note` says why; no voice error is
    raised from iteration. Call :meth:`aclose` when abandoning it."""

    def __init__(
        self, service: VoiceService, voice: VoiceChoice, user_id: int | None, fmt: AudioFormat
    ) -> None:
        self.voice = voice
        self.user_id = user_id
        self.format: AudioFormat = fmt
        self.note: str | None = None
        """Why the audio ended before the text did (for the user), else None."""
        self.error: VoiceError | None = None
        self.chunks: list[AudioChunk] = []
        """The chunks yielded so far."""
        self._service = service
        self._segmenter = SentenceSegmenter(service.settings.max_sentence_chars)
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._out: asyncio.Queue[AudioChunk | None] = asyncio.Queue()
        self._submitted = 0
        self._ended = False
        self._stopped = False
        self._finished = False
        self._worker: asyncio.Task[None] | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._source_error: BaseException | None = None

    # -- input ---------------------------------------------------------------------

    def feed(self, text: str) -> None:
        """Add reply text (any chunking); complete sentences start synthesising."""
        if self._ended:
            raise RuntimeError("feed() after end()")
        for sentence in self._segmenter.feed(text):
            self._submit(sentence)

    def end(self) -> None:
        """The reply is complete: speak what is left."""
        if self._ended:
            return
        for sentence in self._segmenter.flush():
            self._submit(sentence)
        self._ended = True
        self._start_worker()
        self._sentences.put_nowait(None)

    def _feed_from(self, chunks: AsyncIterator[str]) -> None:
        async def pump() -> None:
            try:
                async for chunk in chunks:
                    self.feed(chunk)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # the source's error is the consumer's business
                self._source_error = exc
            finally:
                self.end()

        self._feeder = asyncio.create_task(pump(), name="voice:feed")

    def _submit(self, sentence: str) -> None:
        self._start_worker()
        self._submitted += 1
        self._sentences.put_nowait(sentence)

    def _start_worker(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="voice:speech")

    async def _work(self) -> None:
        index = 0
        try:
            while (sentence := await self._sentences.get()) is not None:
                chunk = await self._speak(index, sentence)
                if chunk is None:
                    return
                self._out.put_nowait(chunk)
                index += 1
        finally:
            self._out.put_nowait(None)

    async def _speak(self, index: int, sentence: str) -> AudioChunk | None:
        try:
            return await self._service._speak_sentence(
                index, sentence, self.voice, self.user_id, self.format
            )
        except asyncio.CancelledError:
            raise
        except QuotaExceeded as exc:
            self._stop(f"{exc} The rest of this reply is text only.", exc)
        except VoiceError as exc:
            log.warning("speech stopped (voice %s): %s", self.voice.id, exc)
            self._stop(f"Speech stopped: {exc} The text reply is complete.", exc)
        except Exception as exc:
            log.exception("speech failed (voice %s)", self.voice.id)
            self._stop(
                "Speech stopped because of an unexpected error; the text reply is complete.",
                VoiceEngineError(str(exc)),
            )
        return None

    def _stop(self, note: str, error: VoiceError) -> None:
        if not self._stopped:
            self._stopped = True
            self.note = note
            self.error = error

    # -- output --------------------------------------------------------------------

    def __aiter__(self) -> SpeechStream:
        return self

    async def __anext__(self) -> AudioChunk:
        if self._finished:
            raise StopAsyncIteration
        self._start_worker()
        chunk = await self._out.get()
        if chunk is None:
            self._finished = True
            if self._feeder is not None:
                await asyncio.gather(self._feeder, return_exceptions=True)
            if self._source_error is not None:
                raise self._source_error
            raise StopAsyncIteration
        self.chunks.append(chunk)
        return chunk

    async def aclose(self) -> None:
        """Stop: cancel the text feed (if any) and sentences not yet spoken."""
        self._ended = True
        self._finished = True
        for task in (self._feeder, self._worker):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> SpeechStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def complete(self) -> bool:
        """True once every sentence of an ended reply has been yielded."""
        return (
            self._finished
            and self._ended
            and not self._stopped
            and len(self.chunks) == self._submitted
        )

    @property
    def duration(self) -> float:
        return sum(c.duration for c in self.chunks)

    def wav(self) -> bytes:
        """The chunks yielded so far joined into one WAV."""
        if not self.chunks:
            raise VoiceError("No speech was produced for this reply.")
        return concat_wav([c.wav for c in self.chunks])


class VoiceService:
    """Everything voice, for adapters and other plugins. One per runtime."""

    def __init__(
        self,
        settings: VoiceSettings,
        *,
        data_dir: Path,
        engines: dict[str, TTSEngine],
        personas: PersonaRegistry,
        users: UserStore,
        clock: Clock,
        store: VoiceStore | None = None,
    ) -> None:
        self.settings = settings
        self.engines = dict(engines)
        self.voices_dir = Path(data_dir) / "voices"
        self.cache_dir = Path(data_dir) / "voice-cache"
        self.personas = personas
        self.users = users
        self.clock = clock
        self.store = store or VoiceStore()
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._clone_locks: KeyedLocks[int] = KeyedLocks()
        self._clone_failed: dict[int, float] = {}
        self._voice_lists: dict[str, tuple[float, list[VoiceInfo]]] = {}

    async def aclose(self) -> None:
        for engine in self.engines.values():
            try:
                await engine.aclose()
            except Exception:
                log.exception("closing TTS engine %s failed", engine.name)

    # -- engines and voices --------------------------------------------------------

    def engine(self, name: str) -> TTSEngine:
        try:
            return self.engines[name]
        except KeyError:
            raise VoiceNotFound(
                f"No speech engine named {name!r} (available: "
                f"{', '.join(sorted(self.engines)) or 'none'})."
            ) from None

    def default_voice(self) -> VoiceChoice:
        """The system default voice (``default_voice`` when its engine is registered,
        else the first voice-less default of any engine)."""
        engine, _, voice = self.settings.default_voice.partition(":")
        if engine in self.engines:
            return VoiceChoice(engine, voice, "default")
        if not self.engines:
            raise VoiceUnavailable("No speech engine is available; install espeak-ng.")
        name = sorted(self.engines)[0]
        return VoiceChoice(name, "", "default")

    async def list_voices(self) -> list[VoiceInfo]:
        """The preset voices of every engine (cloned voices are never listed).
        An engine that cannot list its voices is left out and logged."""
        voices: list[VoiceInfo] = []
        for name in sorted(self.engines):
            try:
                voices.extend(v for v in await self._engine_voices(name) if not v.cloned)
            except VoiceError as exc:
                log.warning("cannot list the voices of %s: %s", name, exc)
        return voices

    async def _engine_voices(self, name: str) -> list[VoiceInfo]:
        now = time.monotonic()
        cached = self._voice_lists.get(name)
        if cached is not None and now - cached[0] < self.settings.voices_cache_seconds:
            return cached[1]
        voices = await self.engine(name).list_voices()
        self._voice_lists[name] = (now, voices)
        return voices

    async def resolve_voice(self, card: PersonaCard, owner_id: int | None) -> VoiceChoice:
        """The voice ``card`` speaks in. ``owner_id`` is the persona's owner (None
        for a system persona, whose samples come from administrators).

        In order: the owner's uploaded sample (the one ``voice_sample`` names, else
        the newest), cloned by a cloning engine on first use; else the card's
        preset ``voice`` when its engine is available; else the system default."""
        sample = await self._sample_voice(card, owner_id)
        if sample is not None:
            return sample
        preset = card.settings.voice
        if preset:
            engine, sep, voice = preset.partition(":")
            if not sep:
                engine, voice = self.default_voice().engine, preset
            if engine in self.engines:
                return VoiceChoice(engine, voice, "preset")
            log.info("persona %s names voice %s; its engine is not available", card.id, preset)
        return self.default_voice()

    async def resolve_persona_voice(self, persona_id: str, viewer: int | None) -> VoiceChoice:
        """:meth:`resolve_voice` for a persona ``viewer`` may use (raises
        :class:`~personae.core.errors.PersonaNotFound` otherwise)."""
        entry = await self.personas.entry(persona_id, viewer=viewer)
        return await self.resolve_voice(entry.card, entry.owner_id)

    async def _sample_voice(self, card: PersonaCard, owner_id: int | None) -> VoiceChoice | None:
        cloners = [e for _, e in sorted(self.engines.items()) if e.can_clone]
        if not cloners:
            return None
        pinned = _sample_id(card.settings.voice_sample)
        key = await self.personas.key_of(card.id, owner_id)
        record = await self.store.persona_sample(key, owner_id, pinned)
        if record is None:
            return None
        cloned = self._usable_clone(record)
        if cloned is not None:
            return VoiceChoice(cloned[0], cloned[1], "sample", record.id)
        failed_at = self._clone_failed.get(record.id)
        if failed_at is not None and time.monotonic() - failed_at < _CLONE_RETRY_SECONDS:
            return None
        async with self._clone_locks.hold(record.id):
            fresh = await self.store.sample(record.owner_id, record.id)
            if fresh is None:
                return None
            cloned = self._usable_clone(fresh)
            if cloned is not None:
                return VoiceChoice(cloned[0], cloned[1], "sample", record.id)
            engine = cloners[0]
            try:
                async with asyncio.timeout(self.settings.synthesis_timeout * 4):
                    voice = await engine.clone_voice(
                        f"{card.name} ({card.id})",
                        self.voices_dir / record.filename,
                        record.content_type,
                    )
            except (VoiceError, TimeoutError, OSError) as exc:
                self._clone_failed[record.id] = time.monotonic()
                log.warning("cloning sample %s with %s failed: %s", record.id, engine.name, exc)
                return None
            await self.store.set_cloned(record.id, f"{engine.name}:{voice}")
            self._clone_failed.pop(record.id, None)
            return VoiceChoice(engine.name, voice, "sample", record.id)

    def _usable_clone(self, record: VoiceSampleRecord) -> tuple[str, str] | None:
        if not record.cloned_voice_id:
            return None
        engine, _, voice = record.cloned_voice_id.partition(":")
        return (engine, voice) if engine in self.engines and voice else None

    async def _voice_for_id(self, voice_id: str, user_id: int | None) -> VoiceChoice:
        """A voice id a user asked for: ``"sample:<id>"`` (theirs only) or a listed
        preset ``"<engine>:<voice>"``."""
        kind, sep, rest = voice_id.partition(":")
        if not sep:
            raise VoiceNotFound(f'{voice_id!r} is not a voice id ("<engine>:<voice>").')
        if kind == "sample":
            sample_id = _sample_id(rest)
            record = None
            if sample_id is not None and user_id is not None:
                record = await self.store.sample(user_id, sample_id)
            if record is None:
                raise VoiceNotFound(f"You have no voice sample {rest!r}.")
            entry = await self.personas.by_key(record.persona_id, viewer=user_id)
            choice = await self._sample_voice(
                entry.card.with_settings(voice_sample=str(record.id)), entry.owner_id
            )
            if choice is None or choice.sample_id != record.id:
                raise VoiceUnavailable(
                    "This sample cannot be spoken yet: no engine that clones voices is "
                    "available (configure ElevenLabs) or cloning failed; try again later."
                )
            return choice
        engine = self.engine(kind)
        if rest and rest not in {v.voice for v in await self._engine_voices(kind) if not v.cloned}:
            raise VoiceNotFound(f"The {engine.name} engine has no voice {rest!r}.")
        return VoiceChoice(kind, rest, "preset")

    # -- quota ---------------------------------------------------------------------

    def _today(self) -> date:
        return self.clock.now().astimezone(UTC).date()

    async def quota(self, user_id: int) -> QuotaStatus:
        """How much of today's speech ``user_id`` has used."""
        day = self._today()
        used = await self.store.used_seconds(user_id, day)
        resets = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        return QuotaStatus(used, self.settings.daily_quota_seconds, resets)

    def counts_toward_quota(self, engine: TTSEngine) -> bool:
        return engine.cloud or self.settings.count_local_engines

    async def _check_quota(self, user_id: int | None, engine: TTSEngine) -> None:
        if user_id is None or self.settings.daily_quota_seconds is None:
            return
        if not self.counts_toward_quota(engine):
            return
        status = await self.quota(user_id)
        if status.exhausted:
            raise QuotaExceeded(
                f"You have used today's {status.limit:g} seconds of speech; speech is back "
                f"at {status.resets_at:%H:%M} UTC."
            )

    async def _record(self, user_id: int | None, engine: TTSEngine, seconds: float) -> None:
        if user_id is not None and self.counts_toward_quota(engine) and seconds > 0:
            await self.store.add_seconds(user_id, self._today(), seconds)

    # -- synthesis -----------------------------------------------------------------

    async def _synth(self, engine: TTSEngine, voice: str, text: str) -> tuple[bytes, float]:
        timeout = self.settings.synthesis_timeout
        async with self._semaphore:
            try:
                async with asyncio.timeout(timeout + 1.0):
                    wav = await engine.synthesize(text, voice, timeout=timeout)
            except TimeoutError:
                raise VoiceTimeout(
                    f"The {engine.name} engine took longer than {timeout:g} s; raise "
                    "plugin_settings.voice.synthesis_timeout."
                ) from None
        try:
            info = parse_wav(wav)
        except ValueError as exc:
            raise VoiceEngineError(
                f"The {engine.name} engine returned bad audio ({exc})."
            ) from None
        return audio_mod.wav_bytes(
            info.pcm, info.sample_rate, info.channels, info.sample_width
        ), info.duration

    async def _convert(self, wav: bytes, fmt: AudioFormat) -> bytes:
        return await audio_mod.convert(
            wav, fmt, ffmpeg=self.settings.ffmpeg, timeout=self.settings.convert_timeout
        )

    async def _speak_sentence(
        self,
        index: int,
        sentence: str,
        voice: VoiceChoice,
        user_id: int | None,
        fmt: AudioFormat,
    ) -> AudioChunk:
        engine = self.engine(voice.engine)
        await self._check_quota(user_id, engine)
        wav, duration = await self._synth(engine, voice.voice, sentence)
        await self._record(user_id, engine, duration)
        audio = wav if fmt == "wav" else await self._convert(wav, fmt)
        return AudioChunk(index, sentence, audio, fmt, duration, wav)

    def speak(
        self, voice: VoiceChoice, user_id: int | None, *, format: AudioFormat = "wav"
    ) -> SpeechStream:
        """A :class:`SpeechStream` to push reply text into (``feed``/``end``)."""
        _check_format(format)
        self.engine(voice.engine)
        return SpeechStream(self, voice, user_id, format)

    def speak_stream(
        self,
        chunks: AsyncIterator[str],
        voice: VoiceChoice,
        user_id: int | None,
        *,
        format: AudioFormat = "wav",
    ) -> SpeechStream:
        """Speech for a stream of text chunks, sentence by sentence as they arrive.
        Iterate the result for :class:`AudioChunk` s; an error of ``chunks`` itself
        is raised at the end of the iteration."""
        speech = self.speak(voice, user_id, format=format)
        speech._feed_from(chunks)
        return speech

    async def synthesize(
        self,
        text: str,
        voice: VoiceChoice,
        user_id: int | None,
        *,
        format: AudioFormat = "wav",
    ) -> bytes:
        """``text`` spoken in ``voice`` as one WAV or Ogg/Opus file, in one engine
        call when it is short enough. Raises :class:`QuotaExceeded` and the other
        :class:`VoiceError` s."""
        _check_format(format)
        engine = self.engine(voice.engine)
        spoken = speakable(text)
        if not spoken:
            raise VoiceError("There is nothing to say in this text.")
        await self._check_quota(user_id, engine)
        if len(spoken) <= _MAX_TEXT_PER_CALL:
            pieces = [spoken]
        else:
            segmenter = SentenceSegmenter(self.settings.max_sentence_chars)
            pieces = _pack(segmenter.feed(text) + segmenter.flush(), _MAX_TEXT_PER_CALL)
        wavs: list[bytes] = []
        total = 0.0
        for piece in pieces:
            wav, duration = await self._synth(engine, voice.voice, piece)
            await self._record(user_id, engine, duration)
            wavs.append(wav)
            total += duration
        whole = wavs[0] if len(wavs) == 1 else concat_wav(wavs)
        return await self._convert(whole, format)

    async def preview(
        self,
        voice_id: str,
        *,
        user_id: int | None = None,
        text: str | None = None,
        format: AudioFormat = "wav",
    ) -> bytes:
        """A sample sentence in ``voice_id``: a listed preset (``"espeak:en-us"``)
        or the caller's own ``"sample:<id>"``. Counts toward ``user_id``'s quota
        like any speech."""
        choice = await self._voice_for_id(voice_id, user_id)
        return await self.synthesize(
            text or self.settings.preview_text, choice, user_id, format=format
        )

    # -- samples -------------------------------------------------------------------

    async def save_sample(
        self, owner_id: int, persona_id: str, data: bytes, filename: str
    ) -> VoiceSampleRecord:
        """Validate and store an uploaded voice sample for a persona ``owner_id``
        owns (an administrator may give a system persona a sample); it is stored
        under the persona's internal key.

        The type comes from the content (WAV, MP3, Ogg, FLAC, M4A), never the name;
        size and duration (read by ffprobe) must be within the limits. The file is
        stored under ``<data_dir>/voices`` with a random name. Raises
        :class:`SampleRejected` or :class:`VoiceNotAllowed`."""
        settings = self.settings
        if not data:
            raise SampleRejected("The uploaded file is empty.")
        if len(data) > settings.upload_max_bytes:
            raise SampleRejected(
                f"The sample is {_megabytes(len(data))}; the limit is "
                f"{_megabytes(settings.upload_max_bytes)}."
            )
        entry = await self.personas.entry(persona_id, viewer=owner_id)
        persona_key = entry.key
        if entry.owner_id != owner_id:
            user = await self.users.get(owner_id)
            if not (entry.is_system and user is not None and user.is_admin):
                raise VoiceNotAllowed(
                    f"Only the owner of {persona_id!r} can give it a voice sample."
                )
        kind = audio_mod.sniff_audio(data)
        if kind is None:
            name = Path(filename or "").name[:80] or "The file"
            claimed = Path(filename or "").suffix.lower().lstrip(".")
            looks = audio_mod.describe_content(data)
            disguise = f", whatever its name ends in (.{claimed})" if claimed else ""
            raise SampleRejected(
                f"{name!r} is not WAV, MP3, Ogg, FLAC or M4A audio: its content is "
                f"{looks}{disguise}."
            )
        if await self.store.count_samples(owner_id, persona_key) >= settings.samples_per_persona:
            raise SampleRejected(
                f"{persona_id!r} already has {settings.samples_per_persona} voice samples; "
                "delete one first."
            )
        content_type, extension = audio_mod.SAMPLE_TYPES[kind]
        stored_name = f"{secrets.token_urlsafe(18)}.{extension}"
        final = self.voices_dir / stored_name
        partial = self.voices_dir / f".{stored_name}.part"
        await asyncio.to_thread(_write_file, partial, data)
        try:
            try:
                probe = await audio_mod.probe(
                    partial, ffprobe=settings.ffprobe, timeout=settings.convert_timeout
                )
            except ValueError as exc:
                raise SampleRejected(
                    f"The file looks like {kind.upper()} but cannot be read as audio ({exc})."
                ) from None
            if probe.audio_streams < 1 or probe.video_streams > 0:
                raise SampleRejected("The file must hold one audio track and no video.")
            if not audio_mod.ffprobe_matches(kind, probe.format_name):
                raise SampleRejected(
                    f"The file starts like {kind.upper()} but reads as {probe.format_name}."
                )
            if probe.duration < settings.sample_min_seconds:
                raise SampleRejected(
                    f"The sample is {probe.duration:.1f} s long; it must last at least "
                    f"{settings.sample_min_seconds:g} s."
                )
            if probe.duration > settings.sample_max_seconds:
                raise SampleRejected(
                    f"The sample is {probe.duration:.1f} s long; it may last at most "
                    f"{settings.sample_max_seconds:g} s."
                )
            await asyncio.to_thread(partial.replace, final)
        except BaseException:
            await asyncio.to_thread(partial.unlink, True)
            raise
        try:
            return await self.store.add_sample(
                owner_id=owner_id,
                persona_id=persona_key,
                filename=stored_name,
                content_type=content_type,
                size=len(data),
                duration=round(probe.duration, 3),
            )
        except BaseException:
            await asyncio.to_thread(final.unlink, True)
            raise

    async def list_samples(
        self, owner_id: int, persona_id: str | None = None
    ) -> list[VoiceSampleRecord]:
        """The samples ``owner_id`` uploaded (for one persona, or all)."""
        if persona_id is not None:
            persona_id = (await self.personas.scope(persona_id, owner_id)).persona_id  # key
        return await self.store.samples(owner_id, persona_id)

    async def get_sample(self, owner_id: int, sample_id: int) -> VoiceSampleRecord:
        """One of ``owner_id``'s samples; :class:`VoiceNotFound` for anyone else's."""
        record = await self.store.sample(owner_id, sample_id)
        if record is None:
            raise VoiceNotFound(f"You have no voice sample {sample_id}.")
        return record

    async def sample_path(self, owner_id: int, sample_id: int) -> Path:
        """The file of one of ``owner_id``'s samples, to serve to that owner only
        (its content type is :attr:`VoiceSampleRecord.content_type`)."""
        record = await self.get_sample(owner_id, sample_id)
        path = self.voices_dir / record.filename
        if not await asyncio.to_thread(path.is_file):
            raise VoiceNotFound(f"The file of voice sample {sample_id} is missing.")
        return path

    async def delete_sample(self, owner_id: int, sample_id: int) -> None:
        """Delete one of ``owner_id``'s samples: its row, its file and its cloned voice."""
        record = await self.get_sample(owner_id, sample_id)
        await self.store.delete_sample(owner_id, sample_id)
        await asyncio.to_thread((self.voices_dir / record.filename).unlink, True)
        failures = await self._delete_clones([record])
        if failures:
            raise VoiceError("The sample is deleted, but " + "; ".join(failures))

    async def _delete_clones(self, records: list[VoiceSampleRecord]) -> list[str]:
        failures: list[str] = []
        for record in records:
            cloned = self._usable_clone(record)
            if cloned is None:
                continue
            engine, voice = cloned
            try:
                await self.engines[engine].delete_voice(voice)
            except VoiceError as exc:
                failures.append(f"the cloned voice {engine}:{voice} was not deleted: {exc}")
        return failures

    # -- cached reply audio --------------------------------------------------------

    def _cache_path(self, user_id: int, persona_id: str, message_id: int, fmt: str) -> Path:
        if not _PERSONA_ID.fullmatch(persona_id):
            raise VoiceNotFound(f"{persona_id!r} is not a persona id.")
        _check_format(fmt)
        return self.cache_dir / str(int(user_id)) / persona_id / f"{int(message_id)}.{fmt}"

    async def cached_reply_audio(
        self, user_id: int, persona_id: str, message_id: int, *, format: AudioFormat = "wav"
    ) -> bytes | None:
        """The cached audio of a stored reply, or None. An Ogg/Opus request is
        served from the cached WAV (and cached too)."""
        path = self._cache_path(user_id, persona_id, message_id, format)
        with contextlib.suppress(FileNotFoundError):
            return await asyncio.to_thread(path.read_bytes)
        if format == "wav":
            return None
        wav_path = self._cache_path(user_id, persona_id, message_id, "wav")
        try:
            wav = await asyncio.to_thread(wav_path.read_bytes)
        except FileNotFoundError:
            return None
        data = await self._convert(wav, format)
        await asyncio.to_thread(_write_file, path, data)
        return data

    async def store_reply_audio(
        self, user_id: int, persona_id: str, message_id: int, wav: bytes
    ) -> None:
        """Cache the WAV of a stored reply (e.g. ``speech.wav()`` after a complete
        :class:`SpeechStream`) so the reply's audio is served without synthesis."""
        path = self._cache_path(user_id, persona_id, message_id, "wav")
        await asyncio.to_thread(_write_file, path, audio_mod.normalize_wav(wav))
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._cache_path(user_id, persona_id, message_id, "ogg").unlink)

    async def reply_audio(
        self,
        user_id: int,
        persona_id: str,
        message_id: int,
        text: str,
        voice: VoiceChoice,
        *,
        format: AudioFormat = "wav",
    ) -> bytes:
        """The audio of a stored reply: from the cache, else synthesised (counting
        toward ``user_id``'s quota) and cached. The caller checks that
        ``message_id`` is a reply in ``user_id``'s conversation with ``persona_id``."""
        cached = await self.cached_reply_audio(user_id, persona_id, message_id, format=format)
        if cached is not None:
            return cached
        wav = await self.synthesize(text, voice, user_id, format="wav")
        await self.store_reply_audio(user_id, persona_id, message_id, wav)
        if format == "wav":
            return wav
        result = await self.cached_reply_audio(user_id, persona_id, message_id, format=format)
        assert result is not None
        return result

    def prune_cache(self) -> int:
        """Delete cached reply audio older than ``cache_days``; return how many files."""
        if self.settings.cache_days <= 0 or not self.cache_dir.is_dir():
            return 0
        cutoff = time.time() - self.settings.cache_days * 86400
        removed = 0
        for path in self.cache_dir.rglob("*"):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _cached_files(self, user_id: int, persona_id: str | None) -> list[Path]:
        root = self.cache_dir / str(int(user_id))
        if persona_id is not None:
            if not _PERSONA_ID.fullmatch(persona_id):
                return []
            root = root / persona_id
        if not root.is_dir():
            return []
        return sorted(p for p in root.rglob("*") if p.is_file())

    # -- the data contract ---------------------------------------------------------

    async def export_user_data(self, user_id: int, persona_id: str | None) -> dict[str, Any] | None:
        """The user's samples (with their audio, base64), their cached reply audio
        (listed) and, for a whole-user export, their daily usage. Personas are
        named by their visible ids (``persona_id`` is a key)."""
        names = {entry.key: entry.id for entry in await self.personas.list(user_id)}
        samples = []
        for record in await self.store.samples(user_id, persona_id):
            path = self.voices_dir / record.filename
            try:
                content = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:
                content = None
            samples.append(
                {
                    **record.as_dict(),
                    "persona_id": names.get(record.persona_id, record.persona_id),
                    "data_base64": None if content is None else base64.b64encode(content).decode(),
                }
            )
        cached = []
        for path in await asyncio.to_thread(self._cached_files, user_id, persona_id):
            cached.append(
                {
                    "persona_id": names.get(path.parent.name, path.parent.name),
                    "message_id": int(path.stem) if path.stem.isdigit() else path.stem,
                    "format": path.suffix.lstrip("."),
                    "size": path.stat().st_size,
                }
            )
        usage = await self.store.usage(user_id) if persona_id is None else []
        if not (samples or cached or usage):
            return None
        return {"samples": samples, "cached_audio": cached, "usage": usage}

    async def forget_user(self, user_id: int, persona_id: str | None) -> int:
        """Delete the user's samples (rows, files, cloned voices), cached reply
        audio and, for the whole user, usage rows. Returns rows + files deleted.
        A cloned voice the engine failed to delete is reported as a VoiceError
        after everything local is gone."""
        records = await self.store.samples(user_id, persona_id)
        count = await self.store.forget_samples(user_id, persona_id)
        for record in records:
            path = self.voices_dir / record.filename
            if await asyncio.to_thread(path.is_file):
                await asyncio.to_thread(path.unlink, True)
                count += 1
        files = await asyncio.to_thread(self._cached_files, user_id, persona_id)
        for path in files:
            await asyncio.to_thread(path.unlink, True)
        count += len(files)
        await asyncio.to_thread(_remove_empty_dirs, self.cache_dir / str(int(user_id)))
        if persona_id is None:
            count += await self.store.forget_usage(user_id)
        failures = await self._delete_clones(records)
        if failures:
            raise VoiceError("Forgetting is incomplete: " + "; ".join(failures))
        return count


def _check_format(fmt: str) -> None:
    if fmt not in ("wav", "ogg"):
        raise ValueError(f"unknown audio format {fmt!r}; use 'wav' or 'ogg'")


def _sample_id(value: str | None) -> int | None:
    if not value:
        return None
    text = value.removeprefix("sample:")
    return int(text) if text.isdigit() else None


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


def _pack(sentences: list[str], limit: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for sentence in sentences:
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def _write_file(path: Path, data: bytes) -> None:
    write_private(path, data)  # 0600 in 0700 folders, replaced atomically


def _remove_empty_dirs(root: Path) -> None:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()
