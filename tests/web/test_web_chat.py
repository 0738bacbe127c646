"""Chatting over HTTP: JSON replies, Server-Sent Events read by a real SSE
client (httpx-sse), history paging and clearing, errors and rate limits."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer
from conftest import Caller, parse_sse
from httpx_sse import aconnect_sse

from personae.core.runtime import Runtime
from personae.core.types import Scope
from personae.testing.fake_ollama import FakeOllama


async def _sse(server: TestServer, caller: Caller, path: str, body: dict[str, Any]) -> list[Any]:
    headers = {"Authorization": f"Bearer {caller.token}"}
    async with httpx.AsyncClient(base_url=str(server.make_url("/")), headers=headers) as client:
        async with aconnect_sse(client, "POST", path, json=body) as source:
            assert source.response.status_code == 200
            assert source.response.headers["content-type"].startswith("text/event-stream")
            return [event async for event in source.aiter_sse()]


@pytest.mark.both_databases
async def test_a_json_chat_returns_the_reply_and_stores_both_messages(
    alice: Caller, fake_ollama: FakeOllama, runtime: Runtime
) -> None:
    fake_ollama.reply_with("Greetings, traveller.")

    reply = await alice.post("/api/personas/sage/chat", json={"message": "Hello Sage"})

    assert reply.status == 200
    assert reply.data["text"] == "Greetings, traveller."
    assert reply.data["conversation"] == "default"
    stored = await runtime.history.page(Scope("sage", alice.id), "web:default")
    assert [(m.id, m.content) for m in stored] == [
        (reply.data["user_message_id"], "Hello Sage"),
        (reply.data["reply_message_id"], "Greetings, traveller."),
    ]


@pytest.mark.both_databases
async def test_a_streamed_chat_sends_chunks_then_a_final_event_with_message_ids(
    server: TestServer, alice: Caller, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with(["Ash ", "and ", "embers."])

    events = await _sse(
        server, alice, "/api/personas/dagoth-ur/chat", {"message": "Hi", "stream": True}
    )

    assert [e.event for e in events] == ["chunk", "chunk", "chunk", "done"]
    assert "".join(e.json()["text"] for e in events[:3]) == "Ash and embers."
    done = events[-1].json()
    assert done["text"] == "Ash and embers."
    assert done["reply_message_id"] == done["user_message_id"] + 1


async def test_accept_event_stream_also_selects_sse(alice: Caller, fake_ollama: FakeOllama) -> None:
    fake_ollama.reply_with("ok then")

    reply = await alice.post(
        "/api/personas/sage/chat",
        json={"message": "Hi"},
        headers={"Accept": "text/event-stream"},
    )

    assert reply.content_type == "text/event-stream"
    assert [name for name, _ in parse_sse(reply.body)] == ["chunk", "chunk", "done"]


async def test_conversations_are_separate_and_history_pages_backwards(alice: Caller) -> None:
    for i in range(5):
        await alice.post("/api/personas/sage/chat", json={"message": f"m{i}", "conversation": "a"})
    await alice.post("/api/personas/sage/chat", json={"message": "other", "conversation": "b"})

    first = await alice.get("/api/personas/sage/conversations/a/messages?limit=4")
    older = await alice.get(
        f"/api/personas/sage/conversations/a/messages?limit=4&before={first.data['next_before']}"
    )
    listed = await alice.get("/api/personas/sage/conversations")

    assert [m["content"] for m in first.data["messages"]] == [
        "m3", "You said: m3", "m4", "You said: m4",
    ]  # fmt: skip
    assert [m["content"] for m in older.data["messages"]][-2:] == ["m2", "You said: m2"]
    assert {c["name"] for c in listed.data["conversations"]} == {"a", "b"}


async def test_clearing_a_conversation_deletes_its_messages_only(
    alice: Caller, runtime: Runtime
) -> None:
    await alice.post("/api/personas/sage/chat", json={"message": "keep", "conversation": "a"})
    await alice.post("/api/personas/sage/chat", json={"message": "drop", "conversation": "b"})

    cleared = await alice.call("DELETE", "/api/personas/sage/conversations/b")

    assert cleared.status == 204
    assert await runtime.history.page(Scope("sage", alice.id), "web:b") == []
    assert len(await runtime.history.page(Scope("sage", alice.id), "web:a")) == 2


async def test_an_llm_failure_before_the_first_chunk_is_a_problem_answer(
    alice: Caller, fake_ollama: FakeOllama, runtime: Runtime
) -> None:
    fake_ollama.fail_next(500, "model runner crashed", path="/api/chat")

    reply = await alice.post("/api/personas/sage/chat", json={"message": "Hi", "stream": True})

    assert reply.status == 502
    assert reply.content_type == "application/problem+json"
    assert reply.data["title"] == "Language model error"
    assert "model runner crashed" in reply.data["detail"]
    assert await runtime.history.page(Scope("sage", alice.id), "web:default") == []


async def test_an_llm_failure_mid_stream_ends_with_an_error_event_and_stores_nothing(
    server: TestServer, alice: Caller, fake_ollama: FakeOllama, runtime: Runtime
) -> None:
    fake_ollama.reply_with(["one ", "two ", "three ", "four"])
    fake_ollama.error_mid_stream_after = 2

    events = await _sse(server, alice, "/api/personas/sage/chat", {"message": "Hi", "stream": True})

    assert [e.event for e in events] == ["chunk", "chunk", "error"]
    assert events[-1].json()["status"] == 502
    assert await runtime.history.page(Scope("sage", alice.id), "web:default") == []


async def test_an_unreachable_ollama_is_503(alice: Caller, fake_ollama: FakeOllama) -> None:
    await fake_ollama.stop()

    reply = await alice.post("/api/personas/sage/chat", json={"message": "Hi"})

    assert reply.status == 503 and reply.data["title"] == "Language model unavailable"


@pytest.mark.parametrize("web_overrides", [{"chat_rate_per_minute": 2}])
async def test_chat_is_rate_limited_per_user(alice: Caller, bob: Caller) -> None:
    first = [await alice.post("/api/personas/sage/chat", json={"message": "x"}) for _ in range(2)]
    limited = await alice.post("/api/personas/sage/chat", json={"message": "x"})
    other_user = await bob.post("/api/personas/sage/chat", json={"message": "x"})

    assert [r.status for r in first] == [200, 200]
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.data["title"] == "Too many requests"
    assert other_user.status == 200


async def test_bad_chat_requests_are_problem_documents(alice: Caller) -> None:
    chat = "/api/personas/sage/chat"
    json_type = {"Content-Type": "application/json"}
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = [
        await alice.post(chat, data=b"{not json", headers=json_type),
        await alice.post(chat, json={"message": ""}),
        await alice.post(chat, json={"message": "x", "conversation": "../etc"}),
        await alice.post(chat, json=["a list"]),
        await alice.post(chat, data=b"message=hi", headers=form_type),
        await alice.post("/api/personas/nobody/chat", json={"message": "x"}),
        await alice.get("/api/personas/sage/conversations/a/messages?limit=abc"),
        await alice.get("/api/personas/sage/conversations/bad.name/messages"),
    ]

    assert [r.status for r in cases] == [400, 422, 422, 422, 415, 404, 422, 422]
    for response in cases:
        assert response.content_type == "application/problem+json"
        assert response.data["title"] and response.data["status"] == response.status
        assert b"Traceback" not in response.body


@pytest.mark.parametrize("web_overrides", [{"max_body_bytes": 2048, "max_message_chars": 100}])
async def test_oversized_bodies_and_messages_are_413(alice: Caller) -> None:
    body = await alice.post(
        "/api/personas/sage/chat",
        data=json.dumps({"message": "x" * 5000}).encode(),
        headers={"Content-Type": "application/json"},
    )
    message = await alice.post("/api/personas/sage/chat", json={"message": "y" * 101})

    assert body.status == 413 and body.data["title"] == "Request body too large"
    assert message.status == 413


async def test_a_persona_too_large_for_its_window_gets_a_413_that_says_what_to_change(
    alice: Caller, fake_ollama: FakeOllama, runtime: Runtime
) -> None:
    card = (await runtime.personas.get("sage")).model_copy(
        update={"id": "vast", "description": "A very long story. " * 600}
    )
    await runtime.personas.save(card.with_settings(options={"num_ctx": 1024}), owner_id=alice.id)

    reply = await alice.post("/api/personas/vast/chat", json={"message": "Hello"})

    assert reply.status == 413
    assert "does not fit its model's context window" in reply.data["detail"]
    assert "num_ctx" in reply.data["detail"]
    assert await runtime.history.page(Scope("vast", alice.id), "web:default") == []
