"""Voice: personas speak their replies.

Each persona speaks in its owner's uploaded sample (cloned by a cloning engine),
else the preset voice its card names, else the system default. Engines are
plugins (``register_tts_engines``); built in are espeak-ng (local, the default)
and ElevenLabs (cloud, when an API key is configured). Speech is synthesised
sentence by sentence while a reply streams, within a per-user daily quota.

The plugin puts a :class:`VoiceService` at ``runtime.services["voice"]`` for the
adapters; see docs/voice.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from personae.core.errors import StartupError
from personae.core.hookspecs import hookimpl
from personae.plugins.voice.audio import CONTENT_TYPES, AudioFormat, format_for_accept
from personae.plugins.voice.engines import (
    BaseEngine,
    ElevenLabsEngine,
    EspeakEngine,
    TTSEngine,
    VoiceInfo,
)
from personae.plugins.voice.errors import (
    QuotaExceeded,
    SampleRejected,
    VoiceAuthError,
    VoiceEngineError,
    VoiceError,
    VoiceNotAllowed,
    VoiceNotFound,
    VoiceRateLimited,
    VoiceTimeout,
    VoiceUnavailable,
)
from personae.plugins.voice.segment import SentenceSegmenter, speakable
from personae.plugins.voice.service import (
    AudioChunk,
    QuotaStatus,
    SpeechStream,
    VoiceChoice,
    VoiceService,
)
from personae.plugins.voice.settings import VoiceSettings, load_voice_settings
from personae.plugins.voice.store import VoiceSampleRecord

if TYPE_CHECKING:
    from personae.core.runtime import Runtime
    from personae.core.settings import Settings

__all__ = [
    "CONTENT_TYPES",
    "AudioChunk",
    "AudioFormat",
    "BaseEngine",
    "ElevenLabsEngine",
    "EspeakEngine",
    "QuotaExceeded",
    "QuotaStatus",
    "SampleRejected",
    "SentenceSegmenter",
    "SpeechStream",
    "TTSEngine",
    "VoiceAuthError",
    "VoiceChoice",
    "VoiceEngineError",
    "VoiceError",
    "VoiceInfo",
    "VoiceNotAllowed",
    "VoiceNotFound",
    "VoiceRateLimited",
    "VoiceSampleRecord",
    "VoiceService",
    "VoiceSettings",
    "VoiceTimeout",
    "VoiceUnavailable",
    "format_for_accept",
    "get_voice_service",
    "load_voice_settings",
    "speakable",
]

SERVICE_KEY = "voice"
log = logging.getLogger("personae.voice")


def get_voice_service(runtime: Runtime) -> VoiceService | None:
    """The runtime's voice service, or None when the voice plugin is not loaded."""
    service = runtime.services.get(SERVICE_KEY)
    return service if isinstance(service, VoiceService) else None


@hookimpl(trylast=True)
def register_tts_engines(register: Callable[[TTSEngine], None], settings: Settings) -> None:
    voice = load_voice_settings(settings)
    if voice.espeak.enabled:
        register(EspeakEngine(voice.espeak))
    key = voice.elevenlabs.key()
    if key:
        register(ElevenLabsEngine(voice.elevenlabs, key))


async def collect_engines(runtime: Runtime) -> dict[str, TTSEngine]:
    """Every engine plugins register; the first registration of a name wins."""
    engines: dict[str, TTSEngine] = {}
    extra: list[TTSEngine] = []
    try:
        for plugin, engine in await runtime.plugins.collect(
            "register_tts_engines", settings=runtime.settings
        ):
            name = getattr(engine, "name", "")
            if not isinstance(engine, TTSEngine) or not isinstance(name, str) or not name:
                raise StartupError(
                    f"registered {engine!r}, which is not a TTS engine (see TTSEngine)",
                    plugin=plugin,
                )
            if ":" in name or name == "sample":
                raise StartupError(f"TTS engine name {name!r} is not allowed", plugin=plugin)
            if name in engines:
                extra.append(engine)
            else:
                engines[name] = engine
    except BaseException:
        extra.extend(engines.values())
        raise
    finally:
        for engine in extra:
            try:
                await engine.aclose()
            except Exception:
                log.exception("closing TTS engine %s failed", engine.name)
    return engines


@hookimpl
async def personae_startup(runtime: Runtime) -> None:
    settings = load_voice_settings(runtime.settings)
    engines = await collect_engines(runtime)
    service = VoiceService(
        settings,
        data_dir=runtime.settings.data_dir,
        engines=engines,
        personas=runtime.personas,
        users=runtime.users,
        clock=runtime.clock,
    )
    removed = await asyncio.to_thread(service.prune_cache)
    if removed:
        log.info(
            "removed %d cached reply audio file(s) older than %g days", removed, settings.cache_days
        )
    runtime.services[SERVICE_KEY] = service


@hookimpl
async def personae_shutdown(runtime: Runtime) -> None:
    service = runtime.services.pop(SERVICE_KEY, None)
    if isinstance(service, VoiceService):
        await service.aclose()


def _service_for_data(runtime: Runtime) -> VoiceService:
    service = get_voice_service(runtime)
    if service is not None:
        return service
    return VoiceService(
        load_voice_settings(runtime.settings),
        data_dir=runtime.settings.data_dir,
        engines={},
        personas=runtime.personas,
        users=runtime.users,
        clock=runtime.clock,
    )


@hookimpl
async def export_user_data(
    user_id: int, persona_id: str | None, runtime: Runtime
) -> dict[str, Any] | None:
    return await _service_for_data(runtime).export_user_data(user_id, persona_id)


@hookimpl
async def forget_user(user_id: int, persona_id: str | None, runtime: Runtime) -> int:
    return await _service_for_data(runtime).forget_user(user_id, persona_id)
