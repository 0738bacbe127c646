"""Voice over HTTP: the voices there are, previews, the audio of a stored reply,
and a persona's voice sample.

Everything goes through the voice plugin's service (``runtime.services["voice"]``);
with the plugin disabled these endpoints answer 404. Audio is negotiated by
``Accept`` (``audio/ogg`` → Ogg/Opus, ``audio/wav`` → WAV, anything else 406).
Voice errors become problem documents with a title a person can act on; a used-up
daily quota is a 429 with ``Retry-After``, never a 500.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math

from aiohttp import BodyPartReader, ClientConnectionResetError, web
from pydantic import BaseModel, Field

from personae.adapters.web import sse
from personae.adapters.web.auth import Principal, current_user
from personae.adapters.web.helpers import int_param, ok, runtime, visible_persona
from personae.adapters.web.keys import CHAT_LIMITER
from personae.adapters.web.problems import Problem
from personae.adapters.web.routing import INTEGER_ID, PERSONA_ID, Endpoint, Param
from personae.adapters.web.uploads import (
    MULTIPART_ERRORS,
    malformed_multipart,
    read_body,
    read_part,
    safe_filename,
    too_large,
)
from personae.core.personas import PersonaEntry
from personae.core.runtime import Reply
from personae.core.types import Scope
from personae.plugins.voice import (
    CONTENT_TYPES,
    AudioFormat,
    QuotaExceeded,
    SampleRejected,
    SpeechStream,
    VoiceAuthError,
    VoiceError,
    VoiceNotAllowed,
    VoiceNotFound,
    VoiceRateLimited,
    VoiceSampleRecord,
    VoiceService,
    VoiceTimeout,
    VoiceUnavailable,
    format_for_accept,
    get_voice_service,
)
from personae.plugins.voice.audio import sniff_audio
from personae.storage.records import StoredMessage

log = logging.getLogger("personae.web.voice")

PREVIEW_MAX_CHARS = 200
"""The longest ``?text=`` a preview speaks."""
VOICE_ID: dict[str, object] = {
    "type": "string",
    "pattern": r"^[a-z0-9_-]{1,32}:[A-Za-z0-9_.+-]{0,100}$",
    "description": '"<engine>:<voice>", or "sample:<id>" for one of your own samples.',
}
SAMPLE_UPLOAD = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "format": "binary"}},
            "required": ["file"],
        }
    },
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}


class VoiceOut(BaseModel):
    id: str = Field(description='"<engine>:<voice>"')
    engine: str
    name: str
    language: str | None


class VoiceList(BaseModel):
    voices: list[VoiceOut]
    default: str = Field(description="The voice a persona that names none speaks in.")


class VoiceSampleOut(BaseModel):
    id: int
    duration: float = Field(description="Seconds.")
    content_type: str


# -- shared helpers ----------------------------------------------------------------------


def voice_service(request: web.Request) -> VoiceService:
    """The voice service; a 404 problem when the voice plugin is disabled."""
    service = get_voice_service(runtime(request))
    if service is None:
        raise Problem(404, "Voice is turned off", "The voice plugin is disabled on this server.")
    return service


def negotiate(request: web.Request) -> AudioFormat:
    """The audio format ``Accept`` asks for; a 406 problem when it is neither."""
    fmt = format_for_accept(request.headers.get("Accept"))
    if fmt is None:
        raise Problem(
            406,
            "Not acceptable",
            "Audio is available as audio/ogg (Ogg/Opus) or audio/wav; ask for one in Accept.",
        )
    return fmt


async def voice_problem(error: VoiceError, voice: VoiceService, user_id: int) -> Problem:
    """The problem document for a voice error (``str(error)`` is the detail)."""
    detail = str(error)
    match error:
        case QuotaExceeded():
            status = await voice.quota(user_id)
            wait = max(1, math.ceil((status.resets_at - voice.clock.now()).total_seconds()))
            return Problem(
                429, "Daily speech quota used up", detail, headers={"Retry-After": str(wait)}
            )
        case VoiceNotFound():
            return Problem(404, "Voice not found", detail)
        case VoiceNotAllowed():
            return Problem(403, "Not allowed", detail)
        case SampleRejected():
            return Problem(422, "Voice sample rejected", detail)
        case VoiceRateLimited():
            return Problem(503, "Speech engine busy", detail, headers={"Retry-After": "30"})
        case VoiceUnavailable():
            return Problem(503, "Speech unavailable", detail)
        case VoiceTimeout():
            return Problem(504, "Speech timed out", detail)
        case VoiceAuthError():
            return Problem(502, "Speech engine refused its key", detail)
    if type(error) is VoiceError:
        return Problem(422, "Nothing to speak", detail)
    return Problem(502, "Speech failed", detail)


def audio_response(data: bytes, fmt: AudioFormat, *, cache: str) -> web.Response:
    return web.Response(
        body=data,
        headers={"Content-Type": CONTENT_TYPES[fmt], "Cache-Control": cache, "Vary": "Accept"},
    )


def check_can_edit(entry: PersonaEntry, principal: Principal) -> None:
    """Only a custom persona's owner, or an administrator for a system persona."""
    if entry.is_system and not principal.account.is_admin:
        raise Problem(
            403, "Read-only persona", "Only administrators can give a system persona a voice."
        )
    if not entry.is_system and entry.owner_id != principal.user_id:
        raise Problem(403, "Not your persona", "Only its owner can give this persona a voice.")


# -- voices and previews -------------------------------------------------------------------


async def list_voices(request: web.Request) -> web.Response:
    await current_user(request)
    voice = voice_service(request)
    voices = await voice.list_voices()
    try:
        default = voice.default_voice().id
    except VoiceError:
        default = voice.settings.default_voice
    return ok(
        VoiceList(
            voices=[
                VoiceOut(id=v.id, engine=v.engine, name=v.name, language=v.language) for v in voices
            ],
            default=default,
        )
    )


async def preview_voice(request: web.Request) -> web.Response:
    """A sample sentence in a voice (``?text=`` or the configured one)."""
    principal = await current_user(request)
    voice = voice_service(request)
    fmt = negotiate(request)
    text = request.query.get("text", "").strip() or None
    if text is not None and len(text) > PREVIEW_MAX_CHARS:
        raise Problem(
            422, "Preview text too long", f"A preview says at most {PREVIEW_MAX_CHARS} characters."
        )
    wait = request.config_dict[CHAT_LIMITER].hit(("voice-preview", principal.user_id))
    if wait is not None:
        raise Problem(
            429,
            "Too many previews",
            f"You are asking for previews too fast; try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    try:
        data = await voice.preview(
            request.match_info["voice_id"], user_id=principal.user_id, text=text, format=fmt
        )
    except VoiceError as error:
        raise await voice_problem(error, voice, principal.user_id) from None
    return audio_response(data, fmt, cache="private, max-age=3600")


# -- the audio of a reply --------------------------------------------------------------------


async def find_reply(request: web.Request, scope: Scope, message_id: int) -> StoredMessage:
    """The persona's message ``message_id`` in one of the caller's conversations
    with it; a 404 problem for anything else (someone else's, a user message)."""
    history = runtime(request).history
    for conversation in await history.conversations(scope):
        page = await history.page(scope, conversation["key"], before=message_id + 1, limit=1)
        if page and page[-1].id == message_id:
            message = page[-1]
            if message.role == "assistant" and message.user_id == scope.user_id:
                return message
            break
    raise Problem(404, "Message not found", f"No reply {message_id} in your conversations.")


async def reply_audio(request: web.Request) -> web.Response:
    """The audio of one of the persona's replies to the caller, in the persona's
    voice; cached after the first time."""
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    message_id = int_param(request, "message_id")
    voice = voice_service(request)
    fmt = negotiate(request)
    message = await find_reply(request, entry.scope(principal.user_id), message_id)
    try:
        choice = await voice.resolve_voice(entry.card, entry.owner_id)
        data = await voice.reply_audio(
            principal.user_id, entry.key, message.id, message.content, choice, format=fmt
        )
    except VoiceError as error:
        raise await voice_problem(error, voice, principal.user_id) from None
    return audio_response(data, fmt, cache="private, max-age=86400")


# -- speech while a reply streams ---------------------------------------------------------


def wants_speech(request: web.Request) -> AudioFormat | None:
    """``?speak=true`` on a streamed chat: the audio format to speak in
    (``?audio_format=ogg|wav``, default Ogg/Opus), else None."""
    if request.query.get("speak", "").lower() not in ("1", "true", "yes"):
        return None
    fmt = request.query.get("audio_format", "ogg").lower()
    if fmt not in ("ogg", "wav"):
        raise Problem(422, "Invalid query parameter", "audio_format must be ogg or wav.")
    return "wav" if fmt == "wav" else "ogg"


class SpokenReply:
    """Speech for a reply streamed as Server-Sent Events: an ``audio`` event per
    sentence as soon as it is synthesised, interleaved with the text's ``chunk``
    events, and an ``audio_end`` event after the last one.

    Voice never breaks the text: every failure (plugin disabled, engine down,
    quota used up) ends the audio early and ``audio_end`` carries the note."""

    def __init__(self, voice: VoiceService | None, note: str | None = None) -> None:
        self.voice = voice
        self.note = note
        self.speech: SpeechStream | None = None
        self.reply: Reply | None = None
        self._early: list[str] = []  # text that came before the voice was chosen
        self._ended = False
        self._events: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._collected = voice is None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(
        cls, request: web.Request, entry: PersonaEntry, user_id: int, fmt: AudioFormat
    ) -> SpokenReply:
        """Start speaking a reply about to stream. The voice is chosen in the
        background (cloning a sample can take a while), so the text never waits."""
        voice = get_voice_service(runtime(request))
        if voice is None:
            return cls(None, "Voice is turned off on this server; the reply is text only.")
        spoken = cls(voice)
        spoken._task = asyncio.create_task(
            spoken._speak(voice, entry, user_id, fmt), name="web:speech"
        )
        return spoken

    async def _speak(
        self, voice: VoiceService, entry: PersonaEntry, user_id: int, fmt: AudioFormat
    ) -> None:
        try:
            try:
                choice = await voice.resolve_voice(entry.card, entry.owner_id)
            except VoiceError as error:
                self.note = f"The reply is text only: {error}"
                return
            speech = self.speech = voice.speak(choice, user_id, format=fmt)
            for text in self._early:
                speech.feed(text)
            self._early.clear()
            if self._ended:
                speech.end()
            async for chunk in speech:
                self._events.put_nowait(
                    sse.event(
                        "audio",
                        {
                            "index": chunk.index,
                            "text": chunk.text,
                            "content_type": CONTENT_TYPES[chunk.format],
                            "duration": round(chunk.duration, 3),
                            "data": base64.b64encode(chunk.audio).decode("ascii"),
                        },
                    )
                )
        except Exception:
            log.exception("speaking a streamed reply failed")
            self.note = "Speech stopped because of an unexpected error; the text is complete."
        finally:
            self._events.put_nowait(None)

    def _take(self) -> bytes:
        """The audio events ready now, without waiting."""
        ready: list[bytes] = []
        while not self._events.empty():
            event = self._events.get_nowait()
            if event is None:
                self._collected = True
            else:
                ready.append(event)
        return b"".join(ready)

    def feed(self, text: str) -> bytes:
        """Hand over reply text; returns the audio events ready so far."""
        if self.speech is not None:
            try:
                self.speech.feed(text)
            except Exception:
                log.exception("feeding a streamed reply to speech failed")
                self.speech = None
                self.note = "Speech stopped because of an unexpected error; the text is complete."
        elif self._task is not None and not self._task.done():
            self._early.append(text)
        return self._take()

    def end(self, reply: Reply) -> bytes:
        """The text is complete and stored; speak what is left."""
        self.reply = reply
        self._ended = True
        if self.speech is not None:
            try:
                self.speech.end()
            except Exception:
                log.exception("ending speech failed")
        return self._take()

    async def finish(self, response: web.StreamResponse) -> None:
        """After the text: write the remaining audio events and ``audio_end``,
        and cache the whole reply's audio. Nothing when the turn did not complete."""
        if self.reply is None or not response.prepared:
            await self.aclose()
            return
        try:
            if ready := self._take():
                await response.write(ready)
            while not self._collected:
                event = await self._events.get()
                if event is None:
                    self._collected = True
                else:
                    await response.write(event)
            speech, complete = self.speech, False
            if speech is not None:
                complete = speech.complete and bool(speech.chunks)
                self.note = self.note or speech.note
                if complete and self.voice is not None:
                    await self._cache(self.voice, speech, self.reply)
            end = {
                "complete": complete,
                "note": self.note,
                "reply_message_id": self.reply.reply_message_id,
            }
            await response.write(sse.event("audio_end", end))
        except (ConnectionError, ClientConnectionResetError):
            pass  # the client went away; the text reply is stored
        finally:
            await self.aclose()

    async def _cache(self, voice: VoiceService, speech: SpeechStream, reply: Reply) -> None:
        user_id = speech.user_id
        if user_id is None:
            return
        try:
            await voice.store_reply_audio(
                user_id, reply.persona_key or reply.persona_id, reply.reply_message_id, speech.wav()
            )
        except (VoiceError, OSError, ValueError) as error:
            log.warning("caching the audio of reply %s failed: %s", reply.reply_message_id, error)

    async def aclose(self) -> None:
        if self.speech is not None:
            await self.speech.aclose()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# -- voice samples ---------------------------------------------------------------------------


async def read_sample(request: web.Request, limit: int) -> tuple[bytes, str]:
    """The uploaded file and the name it was sent under: the multipart field
    ``file`` (or the first file part), or the raw body. 413 past ``limit``."""
    if not request.content_type.startswith("multipart/"):
        body = await read_body(request, limit)
        if not body:
            raise Problem(400, "No file uploaded", "The request body is empty.")
        return body, ""
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise too_large(limit)
    try:
        reader = await request.multipart()
        first: tuple[bytes, str] | None = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or (part.name != "file" and not part.filename):
                continue
            upload = (await read_part(part, limit), safe_filename(part.filename))
            if part.name == "file":
                first = upload
                break
            first = first or upload
    except MULTIPART_ERRORS:
        raise malformed_multipart() from None
    if first is None or not first[0]:
        raise Problem(400, "No file uploaded", "Send the sample in the form field 'file'.")
    return first


def sample_out(record: VoiceSampleRecord) -> VoiceSampleOut:
    return VoiceSampleOut.model_validate(record, from_attributes=True)


async def put_sample(request: web.Request) -> web.Response:
    """Give a persona the caller's voice sample, replacing their earlier one."""
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    check_can_edit(entry, principal)
    voice = voice_service(request)
    data, filename = await read_sample(request, voice.settings.upload_max_bytes)
    user_id = principal.user_id
    earlier = await voice.list_samples(user_id, entry.id)  # newest first
    try:
        # Make room only when the per-persona limit would refuse the new one.
        for record in earlier[voice.settings.samples_per_persona - 1 :]:
            await voice.delete_sample(user_id, record.id)
        record = await voice.save_sample(user_id, entry.id, data, filename)
    except SampleRejected as error:
        status = 415 if sniff_audio(data) is None else 422
        title = "Not an audio file" if status == 415 else "Voice sample rejected"
        raise Problem(status, title, str(error)) from None
    except VoiceError as error:
        raise await voice_problem(error, voice, user_id) from None
    for old in earlier[: voice.settings.samples_per_persona - 1]:
        try:
            await voice.delete_sample(user_id, old.id)
        except VoiceError as error:  # the local copy is gone; a cloud clone was not
            log.warning("replacing voice sample %s: %s", old.id, error)
    return ok(sample_out(record))


async def get_sample(request: web.Request) -> web.StreamResponse:
    """The caller's own sample for this persona (nobody else's)."""
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    voice = voice_service(request)
    samples = await voice.list_samples(principal.user_id, entry.id)
    if not samples:
        raise Problem(404, "No voice sample", f"You have no voice sample for {entry.card.name}.")
    try:
        path = await voice.sample_path(principal.user_id, samples[0].id)
    except VoiceError as error:
        raise await voice_problem(error, voice, principal.user_id) from None
    return web.FileResponse(
        path,
        headers={
            "Content-Type": samples[0].content_type,
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'inline; filename="voice-sample-{samples[0].id}{path.suffix}"',
        },
    )


async def delete_sample(request: web.Request) -> web.Response:
    """Delete the caller's samples for this persona (file and any cloned voice)."""
    principal = await current_user(request)
    entry = await visible_persona(request, principal)
    voice = voice_service(request)
    samples = await voice.list_samples(principal.user_id, entry.id)
    if not samples:
        raise Problem(404, "No voice sample", f"You have no voice sample for {entry.card.name}.")
    failures: list[str] = []
    for record in samples:
        try:
            await voice.delete_sample(principal.user_id, record.id)
        except VoiceNotFound:
            continue  # deleted meanwhile
        except VoiceError as error:  # deleted here, but a cloud clone was not
            failures.append(str(error))
    if failures:
        raise Problem(502, "Cloned voice not deleted", "; ".join(failures))
    return web.Response(status=204)


PID = {"persona_id": PERSONA_ID}
MESSAGE = {"persona_id": PERSONA_ID, "message_id": INTEGER_ID}
ENDPOINTS = [
    Endpoint("GET", "/api/voices", list_voices, "The voices personas can speak in", "voice",
             response=VoiceList, errors=(404,)),
    Endpoint("GET", "/api/voices/{voice_id}/preview", preview_voice, "Hear a voice", "voice",
             response_content="audio/*", path_params={"voice_id": VOICE_ID},
             query=(Param("text", {"type": "string", "maxLength": PREVIEW_MAX_CHARS},
                          "What to say (default: the configured preview sentence)."),),
             errors=(404, 406, 429, 502, 503, 504),
             description="Accept: audio/ogg (Ogg/Opus) or audio/wav. Rate-limited per user; "
             "counts toward the daily speech quota like any speech."),
    Endpoint("GET", "/api/personas/{persona_id}/messages/{message_id}/audio", reply_audio,
             "A reply of the persona, spoken", "voice", response_content="audio/*",
             path_params=MESSAGE,
             errors=(404, 406, 429, 502, 503, 504),
             description="Only the persona's replies in the caller's own conversations. "
             "Accept: audio/ogg or audio/wav. Synthesised once, then served from the cache."),
    Endpoint("PUT", "/api/personas/{persona_id}/voice-sample", put_sample,
             "Give the persona your voice sample", "voice", raw_body=SAMPLE_UPLOAD,
             response=VoiceSampleOut, path_params=PID, errors=(403, 404, 413, 415, 422),
             description="WAV, MP3, Ogg, FLAC or M4A, recognised by content. Replaces your "
             "earlier sample for this persona. Owner only (system personas: administrators)."),
    Endpoint("GET", "/api/personas/{persona_id}/voice-sample", get_sample,
             "Your voice sample for the persona", "voice", response_content="audio/*",
             path_params=PID, errors=(404,)),
    Endpoint("DELETE", "/api/personas/{persona_id}/voice-sample", delete_sample,
             "Delete your voice sample for the persona", "voice", status=204, path_params=PID,
             errors=(404, 502)),
]  # fmt: skip
