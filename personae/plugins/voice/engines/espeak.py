"""espeak-ng: the local, offline default engine (Debian package ``espeak-ng``).

Each synthesis runs ``espeak-ng --stdout -v VOICE --stdin`` as an asyncio
subprocess with a timeout; the text goes in on stdin (never on the command
line), the WAV comes back on stdout.
"""

from __future__ import annotations

import re

from personae.plugins.voice.audio import normalize_wav, run_process
from personae.plugins.voice.engines.base import BaseEngine, VoiceInfo
from personae.plugins.voice.errors import VoiceEngineError, VoiceNotFound
from personae.plugins.voice.settings import EspeakSettings

_VOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_/-]{0,63}(?:\+[A-Za-z0-9_-]{1,32})?")


class EspeakEngine(BaseEngine):
    """Voices are espeak-ng language codes (``en-us``, ``de``), optionally with a
    variant (``en-us+f3``)."""

    name = "espeak"
    cloud = False
    can_clone = False

    def __init__(self, settings: EspeakSettings | None = None) -> None:
        self.settings = settings or EspeakSettings()
        self._voices: list[VoiceInfo] | None = None

    async def list_voices(self) -> list[VoiceInfo]:
        if self._voices is None:
            code, out, err = await run_process(
                [self.settings.binary, "--voices"], timeout=10.0, what="Listing espeak-ng voices"
            )
            if code != 0:
                raise VoiceEngineError(f"espeak-ng --voices failed: {_message(err, code)}")
            self._voices = parse_voices(out.decode("utf-8", "replace"))
        return list(self._voices)

    async def synthesize(self, text: str, voice: str, *, timeout: float) -> bytes:
        if not _VOICE.fullmatch(voice):
            raise VoiceNotFound(f"{voice!r} is not an espeak-ng voice name (try 'en-us').")
        code, out, err = await run_process(
            [
                self.settings.binary, "--stdout", "-b", "1",
                "-v", voice, "-s", str(self.settings.speed), "-p", str(self.settings.pitch),
                "--stdin",
            ],
            input=text.encode("utf-8") + b"\n",
            timeout=timeout,
            what="espeak-ng",
        )  # fmt: skip
        message = _message(err, code)
        if code != 0 and "does not exist" in message:
            raise VoiceNotFound(
                f"espeak-ng has no voice {voice!r}; `espeak-ng --voices` lists them."
            )
        if code != 0 or not out:
            raise VoiceEngineError(f"espeak-ng failed: {message}")
        try:
            return normalize_wav(out)
        except ValueError as exc:
            raise VoiceEngineError(f"espeak-ng produced no valid WAV ({exc}).") from None


def parse_voices(listing: str) -> list[VoiceInfo]:
    """Parse ``espeak-ng --voices``: one voice per language code, MBROLA voices
    (which need extra packages) and variants left out."""
    voices: dict[str, VoiceInfo] = {}
    for line in listing.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 5:
            continue
        _priority, language, age_gender, name, file = parts[:5]
        if file.startswith(("mb/", "!v/")) or language == "variant":
            continue
        gender = {"M": "male", "F": "female"}.get(age_gender.rsplit("/", 1)[-1])
        voices.setdefault(
            language,
            VoiceInfo(
                engine="espeak",
                voice=language,
                name=name.replace("_", " "),
                language=language,
                gender=gender,
            ),
        )
    return sorted(voices.values(), key=lambda v: v.voice)


def _message(err: bytes, code: int) -> str:
    text = err.decode("utf-8", "replace").strip()
    return text[-300:] if text else f"exit status {code}"
