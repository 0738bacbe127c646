"""Errors of the voice plugin. Every one is a :class:`~personae.core.errors.PersonaeError`
whose message a user can act on; front ends show ``str(error)``.

::

    VoiceError                  root of the voice plugin's errors
    ├── VoiceUnavailable        an engine cannot be reached or is not installed
    ├── VoiceAuthError          a cloud engine rejected its API key (HTTP 401)
    ├── VoiceRateLimited        a cloud engine is rate-limiting us (HTTP 429)
    ├── VoiceEngineError        an engine failed (HTTP 5xx, a crashed process, bad output)
    ├── VoiceTimeout            synthesis or conversion took longer than allowed
    ├── VoiceNotFound           no such voice, engine or sample (or not yours)
    ├── VoiceNotAllowed         you may not change this persona's voice
    ├── QuotaExceeded           today's seconds of speech are used up
    └── SampleRejected          an uploaded voice sample failed validation

A failing engine never breaks a text reply: the service turns these errors into
a note next to the text (see :class:`~personae.plugins.voice.service.SpeechStream`).
"""

from __future__ import annotations

from personae.core.errors import PersonaeError


class VoiceError(PersonaeError):
    """Root of the voice plugin's errors. The user sees ``str(error)``."""

    retryable = False


class VoiceUnavailable(VoiceError):
    """The user sees which engine is unavailable and how to make it available."""

    retryable = True


class VoiceAuthError(VoiceError):
    """The user sees that the engine refused the API key and which setting holds it."""


class VoiceRateLimited(VoiceError):
    """The user sees that the engine is rate-limiting requests and to try later."""

    retryable = True


class VoiceEngineError(VoiceError):
    """The user sees the engine's own error message."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class VoiceTimeout(VoiceError):
    """The user sees what took too long and the setting that bounds it."""


class VoiceNotFound(VoiceError):
    """The user sees which voice, engine or sample does not exist (or is not theirs)."""


class VoiceNotAllowed(VoiceError):
    """The user sees that only the persona's owner may change its voice."""


class QuotaExceeded(VoiceError):
    """The user sees that today's speech is used up and when it resets."""


class SampleRejected(VoiceError):
    """The user sees why the uploaded sample was refused (type, size or length)."""
