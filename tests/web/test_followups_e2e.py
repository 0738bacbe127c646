"""Curiosity follow-ups reaching a web user, end to end: a chat over HTTP with a
curious persona, the user goes quiet (a ManualClock moves), the curiosity
plugin's tick runs, and the question arrives as a ``follow_up`` event on the
user's open ``/api/events`` stream, read by a real SSE client, or waits in
``GET /api/followups`` until the UI acknowledges it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp.test_utils import TestServer
from conftest import Caller
from httpx_sse import aconnect_sse

from personae.core.clock import ManualClock
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.core.types import Scope
from personae.plugins import curiosity
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama
from tests.conftest import reply_prompts

QUESTION = "How did the chess tournament go in the end?"


def respond(request: FakeChatRequest) -> str:
    """Chat replies; the curiosity planner asks about the tournament; the profile
    plugin learns nothing."""
    if isinstance(request.format, dict):
        if request.format.get("title") == "personae_curiosity_question":
            return json.dumps({"ask": True, "topic": "the chess tournament", "question": QUESTION})
        return json.dumps({"items": []})
    return "Good luck on Sunday!"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    plugins = {"curiosity": {"tick_seconds": 0, "min_exchanges": 1, "idle_seconds": 600}}
    return settings.model_copy(update={"plugin_settings": plugins})


@pytest.fixture
async def runtime(settings: Settings, clock: ManualClock) -> AsyncIterator[Runtime]:
    rt = Runtime(settings, load_entry_points=False, clock=clock)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def _talk(alice: Caller, fake: FakeOllama, runtime: Runtime) -> None:
    """alice tells pip (curiosity "high") about her tournament, over HTTP."""
    fake.reply_with(respond)
    said = await alice.post(
        "/api/personas/pip/chat", json={"message": "I have a chess tournament on Sunday"}
    )
    assert said.status == 200, said.data
    await runtime.background.drain()  # the follow-up is planned after the reply


async def test_a_follow_up_arrives_on_the_open_event_stream_once_the_user_is_idle(
    server: TestServer,
    alice: Caller,
    fake_ollama: FakeOllama,
    runtime: Runtime,
    clock: ManualClock,
) -> None:
    await _talk(alice, fake_ollama, runtime)
    headers = {"Authorization": f"Bearer {alice.token}"}

    async with (
        httpx.AsyncClient(base_url=str(server.make_url("/")), headers=headers) as client,
        aconnect_sse(client, "GET", "/api/events") as source,
    ):
        events = source.aiter_sse()
        assert (await anext(events)).event == "ready"
        await curiosity.tick(runtime)
        early = await runtime.followups.list(Scope("pip", alice.id), status="pending")
        clock.advance(seconds=600)
        await curiosity.tick(runtime)
        event = await asyncio.wait_for(anext(events), 5)

    assert len(early) == 1  # not before the user has been idle long enough
    assert event.event == "follow_up"
    data = event.json()
    assert {k: data[k] for k in ("kind", "persona_id", "conversation", "text")} == {
        "kind": "follow_up",
        "persona_id": "pip",
        "conversation": "default",
        "text": QUESTION,
    }
    assert (await alice.get("/api/followups")).data == {"follow_ups": []}  # delivered
    [sent] = await runtime.followups.list(Scope("pip", alice.id), status="sent")
    assert sent.id == data["id"] and sent.question == QUESTION


async def test_after_a_follow_up_reached_the_stream_the_next_reply_knows_it_was_asked(
    server: TestServer,
    alice: Caller,
    fake_ollama: FakeOllama,
    runtime: Runtime,
    clock: ManualClock,
) -> None:
    await _talk(alice, fake_ollama, runtime)
    headers = {"Authorization": f"Bearer {alice.token}"}
    async with (
        httpx.AsyncClient(base_url=str(server.make_url("/")), headers=headers) as client,
        aconnect_sse(client, "GET", "/api/events") as source,
    ):
        events = source.aiter_sse()
        await anext(events)
        clock.advance(seconds=600)
        delivered = await curiosity.tick(runtime)
        await asyncio.wait_for(anext(events), 5)

    await alice.post("/api/personas/pip/chat", json={"message": "I am back"})

    prompt = json.dumps(reply_prompts(fake_ollama)[-1].json["messages"])
    assert delivered == 1
    assert f"you asked them: {QUESTION}" in prompt


async def test_without_an_open_stream_the_follow_up_waits_to_be_listed_and_acked(
    alice: Caller, fake_ollama: FakeOllama, runtime: Runtime, clock: ManualClock
) -> None:
    await _talk(alice, fake_ollama, runtime)
    clock.advance(seconds=600)

    delivered = await curiosity.tick(runtime)
    listed = await alice.get("/api/followups")
    [follow_up] = listed.data["follow_ups"]
    ack = await alice.post(f"/api/followups/{follow_up['id']}/ack")
    after = await alice.get("/api/followups")
    clock.advance(seconds=60)

    assert delivered == 0
    assert follow_up["persona_id"] == "pip" and follow_up["question"] == QUESTION
    assert follow_up["conversation"] == "default" and follow_up["topic"] == "the chess tournament"
    assert ack.status == 204 and after.data == {"follow_ups": []}
    assert await curiosity.tick(runtime) == 0  # acknowledged: never sent again
