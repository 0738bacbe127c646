"""The fake Ollama behaves like Ollama with respect to the context window, the KV
prefix cache and model loading, seen through the real ``ollama`` client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import ollama
import pytest

from personae.testing.fake_ollama import (
    DEFAULT_NUM_CTX,
    FakeChatRequest,
    FakeOllama,
    chat_tokens,
    count_tokens,
    tokenize,
)

PROSE = (
    "The lighthouse keeper climbed the spiral stairs every evening, counting the "
    "steps out loud, because the sea had taught him that small habits keep a mind "
    "steady when the weather turns. "
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as server:
        yield server


@pytest.fixture
def client(fake: FakeOllama) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=fake.url)


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def history(turns: int, words: int = 60) -> list[dict[str, str]]:
    """Alternating user/assistant messages, each tagged with its index."""
    return [
        msg("user" if i % 2 == 0 else "assistant", f"message {i}: " + "word " * words)
        for i in range(turns)
    ]


async def chat(client: ollama.AsyncClient, messages: list[dict[str, str]], **options: Any) -> Any:
    return await client.chat(model="llama3.2", messages=messages, options=options or None)


def test_tokens_join_back_to_the_text_and_cost_like_a_bpe_tokenizer() -> None:
    text = PROSE * 3 + "Ça coûte 12 345 €, d'accord?\n\n  Done."
    assert "".join(tokenize(text)) == text
    assert 3.5 <= len(PROSE) / count_tokens(PROSE) <= 5.0
    assert count_tokens("Привет, как дела?") > len("Привет, как дела?") / 3
    assert count_tokens("你好世界") == 4


def test_the_chat_template_marks_each_message() -> None:
    tokens = chat_tokens([msg("system", "Be kind."), msg("user", "Hi")])
    assert tokens[:4] == ["<|begin_of_text|>", "<|start_header_id|>", "system", "<|end_header_id|>"]
    assert tokens.count("<|eot_id|>") == 2
    assert tokens[-4:] == ["assist", "ant", "<|end_header_id|>", "\n\n"]


async def test_prompt_eval_count_is_the_rendered_prompt(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    messages = [msg("system", "You are terse."), msg("user", PROSE)]
    response = await chat(client, messages)
    assert response.prompt_eval_count == len(chat_tokens(messages))
    assert fake.requests_to("/api/chat")[-1].prompt_tokens == response.prompt_eval_count
    assert fake.requests_to("/api/chat")[-1].truncated is False


async def test_an_overflowing_chat_drops_the_oldest_non_system_messages(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    messages = [msg("system", "You are a lighthouse keeper."), *history(12)]
    assert len(chat_tokens(messages)) > 540
    response = await chat(client, messages, num_ctx=540)
    record = fake.requests_to("/api/chat")[-1]
    assert record.truncated
    assert record.seen_messages[0] == messages[0]
    assert record.seen_messages[-1] == messages[-1]
    assert record.seen_messages[1:] == messages[-(len(record.seen_messages) - 1) :]
    assert len(chat_tokens(record.seen_messages)) <= 540
    assert len(chat_tokens([messages[0], *messages[-len(record.seen_messages) :]])) > 540
    assert response.prompt_eval_count == len(chat_tokens(record.seen_messages))
    assert fake.overflowing_requests() == [record]


async def test_system_messages_among_the_dropped_ones_are_kept(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    note = msg("system", "Remember: the user is called Ana.")
    messages = [msg("system", "Card."), *history(4), note, *history(8)]
    await chat(client, messages, num_ctx=400)
    seen = fake.requests_to("/api/chat")[-1].seen_messages
    assert seen[:2] == [messages[0], note]
    assert seen[-1] == messages[-1]
    assert len(seen) < len(messages) - 1


async def test_a_prompt_fitting_only_without_truncation_is_sent_whole(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    messages = history(6)
    size = len(chat_tokens(messages))
    await chat(client, messages, num_ctx=size + 1)
    assert fake.requests_to("/api/chat")[-1].truncated is False
    assert fake.overflowing_requests() == []


async def test_a_prompt_of_exactly_num_ctx_tokens_is_cut_by_the_runner(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    """Ollama's quirk: chatPrompt accepts num_ctx tokens, its runner only num_ctx - 1."""
    messages = history(6)
    size = len(chat_tokens(messages))
    response = await chat(client, messages, num_ctx=size)
    record = fake.requests_to("/api/chat")[-1]
    assert record.seen_messages == messages
    assert record.truncated
    assert response.prompt_eval_count == size - (size - 5) // 2


async def test_when_system_and_last_message_overflow_the_runner_keeps_num_keep_tokens(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    card = msg("system", "CARD-START " + PROSE * 40)
    messages = [card, msg("user", "old " * 50), msg("user", "What is your name, keeper?")]
    response = await chat(client, messages, num_ctx=512)
    record = fake.requests_to("/api/chat")[-1]
    full = chat_tokens([card, messages[-1]])
    assert record.seen_messages == [card, messages[-1]]
    # num_keep 4 plus the BOS token stay; then about half the window is freed
    assert response.prompt_eval_count == 512 - (512 - 5) // 2
    assert record.evaluation is not None
    assert list(record.evaluation.tokens[:5]) == full[:5]
    assert list(record.evaluation.tokens[5:]) == full[-(response.prompt_eval_count - 5) :]
    assert "CARD-START" not in record.evaluation.text
    assert " keeper" in record.evaluation.tokens


async def test_num_keep_keeps_more_of_the_start(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    card = msg("system", "CARD-START " + PROSE * 40)
    await chat(client, [card, msg("user", "Hello?")], num_ctx=512, num_keep=40)
    record = fake.requests_to("/api/chat")[-1]
    assert record.evaluation is not None
    assert list(record.evaluation.tokens[:41]) == chat_tokens([card])[:41]
    assert record.prompt_tokens == 512 - (512 - 41) // 2


async def test_truncate_false_refuses_an_overflowing_prompt(fake: FakeOllama) -> None:
    messages = [msg("system", PROSE * 40), msg("user", "Hi")]
    body = {"model": "llama3.2", "messages": messages, "options": {"num_ctx": 256}}
    async with httpx.AsyncClient(base_url=fake.url) as http:  # ollama 0.6 cannot send it
        answer = await http.post("/api/chat", json=body | {"truncate": False, "stream": False})
    assert answer.status_code == 400
    assert answer.json() == {"error": "the input length exceeds the context length"}


async def test_a_repeated_prefix_is_served_from_the_cache(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    fake.reply_with("The lamp is lit.")
    first = [msg("system", PROSE * 4), msg("user", "Is the lamp lit?")]
    await chat(client, first)
    second = [*first, msg("assistant", "The lamp is lit."), msg("user", "Good.")]
    response = await chat(client, second)
    record = fake.requests_to("/api/chat")[-1]
    # the cache holds the first prompt and the reply the model generated after it
    assert record.cached_tokens == len(chat_tokens(first)) + count_tokens("The lamp is lit.")
    assert record.evaluated_tokens == len(chat_tokens(second)) - record.cached_tokens
    assert record.evaluated_tokens < 15
    # like Ollama, prompt_eval_count counts the whole prompt, cached or not
    assert response.prompt_eval_count == len(chat_tokens(second))


async def test_a_prompt_changing_early_is_evaluated_again_from_there(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    await chat(client, [msg("system", "Memory: likes tea. " + PROSE), msg("user", "Hi")])
    await chat(client, [msg("system", "Memory: likes cats. " + PROSE), msg("user", "Hi")])
    record = fake.requests_to("/api/chat")[-1]
    assert record.cached_tokens == 5 + count_tokens("Memory: likes")  # BOS, system header
    assert record.evaluated_tokens > count_tokens(PROSE)


async def test_a_fully_cached_prompt_still_evaluates_its_last_token(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    messages = [msg("user", PROSE)]
    await chat(client, messages)
    await chat(client, messages)
    assert fake.requests_to("/api/chat")[-1].evaluated_tokens == 1


async def test_changing_num_ctx_reloads_the_model_with_a_cold_cache(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    messages = [msg("user", PROSE)]
    cold = await chat(client, messages, num_ctx=2048)
    warm = await chat(client, messages, num_ctx=2048)
    reloaded = await chat(client, messages, num_ctx=8192)
    records = fake.requests_to("/api/chat")
    assert [r.evaluation.reloaded for r in records if r.evaluation] == [True, False, True]
    assert cold.load_duration > warm.load_duration > 0
    assert reloaded.load_duration > warm.load_duration
    assert records[2].cached_tokens == 0
    assert fake.loaded_models["llama3.2:latest"].num_ctx == 8192


async def test_num_ctx_defaults_to_the_models_own_then_the_servers(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    await chat(client, [msg("user", "hi")])
    assert fake.loaded_models["llama3.2:latest"].num_ctx == DEFAULT_NUM_CTX
    fake.configure_model("llama3.2", num_ctx=8192, context_length=16384)
    await chat(client, [msg("user", "hi")])
    assert fake.loaded_models["llama3.2:latest"].num_ctx == 8192
    await chat(client, [msg("user", "hi")], num_ctx=100_000)
    assert fake.loaded_models["llama3.2:latest"].num_ctx == 16384  # never past the model's


async def test_another_model_unloads_the_least_recently_used_one_when_full(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    fake.max_loaded_models = 1
    fake.configure_model("qwen3:0.6b")
    messages = [msg("user", PROSE)]
    await chat(client, messages)
    await client.chat(model="qwen3:0.6b", messages=messages)
    await chat(client, messages)
    last = fake.requests_to("/api/chat")[-1]
    assert last.evaluation is not None and last.evaluation.reloaded
    assert last.cached_tokens == 0
    assert list(fake.loaded_models) == ["llama3.2:latest"]


async def test_keep_alive_zero_unloads_after_the_reply(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    await client.chat(model="llama3.2", messages=[msg("user", "hi")], keep_alive=0)
    assert fake.loaded_models == {}


async def test_ps_lists_loaded_models_with_their_context_length(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    await chat(client, [msg("user", "hi")], num_ctx=6144)
    await client.embed(model="nomic-embed-text", input="hello")
    running = await client.ps()
    assert [(m.model, m.context_length) for m in running.models] == [
        ("nomic-embed-text:latest", 2048),  # its context length, below the default
        ("llama3.2:latest", 6144),
    ]


async def test_show_reports_context_length_and_capabilities(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    fake.configure_model(
        "gemma3:270m", architecture="gemma3", context_length=32768, capabilities=["completion"]
    )
    thinking = ["completion", "thinking"]
    fake.configure_model("qwen3:0.6b", architecture="qwen3", capabilities=thinking)
    gemma = await client.show("gemma3:270m")
    assert gemma.modelinfo is not None
    assert gemma.modelinfo["general.architecture"] == "gemma3"
    assert gemma.modelinfo["gemma3.context_length"] == 32768
    assert gemma.capabilities == ["completion"]
    assert (await client.show("qwen3:0.6b")).capabilities == thinking
    embed = await client.show("nomic-embed-text")
    assert embed.capabilities == ["embedding"]
    assert embed.modelinfo is not None and embed.modelinfo["nomic-bert.context_length"] == 2048


async def test_show_reports_a_models_own_num_ctx_as_a_parameter(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    fake.configure_model("llama3.2", num_ctx=8192)
    shown = await client.show("llama3.2")
    assert shown.parameters is not None
    assert shown.parameters.split() == ["num_ctx", "8192"]


async def test_num_predict_cuts_the_reply_with_done_reason_length(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    fake.reply_with("one two three four five six")
    whole = await chat(client, [msg("user", "count")])
    assert (whole.message.content, whole.eval_count, whole.done_reason) == (
        "one two three four five six",
        6,
        "stop",
    )
    cut = await chat(client, [msg("user", "count")], num_predict=3)
    assert (cut.message.content, cut.eval_count, cut.done_reason) == ("one two three", 3, "length")
    stream = await client.chat(
        model="llama3.2", messages=[msg("user", "c")], options={"num_predict": 2}, stream=True
    )
    parts = [part async for part in stream]
    assert "".join(p.message.content for p in parts) == "one two"
    assert (parts[-1].done_reason, parts[-1].eval_count) == ("length", 2)


async def test_timings_follow_the_tokens_evaluated_and_generated(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    fake.seconds_per_prompt_token = 0.0001
    fake.seconds_per_generated_token = 0.001
    fake.reply_with("one two three")
    response = await chat(client, [msg("user", "count to three")])
    record = fake.requests_to("/api/chat")[-1]
    assert response.prompt_eval_duration == round(record.evaluated_tokens * 0.0001 * 1e9)
    assert response.eval_duration == round(3 * 0.001 * 1e9)


async def test_a_responder_sees_what_the_model_saw(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    def answer(request: FakeChatRequest) -> str:
        assert request.seen_messages is not None
        return f"{len(request.messages)} sent, {len(request.seen_messages)} seen"

    fake.reply_with(answer)
    messages = [msg("system", "Card."), *history(12)]
    response = await chat(client, messages, num_ctx=400)
    seen = len(fake.requests_to("/api/chat")[-1].seen_messages)
    assert response.message.content == f"13 sent, {seen} seen"


async def test_embed_counts_tokens_and_cuts_inputs_to_the_window(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    short = await client.embed(model="nomic-embed-text", input=["hello there", PROSE])
    assert short.prompt_eval_count == count_tokens("hello there") + count_tokens(PROSE)
    long = await client.embed(model="nomic-embed-text", input=PROSE * 100)
    assert long.prompt_eval_count == 2048  # nomic-embed-text's context length
    with pytest.raises(ollama.ResponseError, match="exceeds the context length"):
        await client.embed(model="nomic-embed-text", input=PROSE * 100, truncate=False)


async def test_only_evaluated_requests_expose_token_figures(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    await client.list()
    with pytest.raises(ValueError, match="did not evaluate"):
        _ = fake.requests_to("/api/tags")[-1].prompt_tokens
    assert fake.evaluated_requests() == []


async def test_a_chat_without_messages_loads_or_unloads_the_model(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    loaded = await client.chat(model="llama3.2", messages=[], options={"num_ctx": 2048})
    assert (loaded.done_reason, loaded.message.content) == ("load", "")
    assert fake.loaded_models["llama3.2:latest"].num_ctx == 2048
    unloaded = await client.chat(model="llama3.2", messages=[], keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert fake.loaded_models == {}
    assert fake.evaluated_requests() == []


async def test_parallel_slots_keep_two_conversations_cached(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    fake.num_parallel = 2
    ann = [msg("system", "Ann's card. " + PROSE), msg("user", "Hi, I am Ann.")]
    bob = [msg("system", "Bob's card. " + PROSE), msg("user", "Hi, I am Bob.")]
    for messages in (ann, bob, ann, bob):
        await chat(client, messages)
    records = fake.requests_to("/api/chat")
    assert [r.cached_tokens > count_tokens(PROSE) for r in records] == [False, False, True, True]


async def test_one_slot_serves_alternating_conversations_cold(
    fake: FakeOllama, client: ollama.AsyncClient
) -> None:
    ann = [msg("system", "Ann's card. " + PROSE), msg("user", "Hi, I am Ann.")]
    bob = [msg("system", "Bob's card. " + PROSE), msg("user", "Hi, I am Bob.")]
    for messages in (ann, bob, ann):
        await chat(client, messages)
    assert fake.requests_to("/api/chat")[-1].cached_tokens < 10
