"""ElevenLabs: preset voices, text-to-speech and instant voice cloning over its
HTTP API (``xi-api-key`` header, base URL configurable).

- ``GET /v1/voices`` lists the account's voices;
- ``POST /v1/text-to-speech/{voice_id}?output_format=pcm_<rate>`` returns raw
  16-bit mono PCM, wrapped here as WAV;
- ``POST /v1/voices/add`` (multipart: ``name``, ``files``) clones a voice from a
  sample; ``DELETE /v1/voices/{voice_id}`` removes it.

401 becomes :class:`VoiceAuthError`, 429 :class:`VoiceRateLimited`, 5xx
:class:`VoiceEngineError`; 429, 5xx and dropped connections are retried with
exponential backoff (tenacity) before the error reaches the caller.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from personae.plugins.voice.audio import wav_bytes
from personae.plugins.voice.engines.base import BaseEngine, VoiceInfo
from personae.plugins.voice.errors import (
    VoiceAuthError,
    VoiceEngineError,
    VoiceError,
    VoiceNotFound,
    VoiceRateLimited,
    VoiceTimeout,
    VoiceUnavailable,
)
from personae.plugins.voice.settings import ElevenLabsSettings

log = logging.getLogger("personae.voice.elevenlabs")

_CLONED_CATEGORIES = {"cloned", "generated", "professional"}


class ElevenLabsEngine(BaseEngine):
    """The ElevenLabs cloud engine. Its seconds count toward the daily quota."""

    name = "elevenlabs"
    cloud = True
    can_clone = True

    def __init__(self, settings: ElevenLabsSettings, api_key: str) -> None:
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"xi-api-key": api_key, "user-agent": "personae-voice"},
            timeout=httpx.Timeout(60.0, connect=settings.connect_timeout),
        )

    async def list_voices(self) -> list[VoiceInfo]:
        response = await self._request("GET", "/v1/voices", timeout=30.0)
        voices: list[VoiceInfo] = []
        for item in _json(response).get("voices") or []:
            if not isinstance(item, dict) or not item.get("voice_id"):
                continue
            raw_labels = item.get("labels")
            labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}
            voices.append(
                VoiceInfo(
                    engine=self.name,
                    voice=str(item["voice_id"]),
                    name=str(item.get("name") or item["voice_id"]),
                    language=labels.get("language") or labels.get("accent"),
                    gender=labels.get("gender"),
                    cloned=item.get("category") in _CLONED_CATEGORIES,
                )
            )
        return voices

    async def synthesize(self, text: str, voice: str, *, timeout: float) -> bytes:
        rate = self.settings.sample_rate
        try:
            async with asyncio.timeout(timeout):
                response = await self._request(
                    "POST",
                    f"/v1/text-to-speech/{_segment(voice)}",
                    params={"output_format": f"pcm_{rate}"},
                    json={"text": text, "model_id": self.settings.model_id},
                    timeout=timeout,
                )
        except TimeoutError:
            raise VoiceTimeout(
                f"ElevenLabs took longer than {timeout:g} s; raise "
                "plugin_settings.voice.synthesis_timeout or try again."
            ) from None
        pcm = response.content
        if not pcm:
            raise VoiceEngineError("ElevenLabs returned no audio.")
        return wav_bytes(pcm[: len(pcm) - len(pcm) % 2], rate)

    async def clone_voice(self, name: str, sample: Path, content_type: str) -> str:
        data = await asyncio.to_thread(sample.read_bytes)
        response = await self._request(
            "POST",
            "/v1/voices/add",
            data={"name": name[:100], "description": "Cloned by personae from an owner's sample"},
            files={"files": (sample.name, data, content_type)},
            timeout=120.0,
        )
        voice_id = _json(response).get("voice_id")
        if not isinstance(voice_id, str) or not voice_id:
            raise VoiceEngineError("ElevenLabs accepted the sample but returned no voice id.")
        return voice_id

    async def delete_voice(self, voice: str) -> None:
        try:
            await self._request("DELETE", f"/v1/voices/{_segment(voice)}", timeout=30.0)
        except VoiceNotFound:
            pass  # already gone

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- HTTP ----------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.retries + 1),
            wait=wait_exponential(multiplier=self.settings.retry_backoff, max=8.0),
            retry=retry_if_exception(lambda exc: isinstance(exc, VoiceError) and exc.retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send(method, path, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise VoiceTimeout(f"ElevenLabs at {self.base_url} did not answer in time.") from None
        except httpx.TransportError as exc:
            raise VoiceUnavailable(
                f"ElevenLabs is not reachable at {self.base_url} ({exc.__class__.__name__}); "
                "check the network or plugin_settings.voice.elevenlabs.base_url."
            ) from None
        if response.status_code < 400:
            return response
        raise _error(response)


def _error(response: httpx.Response) -> VoiceError:
    status = response.status_code
    detail = _detail(response)
    if status == 401:
        return VoiceAuthError(
            f"ElevenLabs rejected the API key (401: {detail}); set a valid key in "
            "plugin_settings.voice.elevenlabs.api_key or ELEVENLABS_API_KEY."
        )
    if status == 429:
        return VoiceRateLimited(
            f"ElevenLabs is limiting requests (429: {detail}); try again in a minute."
        )
    if status >= 500:
        return VoiceEngineError(
            f"ElevenLabs had a server error ({status}: {detail}); try again later.",
            retryable=True,
        )
    if status == 404:
        return VoiceNotFound(f"ElevenLabs does not know this voice (404: {detail}).")
    return VoiceEngineError(f"ElevenLabs refused the request ({status}: {detail}).")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        return str(detail.get("message") or detail.get("status") or detail)[:200]
    return str(detail)[:200]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise VoiceEngineError("ElevenLabs answered with something that is not JSON.") from None
    if not isinstance(body, dict):
        raise VoiceEngineError("ElevenLabs answered with an unexpected JSON document.")
    return body


def _segment(voice: str) -> str:
    if not voice or len(voice) > 128:
        raise VoiceNotFound(f"{voice!r} is not an ElevenLabs voice id.")
    return quote(voice, safe="")
