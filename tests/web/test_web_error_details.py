"""Errors that name internal things (the Ollama address, the model runner's own
message) reach users as a plain message; administrators get the details."""

from __future__ import annotations

from conftest import Caller

from personae.testing.fake_ollama import FakeOllama


def _internal_words(text: str) -> list[str]:
    return [w for w in ("http://", "127.0.0.1", "Error", "Exception", "crashed") if w in text]


async def test_an_unreachable_ollama_is_a_plain_message_for_users(
    alice: Caller, bob: Caller, fake_ollama: FakeOllama
) -> None:
    address = fake_ollama.url.removeprefix("http://")
    await fake_ollama.stop()

    user = await bob.post("/api/personas/sage/chat", json={"message": "Hi"})
    openai = await bob.post(
        "/v1/chat/completions",
        json={"model": "sage", "messages": [{"role": "user", "content": "x"}]},
    )
    admin = await alice.post("/api/personas/sage/chat", json={"message": "Hi"})

    assert user.status == openai.status == admin.status == 503
    assert user.data["title"] == "Language model unavailable"
    assert _internal_words(user.data["detail"]) == []
    assert _internal_words(openai.data["error"]["message"]) == []
    assert _internal_words(openai.data["detail"]) == []
    assert address in admin.data["detail"]


async def test_a_model_runner_failure_shows_its_message_to_administrators_only(
    alice: Caller, bob: Caller, fake_ollama: FakeOllama
) -> None:
    fake_ollama.fail_next(500, "model runner crashed", path="/api/chat")
    user = await bob.post("/api/personas/sage/chat", json={"message": "Hi"})
    fake_ollama.fail_next(500, "model runner crashed", path="/api/chat")
    admin = await alice.post("/api/personas/sage/chat", json={"message": "Hi"})

    assert user.status == admin.status == 502
    assert _internal_words(user.data["detail"]) == []
    assert "model runner crashed" in admin.data["detail"]
