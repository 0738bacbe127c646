"""What a text-to-speech engine is, for ``register_tts_engines``.

An engine turns text into 16-bit PCM WAV in one of its voices. Engines are
registered by plugins::

    import personae
    from personae.plugins.voice import BaseEngine, VoiceInfo

    class PiperEngine(BaseEngine):
        name = "piper"

        async def list_voices(self) -> list[VoiceInfo]: ...
        async def synthesize(self, text: str, voice: str, *, timeout: float) -> bytes: ...

    @personae.hookimpl
    def register_tts_engines(register, settings):
        register(PiperEngine())

Engines do their work off the event loop (a subprocess, a thread or network
I/O) and raise :mod:`personae.plugins.voice.errors` errors with messages a user
can act on. The voice service adds timeouts, concurrency limits, the quota and
the Ogg/Opus conversion around them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from personae.plugins.voice.errors import VoiceError


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """One voice an engine offers. ``id`` is ``"<engine>:<voice>"``."""

    engine: str
    voice: str
    name: str
    language: str | None = None
    gender: str | None = None
    cloned: bool = False
    """A voice cloned from someone's sample: never listed to other users."""

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.voice}"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self)}


@runtime_checkable
class TTSEngine(Protocol):
    """The interface every engine implements (see :class:`BaseEngine` for defaults)."""

    name: str
    """Short, lower case, no colon: the prefix of its voice ids."""
    cloud: bool
    """True when synthesis costs money or calls a remote service: its seconds always
    count toward the daily quota."""
    can_clone: bool
    """True when :meth:`clone_voice` makes a voice from an uploaded sample."""

    async def list_voices(self) -> list[VoiceInfo]:
        """The voices this engine offers."""
        ...

    async def synthesize(self, text: str, voice: str, *, timeout: float) -> bytes:
        """``text`` spoken in ``voice`` (the part after ``"<engine>:"``) as PCM WAV.
        Must finish (or raise :class:`~personae.plugins.voice.errors.VoiceTimeout`)
        within ``timeout`` seconds."""
        ...

    async def clone_voice(self, name: str, sample: Path, content_type: str) -> str:
        """Make a voice from an audio sample; return its voice id (without prefix)."""
        ...

    async def delete_voice(self, voice: str) -> None:
        """Delete a cloned voice (called when its owner deletes the sample or is forgotten)."""
        ...

    async def aclose(self) -> None:
        """Release clients and processes."""
        ...


class BaseEngine(ABC):
    """Defaults for an engine that cannot clone and holds no resources; a subclass
    must at least implement :meth:`synthesize`."""

    name: str = ""
    cloud: bool = False
    can_clone: bool = False

    async def list_voices(self) -> list[VoiceInfo]:
        return []

    @abstractmethod
    async def synthesize(self, text: str, voice: str, *, timeout: float) -> bytes:
        """Speak ``text`` in ``voice``; the audio as the engine produces it."""

    async def clone_voice(self, name: str, sample: Path, content_type: str) -> str:
        raise VoiceError(f"The {self.name} engine cannot clone voices from samples.")

    async def delete_voice(self, voice: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
