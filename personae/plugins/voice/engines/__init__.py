"""Text-to-speech engines: the protocol, espeak-ng (local) and ElevenLabs (HTTP)."""

from personae.plugins.voice.engines.base import BaseEngine, TTSEngine, VoiceInfo
from personae.plugins.voice.engines.elevenlabs import ElevenLabsEngine
from personae.plugins.voice.engines.espeak import EspeakEngine

__all__ = ["BaseEngine", "ElevenLabsEngine", "EspeakEngine", "TTSEngine", "VoiceInfo"]
