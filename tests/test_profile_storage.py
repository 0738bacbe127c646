"""Profile memory on SQLite and PostgreSQL: concurrent consolidation, limits,
recall ranking and sharing groups."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from personae.core.cards import PersonaCard
from personae.core.clock import ManualClock
from personae.core.runtime import Runtime
from personae.core.types import Scope, Turn
from personae.storage.memory import MemoryStore
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama
from tests.conftest import make_settings, system_text
from tests.conftest import reply_prompts as conftest_reply_prompts

EXTRACTION = "personae_profile_extraction"


def is_extraction(request: FakeChatRequest) -> bool:
    return isinstance(request.format, dict) and request.format.get("title") == EXTRACTION


def add(text: str, kind: str = "fact", confidence: float = 0.9) -> dict[str, Any]:
    return {"action": "add", "kind": kind, "text": text, "confidence": confidence}


def reply_prompts(fake: FakeOllama) -> list[str]:
    """The system prompts of the chat replies (extraction calls left out)."""
    return [system_text(r) for r in conftest_reply_prompts(fake)]


def write_card(folder: Path, persona_id: str, group: str | None) -> None:
    own: dict[str, Any] = {"id": persona_id, "curiosity": "off"}
    if group:
        own["sharing_group"] = group
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {"name": persona_id.title(), "extensions": {"personae": own}},
    }
    (folder / f"{persona_id}.json").write_text(json.dumps(card))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def runtime(
    tmp_path: Path, fake_ollama: FakeOllama, db_url: str, clock: ManualClock
) -> AsyncIterator[Runtime]:
    cards = tmp_path / "cards"
    cards.mkdir()
    for persona, group in [("ada", "lab"), ("bea", "lab"), ("cyd", None)]:
        write_card(cards, persona, group)
    settings = make_settings(
        tmp_path,
        fake_ollama,
        db_url,
        persona_dirs=[cards],
        plugin_settings={"profile": {"extract_after_messages": 1, "tick_seconds": 0}},
        disabled_plugins=["curiosity"],
    )
    rt = Runtime(settings, load_entry_points=False, clock=clock)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def test_two_concurrent_extractions_for_one_scope_lose_no_item(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    both_asked = asyncio.Barrier(2)

    async def respond(request: FakeChatRequest) -> str:
        if not is_extraction(request):
            return "Noted."
        await both_asked.wait()  # both extractions are in flight at once
        own = "Rides a bike" if "bike" in request.messages[-1]["content"] else "Grows tomatoes"
        return json.dumps({"items": [add(own), add("Works night shifts")]})

    fake_ollama.reply_with(respond)
    await asyncio.gather(
        runtime.reply(Turn(ann, "ada", "I ride my bike to work at night", "one")),
        runtime.reply(Turn(ann, "ada", "I grow tomatoes after my night shifts", "two")),
    )
    await runtime.background.drain()
    texts = sorted(i.text for i in await runtime.memory.list(Scope("ada", ann)))
    assert texts == ["Grows tomatoes", "Rides a bike", "Works night shifts"]


async def test_sessions_of_one_scope_are_serialised_by_the_database_too(
    runtime: Runtime,
) -> None:
    """Two stores stand for two processes: no shared in-process lock between them."""
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    scope = Scope("ada", ann)
    inside = asyncio.Event()

    async def consolidate(store: MemoryStore, own: str, first: bool) -> None:
        if not first:
            await inside.wait()
        async with store.session(scope) as session:
            if first:
                inside.set()
                await asyncio.sleep(0.05)  # let the other session try to interleave
            if not any(item.text == "Shared fact" for item in session.items):
                await session.add("Shared fact")
            await session.add(own)

    await asyncio.gather(
        consolidate(MemoryStore(), "From process one", True),
        consolidate(MemoryStore(), "From process two", False),
    )
    texts = sorted(i.text for i in await runtime.memory.list(scope))
    assert texts == ["From process one", "From process two", "Shared fact"]


async def test_a_scope_keeps_at_most_its_limit_evicting_the_least_useful(
    runtime: Runtime, clock: ManualClock
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    scope = Scope("ada", ann)
    old = clock.now() - timedelta(days=90)
    used = await runtime.memory.add(scope, "Often recalled", confidence=0.5, now=old)
    await runtime.memory.add(scope, "Never recalled, unsure", confidence=0.4, now=old)
    sure = await runtime.memory.add(scope, "Never recalled, sure", confidence=1.0, now=old)
    fresh = await runtime.memory.add(scope, "Just learned", confidence=0.6, now=clock.now())
    for _ in range(3):
        await runtime.memory.record_use([scope], [used.id], now=clock.now())
    evicted = await runtime.memory.evict(scope, 3, now=clock.now())
    assert [i.text for i in evicted] == ["Never recalled, unsure"]
    remaining = {i.id for i in await runtime.memory.list(scope)}
    assert remaining == {used.id, sure.id, fresh.id}
    assert await runtime.memory.usage(scope, used.id) == (3, clock.now())


async def test_learning_beyond_the_limit_evicts_and_refuses_oversized_items(
    tmp_path: Path, fake_ollama: FakeOllama, db_url: str
) -> None:
    options = {"extract_after_messages": 1, "tick_seconds": 0, "max_items": 2}
    settings = make_settings(
        tmp_path,
        fake_ollama,
        db_url,
        plugin_settings={"profile": options | {"max_item_chars": 40}},
        disabled_plugins=["curiosity"],
    )
    answers = [
        [add("Has two sisters", confidence=0.6), add("Is left-handed", confidence=0.9)],
        [add("Speaks Welsh", confidence=0.95), add("Has a long story " + "x" * 60)],
    ]

    def respond(request: FakeChatRequest) -> str:
        return json.dumps({"items": answers.pop(0)}) if is_extraction(request) else "Ok."

    fake_ollama.reply_with(respond)
    async with Runtime(settings, load_entry_points=False) as runtime:
        ann = await runtime.users.resolve("cli", "ann", "Ann")
        for text in ("About my family...", "And my languages..."):
            await runtime.reply(Turn(ann, "sage", text, "c"))
            await runtime.background.drain()
        texts = sorted(i.text for i in await runtime.memory.list(Scope("sage", ann)))
        assert texts == ["Is left-handed", "Speaks Welsh"]


async def test_recall_ranks_relevance_then_recency_within_budget_and_scope(
    runtime: Runtime, clock: ManualClock
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    bob = await runtime.users.resolve("cli", "bob", "Bob")
    scope = Scope("cyd", ann)
    now = clock.now()
    await runtime.memory.add(scope, "Plays chess in a club", now=now - timedelta(days=200))
    await runtime.memory.add(scope, "Studies chess openings", now=now - timedelta(days=1))
    await runtime.memory.add(scope, "Has a cat named Miso", now=now)
    await runtime.memory.add(Scope("cyd", bob), "Bob is a chess grandmaster", now=now)
    await runtime.memory.add(Scope("ada", ann), "Ann's chess secret for ada", now=now)
    ranked = await runtime.memory.recall([scope], "any chess tips?", now=now)
    assert [i.text for i in ranked] == [
        "Studies chess openings",
        "Plays chess in a club",
        "Has a cat named Miso",
    ]
    tight = await runtime.memory.recall([scope], "any chess tips?", budget_tokens=6, now=now)
    assert [i.text for i in tight] == ["Studies chess openings"]
    by_context = await runtime.memory.recall(
        [scope], "what do you think?", context="my cat Miso was sick", now=now
    )
    assert by_context[0].text == "Has a cat named Miso"


async def test_personas_in_one_sharing_group_read_each_others_items(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    await runtime.memory.add(Scope("ada", ann), "Is afraid of spiders")
    for persona in ("bea", "cyd", "ada"):
        await runtime.reply(Turn(ann, persona, "spiders again?", "c"))
    bea, cyd, ada = reply_prompts(fake_ollama)[-3:]
    assert "(fact, noted by ada) Is afraid of spiders" in bea  # same group "lab"
    assert "spiders" not in cyd  # no group: isolated
    assert "(fact) Is afraid of spiders" in ada


async def test_a_custom_persona_joins_its_owners_sharing_group_at_once(runtime: Runtime) -> None:
    """The group's members are worked out once and kept: a persona saved or
    deleted afterwards changes them at once, and only for its owner."""
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    bob = await runtime.users.resolve("cli", "bob", "Bob")
    ada = await runtime.personas.get("ada")

    async def group(user: int) -> list[str]:
        return [
            s.persona_id for s in await runtime.personas.readable_scopes(ada, Scope("ada", user))
        ]

    assert await group(ann) == ["ada", "bea"]
    assert await group(ann) == ["ada", "bea"]  # kept
    card = PersonaCard(name="Dee", id="dee", extensions={"personae": {"sharing_group": "lab"}})
    await runtime.personas.save(card, owner_id=ann)
    assert await group(ann) == ["ada", "bea", "dee"]
    assert await group(bob) == ["ada", "bea"]  # another user's persona is never read
    assert await runtime.personas.store.delete("dee", owner_id=ann)
    assert await group(ann) == ["ada", "bea"]


async def test_without_a_sharing_group_memory_is_isolated(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    await runtime.memory.add(Scope("cyd", ann), "Is afraid of heights")
    for persona in ("ada", "bea"):
        await runtime.reply(Turn(ann, persona, "heights again?", "c"))
    for system in reply_prompts(fake_ollama)[-2:]:
        assert "heights" not in system


async def test_items_that_reach_a_prompt_are_counted_as_used(
    runtime: Runtime, clock: ManualClock
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    item = await runtime.memory.add(Scope("ada", ann), "Is afraid of spiders")
    await runtime.reply(Turn(ann, "bea", "spiders again?", "c"))
    await runtime.background.drain()
    await runtime.memory.flush_uses()  # counts are written in batches
    assert await runtime.memory.usage(Scope("ada", ann), item.id) == (1, clock.now())


async def test_embeddings_are_stored_and_steer_recall_when_enabled(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    db_url = f"sqlite://{tmp_path / 'embed.db'}"
    options = {"extract_after_messages": 1, "tick_seconds": 0, "embeddings": True}
    settings = make_settings(
        tmp_path,
        fake_ollama,
        db_url,
        plugin_settings={"profile": options | {"embed_model": "nomic-embed-text"}},
        disabled_plugins=["curiosity"],
    )

    def respond(request: FakeChatRequest) -> str:
        if is_extraction(request):
            return json.dumps({"items": [add("Sails a small boat on weekends")]})
        return "Ok."

    fake_ollama.reply_with(respond)
    async with Runtime(settings, load_entry_points=False) as runtime:
        ann = await runtime.users.resolve("cli", "ann", "Ann")
        await runtime.reply(Turn(ann, "sage", "I have a little sailing boat", "c"))
        await runtime.background.drain()
        await runtime.memory.add(Scope("sage", ann), "Unrelated note about taxes")
        embeds = fake_ollama.requests_to("/api/embed")
        assert embeds[-1].json["input"] == ["Sails a small boat on weekends"]
        assert embeds[-1].json["model"] == "nomic-embed-text"
        await runtime.reply(Turn(ann, "sage", "boat weekends", "c"))
        assert fake_ollama.requests_to("/api/embed")[-1].json["input"] == ["boat weekends"]
        system = reply_prompts(fake_ollama)[-1]
        assert system.index("Sails a small boat") < system.index("Unrelated note")


async def test_use_counts_collect_in_memory_and_are_written_in_groups(
    runtime: Runtime, clock: ManualClock
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    scope = Scope("ada", ann)
    often = await runtime.memory.add(scope, "Plays chess")
    once = await runtime.memory.add(scope, "Reads poetry")
    for _ in range(3):
        runtime.memory.note_use([scope], [often.id], now=clock.now())
    runtime.memory.note_use([scope], [once.id], now=clock.now())
    assert await runtime.memory.usage(scope, often.id) == (0, None)  # nothing written yet
    assert await runtime.memory.flush_uses() == 2
    assert await runtime.memory.usage(scope, often.id) == (3, clock.now())
    assert await runtime.memory.usage(scope, once.id) == (1, clock.now())
    assert await runtime.memory.flush_uses() == 0
