"""What a long conversation costs the model: tokens evaluated per turn, prompt
cache hits and requests over the window, for the context engine's layout beside
today's naive one.

One 100-turn conversation with a real-world-shaped card (a ~5,500-character
description, example dialogue, a scenario, post-history instructions), messages
of ~1,000 characters both ways and recalled memory in every prompt is driven
through the real runtime and the loopback Ollama (its own tokenizer, Ollama's
truncation over ``num_ctx``, a KV prefix cache per loaded model). The same
conversation is then sent the naive way, as personae did before the context
engine: the whole card with the recalled memory in one system message, then the
last 20 messages, the post-history instructions and the new message, to a second
fake with the same window.

Profile learning is off in both runs (the memory is seeded): its extraction calls
go to the same model and, like Ollama with one slot (``OLLAMA_NUM_PARALLEL=1``),
the fake keeps one cached prompt per model, so they would evict the
conversation's prefix in either layout. Summary calls of the context engine are
counted in the evaluated figures.

Run ``python bench/context.py`` (``--turns``, ``--num-ctx``). Exit status is 0
even when a target is missed; the table says FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from personae.core.cards import PersonaCard
from personae.core.llm.base import ChatRequest
from personae.core.llm.ollama import OllamaBackend
from personae.core.prompt import card_text, post_history_text
from personae.core.runtime import Runtime
from personae.core.settings import OllamaSettings, Settings
from personae.core.types import ChatMessage, Scope, Turn
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama, RecordedRequest
from personae.testing.fake_tokenizer import count_tokens

WORDS = (
    "lighthouse harbour storm lantern keeper rope gull tide chart compass salt north "
    "island supper letter brother winter boat engine whistle fog bell morning kettle "
    "garden onions ledger market cousin ferry bridge river cliff shanty net oar mast "
    "pier beacon anchor sail cargo smoke chapel school orchard mill quarry moor"
).split()
MEMORY = [
    "Ann keeps the lighthouse lantern lit every winter",
    "Ann's brother runs the ferry to the island",
    "Ann grows onions in the garden behind the chapel",
    "Ann writes letters to her cousin at the market town",
    "Ann is afraid of the fog bell at night",
    "Ann repairs boat engines for the harbour",
    "Ann keeps a ledger of every storm since 1998",
    "Ann walks the cliff path each morning",
]
NAIVE_HISTORY = 20


def prose(seed: int, chars: int) -> str:
    rng = random.Random(seed)
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < chars:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def big_card() -> PersonaCard:
    examples = "\n".join(
        f"<START>\n{{{{user}}}}: {prose(100 + i, 160)}\n{{{{char}}}}: {prose(200 + i, 320)}"
        for i in range(3)
    )
    return PersonaCard(
        id="maren",
        name="Maren",
        description=prose(1, 5500),
        personality=prose(2, 300),
        scenario=prose(3, 400),
        mes_example=examples,
        post_history_instructions="Stay in character as {{char}}; reply in a paragraph or two.",
    )


def responder(request: FakeChatRequest) -> str:
    last = request.messages[-1]
    if last["role"] == "system" and "summary of this conversation" in last["content"]:
        return prose(len(request.messages), 900)
    return prose(7 * len(request.messages) + len(request.last_user_message), 1000)


@dataclass
class Figures:
    over: int
    eval_per_new: float
    cache_ratio: float
    evaluated: float
    card_always: bool
    summary_always: bool | None
    summary_calls: int = 0
    summary_evaluated: int = 0


def figures(
    replies: list[RecordedRequest], news: list[int], card: str, summary: bool | None
) -> Figures:
    later = replies[1:]
    return Figures(
        over=sum(r.truncated for r in replies),
        eval_per_new=statistics.mean(
            r.evaluated_tokens / n for r, n in zip(later, news[1:], strict=True)
        ),
        cache_ratio=statistics.mean(r.cached_tokens / r.prompt_tokens for r in later),
        evaluated=statistics.mean(r.evaluated_tokens for r in later),
        card_always=all(card in r.seen_messages[0]["content"] for r in replies),
        summary_always=summary,
    )


def is_reply(request: RecordedRequest) -> bool:
    """A persona's reply: streamed (summaries and structured calls are not)."""
    return not request.json.get("format") and request.json.get("stream", True) is not False


async def engine_run(
    turns: int, num_ctx: int | None, folder: Path
) -> tuple[Figures, list[tuple[str, str, str]]]:
    """The conversation through the runtime; returns the figures and, per turn,
    (user text, reply, the recalled memory block) for the naive replay."""
    async with FakeOllama() as fake:
        fake.reply_with(responder)
        ollama: dict[str, Any] = {"host": fake.url, "read_timeout": 30.0}
        if num_ctx:
            ollama["num_ctx"] = num_ctx
        settings = Settings(
            data_dir=folder / "data",
            database_url=f"sqlite://{folder / 'bench.db'}",
            ollama=ollama,
            plugin_settings={"profile": {"learn": False}},
        )
        async with Runtime(settings, load_entry_points=False) as runtime:
            ann = await runtime.users.resolve("cli", "ann", "Ann")
            await runtime.personas.save(big_card(), owner_id=ann)
            for text in MEMORY:
                await runtime.memory.add(Scope("maren", ann), text)
            conversation: list[tuple[str, str, str]] = []
            for turn in range(turns):
                text = prose(1000 + turn, 1000)
                reply = await runtime.reply(Turn(ann, "maren", text, "c", user_name="Ann"))
                await runtime.background.drain()
                sent = [r for r in fake.requests_to("/api/chat") if is_reply(r)][-1]
                sent_messages = sent.json["messages"]
                newest = max(i for i, m in enumerate(sent_messages) if m["role"] == "user")
                late = sent_messages[newest - 1]  # post-history instructions follow the message
                memory = late["content"] if late["role"] == "system" else ""
                conversation.append((text, reply.text, memory))
        chats = fake.requests_to("/api/chat")
        replies = [r for r in chats if is_reply(r)]
        summaries = [r for r in chats if not is_reply(r) and not r.json.get("format")]
        card = big_card().description[:300]
        first = next(
            (i for i, r in enumerate(replies) if "conversation-summary" in str(r.json)), None
        )
        summary_always = first is not None and all(
            "conversation-summary" in r.json["messages"][1]["content"] for r in replies[first:]
        )
        news = [count_tokens(text) for text, _, _ in conversation]
        result = figures(replies, news, card, summary_always)
        result.summary_calls = len(summaries)
        result.summary_evaluated = sum(r.evaluated_tokens for r in summaries)
        return result, conversation


async def naive_run(conversation: list[tuple[str, str, str]], num_ctx: int) -> Figures:
    """The same conversation as personae sent it before: card and memory in one
    system message, then the last 20 messages."""
    card = big_card()
    async with FakeOllama() as fake:
        replies_sent: list[RecordedRequest] = []
        history: list[ChatMessage] = []
        settings = OllamaSettings(host=fake.url, num_ctx=num_ctx, read_timeout=30.0)
        async with OllamaBackend(settings) as llm:
            for text, reply, memory in conversation:
                fake.reply_with(reply)
                system = card_text(card, user="Ann") + ("\n\n" + memory if memory else "")
                messages = [ChatMessage("system", system), *history[-NAIVE_HISTORY:]]
                messages.append(ChatMessage("system", post_history_text(card, user="Ann")))
                messages.append(ChatMessage("user", text))
                async for _ in llm.stream_chat(ChatRequest(messages=messages)):
                    pass
                replies_sent.append(fake.requests_to("/api/chat")[-1])
                history += [ChatMessage("user", text), ChatMessage("assistant", reply)]
        news = [count_tokens(text) for text, _, _ in conversation]
        return figures(replies_sent, news, card.description[:300], None)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument(
        "--num-ctx", type=int, default=0, help="ollama.num_ctx (0: the model's, capped at 8192)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        ours, conversation = await engine_run(args.turns, args.num_ctx or None, Path(folder))
    num_ctx = args.num_ctx or 8192
    naive = await naive_run(conversation, num_ctx)
    card_tokens = count_tokens(card_text(big_card(), user="Ann"))
    print(
        f"{args.turns} turns, num_ctx {num_ctx}, card {len(card_text(big_card(), user='Ann'))} "
        f"characters ({card_tokens} tokens), messages ~1,000 characters, {len(MEMORY)} "
        "memory items; averages over turns 2-100"
    )
    print(f"{'':44}{'context engine':>16}{'naive':>10}")
    rows = [
        ("requests over num_ctx", ours.over, naive.over, "{:d}"),
        ("prompt tokens evaluated / new tokens", ours.eval_per_new, naive.eval_per_new, "{:.2f}"),
        ("cache hit ratio (cached / prompt)", ours.cache_ratio, naive.cache_ratio, "{:.3f}"),
        ("tokens evaluated per turn", ours.evaluated, naive.evaluated, "{:.0f}"),
        ("card in every request", ours.card_always, naive.card_always, "{}"),
        ("summary in every request after the first", ours.summary_always, "n/a", "{}"),
    ]
    for name, a, b, fmt in rows:
        print(f"{name:44}{fmt.format(a):>16}{b if isinstance(b, str) else fmt.format(b):>10}")
    per_turn = ours.summary_evaluated / max(1, args.turns - 1)
    print(
        f"summary calls: {ours.summary_calls}, {ours.summary_evaluated} tokens evaluated "
        f"({per_turn:.0f} a turn; with them {ours.evaluated + per_turn:.0f} a turn)"
    )
    print("targets:")
    print(f"  0 requests over the window ............. {verdict(ours.over == 0)}")
    print(f"  cache hit ratio >= 0.85 ................ {verdict(ours.cache_ratio >= 0.85)}")
    third = naive.evaluated / 3
    print(
        f"  evaluated per turn <= naive / 3 ({third:.0f}) .. "
        f"{verdict(ours.evaluated + per_turn <= third)} (summary calls included)"
    )
    print(
        f"  card and summary in every request ...... "
        f"{verdict(ours.card_always and bool(ours.summary_always))}"
    )


if __name__ == "__main__":
    asyncio.run(main())
