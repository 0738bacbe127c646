"""Settings of the voice plugin: ``[plugin_settings.voice]`` in the settings file.

::

    [plugin_settings.voice]
    default_voice = "espeak:en-us"
    daily_quota_seconds = 600

    [plugin_settings.voice.elevenlabs]
    api_key = "..."            # or the ELEVENLABS_API_KEY environment variable
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from personae.core.errors import ConfigError

if TYPE_CHECKING:
    from personae.core.settings import Settings

API_KEY_ENV = "ELEVENLABS_API_KEY"


class EspeakSettings(BaseModel):
    """The local espeak-ng engine (Debian package ``espeak-ng``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    binary: str = "espeak-ng"
    speed: int = Field(165, ge=80, le=450)
    """Words per minute."""
    pitch: int = Field(50, ge=0, le=99)


class ElevenLabsSettings(BaseModel):
    """The ElevenLabs HTTP API. Registered only when an API key is configured."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None
    """The ``xi-api-key``; when unset, the ``ELEVENLABS_API_KEY`` environment variable."""
    base_url: str = "https://api.elevenlabs.io"
    model_id: str = "eleven_multilingual_v2"
    sample_rate: int = 22050
    """PCM rate asked of the API (``output_format=pcm_<rate>``): 16000, 22050 or 24000."""
    connect_timeout: float = Field(5.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    """Retries after a 429 or 5xx answer (or a dropped connection)."""
    retry_backoff: float = Field(0.5, ge=0)
    """First wait between retries in seconds; doubles each time (at most 8 s)."""

    @model_validator(mode="after")
    def _check_rate(self) -> ElevenLabsSettings:
        if self.sample_rate not in (16000, 22050, 24000):
            raise ValueError("sample_rate must be 16000, 22050 or 24000")
        return self

    def key(self) -> str | None:
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        return os.environ.get(API_KEY_ENV) or None


class VoiceSettings(BaseModel):
    """How personas speak, and the limits on what users may spend and upload."""

    model_config = ConfigDict(extra="forbid")

    default_voice: str = "espeak:en-us"
    """The system default voice (``"<engine>:<voice>"``), used when a persona names none."""
    daily_quota_seconds: float | None = Field(600.0, ge=0)
    """Seconds of synthesised speech per user per day (UTC); None = unlimited."""
    count_local_engines: bool = False
    """Count local engines (espeak-ng) toward the quota too; cloud engines always count."""
    upload_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    sample_min_seconds: float = Field(3.0, ge=0)
    sample_max_seconds: float = Field(180.0, gt=0)
    samples_per_persona: int = Field(5, ge=1)
    """How many samples an owner may keep for one persona."""
    synthesis_timeout: float = Field(30.0, gt=0)
    """Seconds one engine call (one sentence, or one whole text) may take."""
    convert_timeout: float = Field(30.0, gt=0)
    """Seconds an ffmpeg/ffprobe run (Ogg/Opus conversion, sample checks) may take."""
    concurrency: int = Field(2, ge=1, le=32)
    """Engine calls running at once across the whole process."""
    max_sentence_chars: int = Field(300, ge=40)
    """Longer stretches without a sentence end are cut at a comma or space."""
    preview_text: str = Field("Hello! This is how I sound when I speak.", min_length=1)
    cache_days: float = Field(7.0, ge=0)
    """Cached reply audio older than this is removed at startup; 0 keeps it forever."""
    voices_cache_seconds: float = Field(300.0, ge=0)
    """How long a listing of an engine's voices is reused."""
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    espeak: EspeakSettings = Field(default_factory=lambda: EspeakSettings())
    elevenlabs: ElevenLabsSettings = Field(default_factory=lambda: ElevenLabsSettings())

    @model_validator(mode="after")
    def _check(self) -> VoiceSettings:
        if self.sample_min_seconds >= self.sample_max_seconds:
            raise ValueError("sample_min_seconds must be below sample_max_seconds")
        if ":" not in self.default_voice:
            raise ValueError('default_voice must be "<engine>:<voice>", e.g. "espeak:en-us"')
        return self


def load_voice_settings(settings: Settings) -> VoiceSettings:
    """Validate ``plugin_settings.voice``; a :class:`ConfigError` names the bad keys."""
    raw = settings.plugin_settings.get("voice", {})
    try:
        return VoiceSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'voice'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid [plugin_settings.voice]: {problems}") from None
