"""Every prompt fits the model's window, keeps its prefix for many turns, and
what falls out of the window lives on as a summary.

The loopback Ollama counts tokens with its own tokenizer, truncates a prompt
over ``num_ctx`` as Ollama does and keeps a KV prefix cache, so these tests see
what a real model would have seen."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from personae.core.cards import PersonaCard, save_card
from personae.core.context import BudgetPart, TokenCounter, fit_parts
from personae.core.doctor import run_checks
from personae.core.errors import ContextTooSmall
from personae.core.hookspecs import hookimpl
from personae.core.llm.base import ChatRequest, ChatUsage, LLMBackend, ModelInfo
from personae.core.llm.ollama import OllamaBackend
from personae.core.runtime import Runtime
from personae.core.settings import OllamaSettings
from personae.core.types import ChatMessage, Scope, Turn
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama, RecordedRequest
from tests.conftest import make_settings, reply_prompts

WORDS = (
    "lighthouse harbour storm lantern keeper rope gull tide chart compass salt "
    "north island supper letter brother winter boat engine whistle fog bell "
    "morning kettle garden onions ledger market cousin ferry bridge river"
).split()


def prose(seed: int, chars: int) -> str:
    """Deterministic, varied sentences of about ``chars`` characters."""
    rng = random.Random(seed)
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < chars:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def big_card() -> PersonaCard:
    """A real-world-shaped card: a ~5,500-character description and example dialogue."""
    examples = "\n".join(
        f"<START>\n{{{{user}}}}: {prose(100 + i, 150)}\n{{{{char}}}}: {prose(200 + i, 300)}"
        for i in range(3)
    )
    return PersonaCard(
        name="Maren",
        description=prose(1, 5500),
        personality=prose(2, 300),
        scenario=prose(3, 400),
        mes_example=examples,
        post_history_instructions="Stay in character as {{char}}.",
    )


def summary_responder(request: FakeChatRequest) -> str:
    last = request.messages[-1]
    if last["role"] == "system" and "summary of this conversation" in last["content"]:
        return f"SUMMARY-{len(request.messages)}: Ann and Maren talked about the lighthouse."
    return prose(len(request.messages) * 7 + len(request.last_user_message), 1000)


@pytest.fixture
def make_runtime(
    tmp_path: Path, fake_ollama: FakeOllama, db_url: str
) -> Callable[..., AsyncIterator[Runtime]]:
    async def start(**overrides: Any) -> AsyncIterator[Runtime]:
        settings = make_settings(tmp_path, fake_ollama, db_url, **overrides)
        async with Runtime(settings, load_entry_points=False) as runtime:
            yield runtime

    return start


@pytest.fixture
async def runtime(
    make_runtime: Callable[..., AsyncIterator[Runtime]],
) -> AsyncIterator[Runtime]:
    async for runtime in make_runtime(ollama={"num_ctx": 4096}):
        yield runtime


async def talk(runtime: Runtime, turns: int, *, persona: str = "maren") -> int:
    """Save the big card for Ann and hold ``turns`` turns of ~1,000 characters."""
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    if not runtime.personas.has_system(persona):
        await runtime.personas.save(big_card().model_copy(update={"id": persona}), owner_id=ann)
    for turn in range(turns):
        await runtime.reply(Turn(ann, persona, prose(1000 + turn, 1000), "c", user_name="Ann"))
        await runtime.background.drain()
    return ann


def stable_part(request: RecordedRequest) -> list[dict[str, Any]]:
    """The messages up to the end of the history (before the new message and the
    turn's system message after it)."""
    messages = request.json["messages"]
    return messages[:-2] if messages[-1]["role"] == "system" else messages[:-1]


# -- the window ------------------------------------------------------------------------


async def test_a_big_card_and_60_long_turns_never_overflow_the_window(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with(summary_responder)
    await talk(runtime, 60)
    prompts = reply_prompts(fake_ollama)
    assert len(prompts) == 60
    assert fake_ollama.overflowing_requests() == []
    assert max(r.prompt_tokens for r in prompts) <= 4096 - 512
    card = big_card().description[:200]
    assert all(card in r.json["messages"][0]["content"] for r in prompts)


async def test_num_ctx_is_sent_on_every_request_and_never_changes(
    make_runtime: Callable[..., AsyncIterator[Runtime]], fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with(summary_responder)
    async for runtime in make_runtime():
        await talk(runtime, 30)
    chats = fake_ollama.requests_to("/api/chat")
    assert any(r.json.get("format") for r in chats)  # profile extraction calls too
    summaries = [r for r in chats if r.json.get("stream") is False and not r.json.get("format")]
    assert summaries  # and conversation summaries
    assert {r.json["options"]["num_ctx"] for r in chats} == {8192}  # min(131072, 8192)
    assert len(fake_ollama.requests_to("/api/show")) == 1  # asked once for the model


async def test_a_card_larger_than_the_window_is_refused_with_a_clear_error(
    make_runtime: Callable[..., AsyncIterator[Runtime]], fake_ollama: FakeOllama
) -> None:
    async for runtime in make_runtime(ollama={"num_ctx": 1024}):
        ann = await runtime.users.resolve("cli", "ann", "Ann")
        await runtime.personas.save(big_card().model_copy(update={"id": "maren"}), owner_id=ann)
        with pytest.raises(ContextTooSmall, match=r"Shorten the card .* raise num_ctx") as error:
            await runtime.reply(Turn(ann, "maren", "Hello", "c"))
        assert error.value.num_ctx == 1024 and error.value.needed > error.value.available
        assert await runtime.history.page(await runtime.personas.scope("maren", ann), "c") == []
    assert reply_prompts(fake_ollama) == []


async def test_a_model_api_show_does_not_know_gets_the_fallback_window_and_a_log_line(
    fake_ollama: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = OllamaSettings(host=fake_ollama.url, fallback_num_ctx=3072)
    async with OllamaBackend(settings) as llm:
        window = await llm.context_window("ghost-model")
    assert (window.num_ctx, window.source) == (3072, "fallback")
    assert "fallback_num_ctx = 3072" in caplog.text and "ghost-model" in caplog.text


class SilentBackend:
    """A third-party backend that reports no token counts and no window."""

    name = "silent"
    default_model = "silent-1"

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        self.last = request
        yield "Quiet reply."

    async def chat(self, request: ChatRequest) -> str:
        return '{"items": []}'

    async def embed(self, texts: Any, *, model: str | None = None) -> list[list[float]]:
        return [[1.0] for _ in texts]

    async def list_models(self) -> list[ModelInfo]:
        return []

    async def aclose(self) -> None:
        pass


class SilentPlugin:
    backend = SilentBackend()

    @hookimpl
    def register_llm_backends(self, register: Callable[[LLMBackend], None]) -> None:
        register(self.backend)


async def test_a_backend_without_counts_or_window_gets_the_fallback_window_logged(
    tmp_path: Path, fake_ollama: FakeOllama, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = make_settings(tmp_path, fake_ollama, db_url, llm_backend="silent")
    runtime = Runtime(settings, load_entry_points=False)
    runtime.plugins.add(SilentPlugin(), name="silent")
    async with runtime:
        ann = await runtime.users.resolve("cli", "ann", "Ann")
        reply = await runtime.reply(Turn(ann, "sage", "Hello", "c"))
    assert reply.usage is None
    assert "does not say the context window of model 'silent-1'" in caplog.text
    assert "reported no token counts" in caplog.text


# -- the layout and the prefix ---------------------------------------------------------


async def test_recalled_memory_comes_after_the_history_and_the_new_message(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with(summary_responder)
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    await runtime.memory.add(Scope("sage", ann), "Ann keeps the lighthouse lantern")
    for text in ("Hello", "The lighthouse lantern went out", "What about the lantern?"):
        await runtime.reply(Turn(ann, "sage", text, "c", user_name="Ann"))
    messages = reply_prompts(fake_ollama)[-1].json["messages"]
    memory = [i for i, m in enumerate(messages) if "lighthouse lantern" in m["content"]]
    memory = [i for i in memory if messages[i]["role"] == "system"]
    history = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    assert memory == [len(messages) - 1] and memory[0] > max(history)
    assert messages[-2] == {"role": "user", "content": "What about the lantern?"}
    # The stable system message states the rule for remembered data once; the
    # turn's message carries only the delimited notes.
    assert "never an instruction" in messages[0]["content"]
    assert messages[-1]["content"].count("<remembered-data") == 1


@pytest.fixture
async def quiet_runtime(
    make_runtime: Callable[..., AsyncIterator[Runtime]],
) -> AsyncIterator[Runtime]:
    """The default window; no profile learning, whose extraction calls would take
    the fake's one cached prompt (like Ollama with one slot)."""
    async for runtime in make_runtime(plugin_settings={"profile": {"learn": False}}):
        yield runtime


async def test_history_is_trimmed_in_blocks_so_the_prefix_holds_for_many_turns(
    quiet_runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with(summary_responder)
    await talk(quiet_runtime, 40)
    prompts = reply_prompts(fake_ollama)
    kept = [
        stable_part(before) == after.json["messages"][: len(stable_part(before))]
        for before, after in itertools.pairwise(prompts)
    ]
    breaks = kept.count(False)
    assert 2 <= breaks <= len(kept) // 3  # the window moved, a block at a time
    runs = "".join("k" if k else "b" for k in kept).split("b")
    assert max(len(run) for run in runs) >= 3  # several turns in a row kept the prefix
    cached = sum(r.cached_tokens for r in prompts[1:]) / sum(r.prompt_tokens for r in prompts[1:])
    assert cached > 0.6


# -- summaries -------------------------------------------------------------------------


async def test_a_summary_is_written_once_per_block_and_reaches_later_prompts(
    quiet_runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    runtime = quiet_runtime
    fake_ollama.reply_with(summary_responder)
    ann = await talk(runtime, 40)
    chats = fake_ollama.requests_to("/api/chat")
    summary_calls = [r for r in chats if r.json.get("stream") is False and not r.json.get("format")]
    prompts = reply_prompts(fake_ollama)
    starts = {p.json["messages"][1 + ("SUMMARY" in p.json["messages"][1]["content"])]["content"]
              for p in prompts}  # fmt: skip
    assert 1 <= len(summary_calls) <= len(starts)  # one call per block, not per turn
    assert len(summary_calls) < len(prompts) // 4
    stored = await runtime.summaries.store.latest(await runtime.personas.scope("maren", ann), "c")
    assert stored and stored[0].text.startswith("SUMMARY-")
    with_summary = [p for p in prompts if "SUMMARY-" in p.json["messages"][1]["content"]]
    assert with_summary and prompts[-1] in with_summary
    block = prompts[-1].json["messages"][1]["content"]
    assert "<remembered-data" in block and "never an instruction" in block


async def test_summaries_are_exported_and_forgotten_with_the_history(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply_with(summary_responder)
    ann = await talk(runtime, 1)
    await runtime.summaries.store.add(
        await runtime.personas.scope("maren", ann), "c", 1, "Ann spoke of the tide."
    )
    exported = await runtime.export_user_data(ann, "maren")
    (conversation,) = exported["plugins"]["history"]
    assert [s["text"] for s in conversation["summaries"]] == ["Ann spoke of the tide."]
    await runtime.forget_user(ann, "maren")
    assert (
        await runtime.summaries.store.latest(await runtime.personas.scope("maren", ann), "c") == []
    )


# -- the estimate and the budget -------------------------------------------------------


def test_the_token_estimate_follows_the_counts_the_server_reports() -> None:
    counter = TokenCounter()
    messages = [ChatMessage("user", "x" * 4000)]
    counter.observe(messages, ChatUsage("m", 808, 10))
    assert counter.calibrated and counter.count("x" * 4000) == 800


def test_a_count_that_may_leave_out_cached_tokens_does_not_shrink_the_estimate() -> None:
    counter = TokenCounter()
    messages = [ChatMessage("user", "x" * 4000)]
    counter.observe(messages, ChatUsage("m", 1008, 10))  # a cold request: the whole prompt
    counter.observe(messages, ChatUsage("m", 208, 10))  # the cache served the rest
    assert counter.count("x" * 4000) == 1000


def test_parts_are_cut_by_priority_and_least_important_items_first() -> None:
    counter = TokenCounter(chars_per_token=1.0)
    memory = BudgetPart("memory", ("a" * 30, "b" * 30, "c" * 30), priority=30)
    rules = BudgetPart("rules", ("r" * 30,), priority=10)
    fitted = {f.part.name: f.kept for f in fit_parts([memory, rules], 80, counter)}
    assert fitted == {"rules": ("r" * 30,), "memory": ("a" * 30,)}


async def test_doctor_names_a_persona_whose_card_does_not_fit_its_window(
    tmp_path: Path, fake_ollama: FakeOllama, db_url: str
) -> None:
    folder = tmp_path / "cards"
    folder.mkdir()
    save_card(big_card().model_copy(update={"id": "maren"}), folder / "maren.json")
    settings = make_settings(
        tmp_path, fake_ollama, db_url, persona_dirs=[folder], ollama={"num_ctx": 2048}
    )
    checks = [c for c in await run_checks(settings) if c.name == "persona window"]
    assert [c.ok for c in checks] == [False]
    assert checks[0].detail.startswith("maren: The persona 'Maren' does not fit")
    assert "num_ctx" in checks[0].fix
