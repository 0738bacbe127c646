"""Voice over HTTP with real espeak-ng and ffmpeg: the voice list, previews,
the audio of a reply, voice samples, speech while a reply streams, and who may
reach what."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp.test_utils import TestServer
from conftest import Caller, MakeCaller, Response
from httpx_sse import aconnect_sse

from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.testing.fake_ollama import FakeOllama

REPLY = "Ash and embers cover the mountain. The old god sleeps beneath it."
PROBLEM = "application/problem+json"
SAMPLE_TEXT = (
    "This is my voice. I am reading a few sentences so that a voice can be made from "
    "them. The weather is mild today and the river is calm."
)


@pytest.fixture
def voice_settings() -> dict[str, Any]:
    """``[plugin_settings.voice]`` for a test (parametrize to change)."""
    return {}


@pytest.fixture
def voice_disabled() -> bool:
    return False


@pytest.fixture
def settings(settings: Settings, voice_settings: dict[str, Any], voice_disabled: bool) -> Settings:
    disabled = [*settings.disabled_plugins, *(["voice"] if voice_disabled else [])]
    return settings.model_copy(
        update={"plugin_settings": {"voice": voice_settings}, "disabled_plugins": disabled}
    )


def _espeak(path: Path, text: str) -> Path:
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """About eight seconds of speech as WAV, made with espeak-ng."""
    return _espeak(tmp_path_factory.mktemp("voice") / "speech.wav", SAMPLE_TEXT).read_bytes()


def _form(data: bytes, filename: str, field: str = "file") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(field, data, filename=filename, content_type="application/octet-stream")
    return form


async def _reply(caller: Caller, fake: FakeOllama, persona: str = "sage") -> int:
    fake.reply_with(REPLY)
    chat = await caller.post(f"/api/personas/{persona}/chat", json={"message": "Tell me more"})
    assert chat.status == 200, chat.data
    return int(chat.data["reply_message_id"])


def _is_problem(response: Response, status: int) -> bool:
    return response.status == status and response.content_type == PROBLEM


# -- voices and previews --------------------------------------------------------------------


async def test_the_voice_list_names_each_voice_and_the_default(alice: Caller) -> None:
    listed = await alice.get("/api/voices")

    assert listed.status == 200
    assert listed.data["default"] == "espeak:en-us"
    voices = {v["id"]: v for v in listed.data["voices"]}
    assert voices["espeak:en-us"]["engine"] == "espeak"
    assert voices["espeak:en-us"]["language"] == "en-us"
    assert voices["espeak:en-us"]["name"]
    assert all(set(v) == {"id", "engine", "name", "language"} for v in voices.values())


@pytest.mark.parametrize("voice_disabled", [True])
async def test_voice_endpoints_answer_404_when_the_voice_plugin_is_disabled(
    alice: Caller, fake_ollama: FakeOllama
) -> None:
    message_id = await _reply(alice, fake_ollama)

    listed = await alice.get("/api/voices")
    preview = await alice.get("/api/voices/espeak:en-us/preview")
    audio = await alice.get(f"/api/personas/sage/messages/{message_id}/audio")

    for response in (listed, preview, audio):
        assert _is_problem(response, 404)
        assert response.data["title"] == "Voice is turned off"


async def test_a_preview_comes_as_ogg_opus_or_wav_as_accept_asks(alice: Caller) -> None:
    path = "/api/voices/espeak:en-us/preview"

    ogg = await alice.get(path, headers={"Accept": "audio/ogg"})
    wav = await alice.get(path, params={"text": "Good evening."}, headers={"Accept": "audio/wav"})
    html = await alice.get(path, headers={"Accept": "text/html"})

    assert ogg.status == 200 and ogg.headers["Content-Type"].startswith("audio/ogg")
    assert ogg.body[:4] == b"OggS" and b"OpusHead" in ogg.body[:200]
    assert wav.status == 200 and wav.headers["Content-Type"] == "audio/wav"
    assert wav.body[:4] == b"RIFF" and wav.body[8:12] == b"WAVE"
    assert _is_problem(html, 406)
    assert "audio/ogg" in html.data["detail"]


async def test_preview_text_is_limited_and_unknown_voices_are_404(
    alice: Caller, anonymous: Caller
) -> None:
    long = await alice.get("/api/voices/espeak:en-us/preview", params={"text": "a" * 201})
    unknown = await alice.get("/api/voices/espeak:klingon/preview")
    no_engine = await alice.get("/api/voices/nope:x/preview")
    someone_elses_sample = await alice.get("/api/voices/sample:1/preview")
    anonymous_preview = await anonymous.get("/api/voices/espeak:en-us/preview")

    assert _is_problem(long, 422) and long.data["title"] == "Preview text too long"
    assert _is_problem(unknown, 404) and _is_problem(no_engine, 404)
    assert _is_problem(someone_elses_sample, 404)
    assert _is_problem(anonymous_preview, 401)


@pytest.mark.parametrize("web_overrides", [{"chat_rate_per_minute": 2}])
async def test_previews_are_rate_limited_per_user(alice: Caller, bob: Caller) -> None:
    path = "/api/voices/espeak:en-us/preview"

    statuses = [(await alice.get(path)).status for _ in range(2)]
    limited = await alice.get(path)
    other_user = await bob.get(path)

    assert statuses == [200, 200]
    assert _is_problem(limited, 429) and int(limited.headers["Retry-After"]) >= 1
    assert other_user.status == 200


# -- the audio of a reply -------------------------------------------------------------------


async def test_a_reply_is_spoken_in_the_personas_voice_and_cached(
    alice: Caller, fake_ollama: FakeOllama, settings: Settings
) -> None:
    message_id = await _reply(alice, fake_ollama)
    path = f"/api/personas/sage/messages/{message_id}/audio"

    ogg = await alice.get(path, headers={"Accept": "audio/ogg"})
    wav = await alice.get(path, headers={"Accept": "audio/wav"})

    assert ogg.status == 200 and ogg.body[:4] == b"OggS"
    assert wav.status == 200 and wav.body[:4] == b"RIFF"
    cached = settings.data_dir / "voice-cache" / str(alice.id) / "sage" / f"{message_id}.wav"
    assert cached.read_bytes() == wav.body


async def test_only_the_callers_own_replies_can_be_heard(
    alice: Caller, bob: Caller, anonymous: Caller, fake_ollama: FakeOllama
) -> None:
    message_id = await _reply(alice, fake_ollama)
    made = await alice.post("/api/personas", json={"name": "Wren", "id": "wren"})
    assert made.status == 201
    private_reply = await _reply(alice, fake_ollama, "wren")

    by_bob = await bob.get(f"/api/personas/sage/messages/{message_id}/audio")
    missing = await bob.get(f"/api/personas/sage/messages/{message_id + 1000}/audio")
    by_anonymous = await anonymous.get(f"/api/personas/sage/messages/{message_id}/audio")
    own_message = await alice.get(f"/api/personas/sage/messages/{message_id - 1}/audio")
    wrong_persona = await alice.get(f"/api/personas/pip/messages/{message_id}/audio")
    private = await bob.get(f"/api/personas/wren/messages/{private_reply}/audio")

    assert _is_problem(by_bob, 404) and by_bob.data["title"] == missing.data["title"]
    assert _is_problem(by_anonymous, 401)
    assert _is_problem(own_message, 404)  # the user's message, not a reply
    assert _is_problem(wrong_persona, 404)
    assert _is_problem(private, 404) and private.data["title"] == "Persona not found"
    for response in (by_bob, by_anonymous, private):
        assert b"Ash and embers" not in response.body


@pytest.mark.parametrize(
    "voice_settings", [{"count_local_engines": True, "daily_quota_seconds": 1}]
)
async def test_over_the_daily_quota_audio_is_a_429_and_cached_audio_still_plays(
    alice: Caller, fake_ollama: FakeOllama
) -> None:
    first = await _reply(alice, fake_ollama)
    second = await _reply(alice, fake_ollama)

    spoken = await alice.get(f"/api/personas/sage/messages/{first}/audio")
    refused = await alice.get(f"/api/personas/sage/messages/{second}/audio")
    preview = await alice.get("/api/voices/espeak:en-us/preview")
    again = await alice.get(f"/api/personas/sage/messages/{first}/audio")

    assert spoken.status == 200
    assert _is_problem(refused, 429)
    assert refused.data["title"] == "Daily speech quota used up"
    assert "seconds of speech" in refused.data["detail"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert _is_problem(preview, 429)
    assert again.status == 200 and again.body == spoken.body


# -- voice samples ---------------------------------------------------------------------------


async def test_an_owner_uploads_hears_and_deletes_a_sample(
    alice: Caller, speech_wav: bytes
) -> None:
    await alice.post("/api/personas", json={"name": "Wren", "id": "wren"})
    path = "/api/personas/wren/voice-sample"

    # A WAV called .mp3 is taken for what its content is.
    put = await alice.call("PUT", path, data=_form(speech_wav, "voice.mp3"))
    heard = await alice.get(path)
    replaced = await alice.call("PUT", path, data=_form(speech_wav, "again.wav"))
    heard_again = await alice.get(path)
    deleted = await alice.call("DELETE", path)
    gone = await alice.get(path)

    assert put.status == 200, put.data
    assert set(put.data) == {"id", "duration", "content_type"}
    assert put.data["content_type"] == "audio/wav"
    assert 5 < put.data["duration"] < 15
    assert heard.status == 200 and heard.headers["Content-Type"] == "audio/wav"
    assert heard.body == speech_wav
    assert replaced.status == 200 and replaced.data["id"] != put.data["id"]
    assert heard_again.body == speech_wav
    assert deleted.status == 204
    assert _is_problem(gone, 404)


async def test_only_the_owner_or_an_admin_gives_a_persona_a_voice(
    alice: Caller, bob: Caller, anonymous: Caller, speech_wav: bytes
) -> None:
    shared = await alice.post("/api/personas", json={"name": "Open", "id": "open", "shared": True})
    await alice.post("/api/personas", json={"name": "Hidden", "id": "hidden"})
    assert shared.status == 201
    assert (
        await alice.call("PUT", "/api/personas/open/voice-sample", data=_form(speech_wav, "a.wav"))
    ).status == 200

    bob_shared = await bob.call(
        "PUT", "/api/personas/open/voice-sample", data=_form(speech_wav, "b.wav")
    )
    bob_hidden = await bob.call(
        "PUT", "/api/personas/hidden/voice-sample", data=_form(speech_wav, "b.wav")
    )
    bob_system = await bob.call(
        "PUT", "/api/personas/sage/voice-sample", data=_form(speech_wav, "b.wav")
    )
    admin_system = await alice.call(
        "PUT", "/api/personas/sage/voice-sample", data=_form(speech_wav, "a.wav")
    )
    bob_reads = await bob.get("/api/personas/open/voice-sample")
    bob_deletes = await bob.call("DELETE", "/api/personas/open/voice-sample")
    anonymous_reads = await anonymous.get("/api/personas/open/voice-sample")

    assert _is_problem(bob_shared, 403)
    assert _is_problem(bob_hidden, 404)
    assert _is_problem(bob_system, 403)
    assert admin_system.status == 200
    assert _is_problem(bob_reads, 404) and _is_problem(bob_deletes, 404)
    assert _is_problem(anonymous_reads, 401)
    for response in (bob_reads, bob_deletes, anonymous_reads):
        assert speech_wav[100:200] not in response.body
    assert (await alice.get("/api/personas/open/voice-sample")).body == speech_wav


@pytest.mark.parametrize(
    "voice_settings",
    [{"upload_max_bytes": 200_000, "sample_min_seconds": 1, "sample_max_seconds": 5}],
)
async def test_uploads_are_checked_by_content_size_and_length(
    alice: Caller, speech_wav: bytes, tmp_path: Path
) -> None:
    await alice.post("/api/personas", json={"name": "Wren", "id": "wren"})
    path = "/api/personas/wren/voice-sample"
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    short_enough = _espeak(tmp_path / "hello.wav", "Hello there, this is me.").read_bytes()
    assert len(speech_wav) > 200_000 > len(short_enough)

    picture = await alice.call("PUT", path, data=_form(png, "voice.wav"))
    oversized = await alice.call("PUT", path, data=_form(speech_wav + b"\x00" * 1000, "v.wav"))
    raw_oversized = await alice.call("PUT", path, data=speech_wav)
    too_long = await alice.call("PUT", path, data=_form(_long_wav(tmp_path), "l.wav"))
    empty = await alice.call("PUT", path, data=_form(b"", "empty.wav"))
    fine = await alice.call("PUT", path, data=_form(short_enough, "fine.wav"))

    assert _is_problem(picture, 415) and "PNG" in picture.data["detail"]
    assert _is_problem(oversized, 413) and _is_problem(raw_oversized, 413)
    assert _is_problem(too_long, 422) and "at most 5 s" in too_long.data["detail"]
    assert _is_problem(empty, 400)
    assert fine.status == 200, fine.data


def _long_wav(folder: Path) -> bytes:
    """Six seconds of silence in a small WAV (8 kHz mono): long, but under the size limit."""
    target = folder / "long.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
         "-t", "6", "-c:a", "pcm_u8", str(target)],
        check=True,
        timeout=60,
    )  # fmt: skip
    return target.read_bytes()


async def test_a_browser_needs_the_csrf_token_to_upload(
    make_caller: MakeCaller, speech_wav: bytes
) -> None:
    admin = await make_caller("admin", via="session")
    csrf, admin.csrf = admin.csrf, None

    refused = await admin.call(
        "PUT", "/api/personas/sage/voice-sample", data=_form(speech_wav, "a.wav")
    )
    accepted = await admin.call(
        "PUT",
        "/api/personas/sage/voice-sample",
        data=_form(speech_wav, "a.wav"),
        headers={"X-CSRF-Token": csrf or ""},
    )

    assert _is_problem(refused, 403) and accepted.status == 200


# -- speech while a reply streams ----------------------------------------------------------


async def _speak(server: TestServer, caller: Caller, query: str) -> list[Any]:
    headers = {"Authorization": f"Bearer {caller.token}"}
    body = {"message": "Tell me", "stream": True}
    async with httpx.AsyncClient(base_url=str(server.make_url("/")), headers=headers) as client:
        async with aconnect_sse(
            client, "POST", f"/api/personas/sage/chat?{query}", json=body
        ) as source:
            assert source.response.status_code == 200
            return [event async for event in source.aiter_sse()]


async def test_a_streamed_reply_can_come_with_audio_events_per_sentence(
    server: TestServer, alice: Caller, fake_ollama: FakeOllama, settings: Settings
) -> None:
    fake_ollama.reply_with(["Ash and embers ", "cover the mountain. ", "The old god ", "sleeps."])

    events = await _speak(server, alice, "speak=true")

    names = [e.event for e in events]
    assert names.count("chunk") == 4 and names[-1] == "audio_end"
    assert names.index("done") < names.index("audio_end")
    audio = [e.json() for e in events if e.event == "audio"]
    assert [a["text"] for a in audio] == [
        "Ash and embers cover the mountain.",
        "The old god sleeps.",
    ]
    assert [a["index"] for a in audio] == [0, 1]
    assert all(base64.b64decode(a["data"])[:4] == b"OggS" for a in audio)
    assert all(a["content_type"].startswith("audio/ogg") and a["duration"] > 0 for a in audio)
    done, end = events[names.index("done")].json(), events[-1].json()
    assert end == {"complete": True, "note": None, "reply_message_id": done["reply_message_id"]}
    cached = settings.data_dir / "voice-cache" / str(alice.id) / "sage"
    assert (cached / f"{done['reply_message_id']}.wav").is_file()


@pytest.mark.parametrize(
    "voice_settings", [{"count_local_engines": True, "daily_quota_seconds": 0.5}]
)
async def test_over_the_quota_the_streamed_text_is_complete_and_the_note_says_why(
    server: TestServer, alice: Caller, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with(["First sentence here. ", "Second one. ", "Third one."])

    events = await _speak(server, alice, "speak=true&audio_format=wav")

    names = [e.event for e in events]
    done = events[names.index("done")].json()
    assert done["text"] == "First sentence here. Second one. Third one."
    audio = [e.json() for e in events if e.event == "audio"]
    assert len(audio) == 1 and base64.b64decode(audio[0]["data"])[:4] == b"RIFF"
    end = events[-1].json()
    assert end["complete"] is False and "seconds of speech" in end["note"]


@pytest.mark.parametrize("voice_disabled", [True])
async def test_asking_for_speech_without_the_voice_plugin_still_streams_the_text(
    server: TestServer, alice: Caller, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with("Only words today.")

    events = await _speak(server, alice, "speak=true")

    assert [e.event for e in events] == ["chunk", "chunk", "chunk", "done", "audio_end"]
    assert events[-1].json()["note"].startswith("Voice is turned off")


async def test_the_openapi_document_describes_the_voice_endpoints(
    alice: Caller, runtime: Runtime
) -> None:
    document = (await alice.get("/openapi.json")).data

    paths = document["paths"]
    assert set(paths["/api/personas/{persona_id}/voice-sample"]) == {"get", "put", "delete"}
    assert (
        "429" in paths["/api/personas/{persona_id}/messages/{message_id}/audio"]["get"]["responses"]
    )
    assert "/api/voices" in paths and "/api/voices/{voice_id}/preview" in paths
    chat = paths["/api/personas/{persona_id}/chat"]["post"]
    assert {"speak", "audio_format"} <= {p["name"] for p in chat["parameters"]}
