"""The OpenAI-compatible endpoints, driven by the official openai package."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from aiohttp.test_utils import TestServer
from conftest import Caller, MakeCaller

from personae.core.runtime import Runtime
from personae.core.types import Scope
from personae.testing.fake_ollama import FakeOllama


@pytest.fixture
async def client(server: TestServer, alice: Caller) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=str(server.make_url("/v1")), api_key=alice.token, max_retries=0
    ) as client:
        yield client


@pytest.mark.both_databases
async def test_models_lists_the_personas_the_caller_may_use(
    client: openai.AsyncOpenAI, alice: Caller, make_caller: MakeCaller
) -> None:
    bob = await make_caller("bob")
    await bob.post("/api/personas", json={"name": "Bob Only"})
    await alice.post("/api/personas", json={"name": "Alice Only"})

    models = [m.id async for m in client.models.list()]

    assert {"sage", "pip", "dagoth-ur", "scav", "alice-only"} <= set(models)
    assert "bob-only" not in models
    assert (await client.models.retrieve("sage")).id == "sage"


@pytest.mark.both_databases
async def test_a_chat_completion_talks_to_the_persona(
    client: openai.AsyncOpenAI, fake_ollama: FakeOllama, runtime: Runtime, alice: Caller
) -> None:
    fake_ollama.reply_with("Twenty leagues down.")

    completion = await client.chat.completions.create(
        model="sage",
        messages=[
            {"role": "system", "content": "ignored: the persona decides"},
            {"role": "user", "content": "Where are we?"},
        ],
    )

    assert completion.choices[0].message.content == "Twenty leagues down."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "sage"
    stored = await runtime.history.page(Scope("sage", alice.id), "web:openai")
    assert [m.content for m in stored] == ["Where are we?", "Twenty leagues down."]


async def test_a_streamed_chat_completion_arrives_in_chunks(
    client: openai.AsyncOpenAI, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with(["Ash ", "and ", "embers."])

    stream = await client.chat.completions.create(
        model="dagoth-ur", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Ash and embers."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_the_personas_memory_of_the_caller_applies(
    client: openai.AsyncOpenAI, fake_ollama: FakeOllama, runtime: Runtime, alice: Caller
) -> None:
    await runtime.memory.add(Scope("sage", alice.id), "alice plays the cello")

    await client.chat.completions.create(
        model="sage", messages=[{"role": "user", "content": "What instrument do I play, cello?"}]
    )

    prompt = fake_ollama.requests_to("/api/chat")[-1].json["messages"]
    assert "alice plays the cello" in prompt[-2]["content"]  # the turn's system message


async def test_errors_reach_openai_clients_as_exceptions(
    client: openai.AsyncOpenAI, server: TestServer
) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(
            model="nobody", messages=[{"role": "user", "content": "Hi"}]
        )
    async with openai.AsyncOpenAI(
        base_url=str(server.make_url("/v1")), api_key="pk_wrong", max_retries=0
    ) as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.models.list()

    assert "nobody" in str(missing.value)


async def test_a_chat_completion_reports_the_token_counts_the_model_reported(
    client: openai.AsyncOpenAI, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with("Twenty leagues down, under the grey sea.")

    completion = await client.chat.completions.create(
        model="sage", messages=[{"role": "user", "content": "Where are we?"}]
    )

    (sent,) = [r for r in fake_ollama.requests_to("/api/chat") if not r.json.get("format")]
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == sent.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_a_streamed_completion_reports_usage_when_asked(
    client: openai.AsyncOpenAI, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with("Twenty leagues down.")

    stream = await client.chat.completions.create(
        model="sage",
        messages=[{"role": "user", "content": "Where are we?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usages = [chunk.usage async for chunk in stream if chunk.usage is not None]

    assert len(usages) == 1 and usages[0].prompt_tokens > 0 and usages[0].completion_tokens > 0
