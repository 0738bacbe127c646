"""A loopback fake of the ElevenLabs HTTP API, for tests and benchmarks.

::

    async with FakeElevenLabs(api_key="test-key") as fake:
        settings = {"elevenlabs": {"api_key": "test-key", "base_url": fake.url}}
        fake.fail_next(429)             # the next request is rate-limited
        ...
        assert fake.requests[-1].path == "/v1/voices/add"

It listens on 127.0.0.1 (a free port) and answers what personae uses:
``GET /v1/voices``, ``POST /v1/text-to-speech/{voice_id}?output_format=pcm_<rate>``
(raw 16-bit mono PCM: a tone whose length grows with the text),
``POST /v1/voices/add`` (multipart ``name`` + ``files``: instant voice cloning) and
``DELETE /v1/voices/{voice_id}``. A wrong ``xi-api-key`` gets 401 with
ElevenLabs' error body; failures are injected with :meth:`fail_next`. The server
stops when the context exits, or by itself after ``lifetime`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from personae.testing.loopback import LoopbackServer

PRESET_VOICES: list[dict[str, Any]] = [
    {
        "voice_id": "21m00Tcm4TlvDq8ikWAM",
        "name": "Rachel",
        "category": "premade",
        "labels": {"accent": "american", "gender": "female"},
    },
    {
        "voice_id": "pNInz6obpgDQGcFmaJgB",
        "name": "Adam",
        "category": "premade",
        "labels": {"accent": "american", "gender": "male"},
    },
]
RATES = (16000, 22050, 24000)
SECONDS_PER_CHAR = 0.06


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, str, int]] = field(default_factory=list)
    """(file name, content type, size) of each uploaded file."""
    api_key: str | None = None


@dataclass(slots=True)
class _Failure:
    status: int
    times: int
    path: str | None
    message: str


def tone_pcm(seconds: float, rate: int) -> bytes:
    """``seconds`` of a soft 220 Hz tone as 16-bit mono PCM."""
    frames = max(1, round(seconds * rate))
    period = [
        struct.pack("<h", int(6000 * math.sin(2 * math.pi * 220 * i / rate))) for i in range(rate)
    ]
    second = b"".join(period)
    whole, rest = divmod(frames, rate)
    return second * whole + second[: rest * 2]


class FakeElevenLabs(LoopbackServer):
    """The fake server. ``voices`` holds the account's voices (presets + clones)."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        delay: float = 0.0,
        lifetime: float = 600.0,
    ) -> None:
        super().__init__(lifetime=lifetime)
        self.api_key = api_key
        self.delay = delay
        """Seconds each text-to-speech request waits before answering."""
        self.voices: list[dict[str, Any]] = [dict(v) for v in PRESET_VOICES]
        self.requests: list[RecordedRequest] = []
        self.samples: dict[str, list[bytes]] = {}
        """The uploaded files of each cloned voice."""
        self._failures: list[_Failure] = []

    # -- control -------------------------------------------------------------------

    def fail_next(
        self, status: int, *, times: int = 1, path: str | None = None, message: str | None = None
    ) -> None:
        """Answer the next ``times`` requests (to paths starting with ``path``, if
        given) with ``status`` and an ElevenLabs-style error body."""
        self._failures.append(_Failure(status, times, path, message or _default_message(status)))

    def requests_to(self, prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    # -- lifecycle -----------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/voices", self._list_voices)
        app.router.add_post("/v1/text-to-speech/{voice_id}", self._tts)
        app.router.add_post("/v1/voices/add", self._add_voice)
        app.router.add_delete("/v1/voices/{voice_id}", self._delete_voice)
        return app

    # -- HTTP ----------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.headers.get("xi-api-key")
        record = RecordedRequest(request.method, request.path, dict(request.query), api_key=key)
        if request.content_type == "application/json" and request.can_read_body:
            with contextlib.suppress(ValueError):
                record = RecordedRequest(
                    request.method,
                    request.path,
                    dict(request.query),
                    await request.json(),
                    api_key=key,
                )
        self.requests.append(record)
        if key != self.api_key:
            return _error(401, "invalid_api_key", "Invalid API key")
        for failure in self._failures:
            if failure.path is None or request.path.startswith(failure.path):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                if request.can_read_body:
                    await request.read()
                return _error(failure.status, _status_name(failure.status), failure.message)
        response: web.StreamResponse = await handler(request)
        return response

    async def _list_voices(self, request: web.Request) -> web.Response:
        return web.json_response({"voices": self.voices})

    async def _tts(self, request: web.Request) -> web.Response:
        voice_id = request.match_info["voice_id"]
        if not any(v["voice_id"] == voice_id for v in self.voices):
            return _error(
                404, "voice_not_found", f"A voice with voice_id {voice_id} was not found."
            )
        output = request.query.get("output_format", "mp3_44100_128")
        rate = int(output[4:]) if output.startswith("pcm_") and output[4:].isdigit() else 0
        if rate not in RATES:
            return _error(422, "invalid_output_format", f"This fake only speaks pcm_{RATES}.")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_json", "The body is not JSON.")
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return _error(422, "invalid_text", "text must be a non-empty string")
        if self.delay:
            await asyncio.sleep(self.delay)
        pcm = tone_pcm(len(text) * SECONDS_PER_CHAR, rate)
        return web.Response(body=pcm, content_type="application/octet-stream")

    async def _add_voice(self, request: web.Request) -> web.Response:
        form: dict[str, str] = {}
        files: list[tuple[str, str, int]] = []
        contents: list[bytes] = []
        if not request.content_type.startswith("multipart/"):
            return _error(400, "invalid_request", "Send multipart/form-data.")
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read()
            if part.filename:
                files.append((part.filename, part.headers.get("Content-Type", ""), len(data)))
                contents.append(bytes(data))
            elif part.name:
                form[part.name] = bytes(data).decode("utf-8", "replace")
        self.requests[-1] = RecordedRequest(
            request.method, request.path, dict(request.query), None, form, files,
            request.headers.get("xi-api-key"),
        )  # fmt: skip
        if not form.get("name"):
            return _error(422, "invalid_name", "name is required")
        if not files or not all(size for _, _, size in files):
            return _error(422, "invalid_files", "at least one non-empty audio file is required")
        voice_id = secrets.token_hex(10)
        self.voices.append(
            {"voice_id": voice_id, "name": form["name"], "category": "cloned", "labels": {}}
        )
        self.samples[voice_id] = contents
        return web.json_response({"voice_id": voice_id, "requires_verification": False})

    async def _delete_voice(self, request: web.Request) -> web.Response:
        voice_id = request.match_info["voice_id"]
        for voice in self.voices:
            if voice["voice_id"] == voice_id:
                self.voices.remove(voice)
                self.samples.pop(voice_id, None)
                return web.json_response({"status": "ok"})
        return _error(404, "voice_not_found", f"A voice with voice_id {voice_id} was not found.")


def _error(status: int, name: str, message: str) -> web.Response:
    return web.json_response({"detail": {"status": name, "message": message}}, status=status)


def _status_name(status: int) -> str:
    return {401: "invalid_api_key", 429: "too_many_concurrent_requests"}.get(
        status, "internal_server_error" if status >= 500 else "error"
    )


def _default_message(status: int) -> str:
    if status == 429:
        return "Too many concurrent requests for your subscription."
    if status >= 500:
        return "An internal server error occurred."
    return "Request failed."
