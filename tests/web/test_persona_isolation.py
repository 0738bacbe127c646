"""Persona isolation against another user, over HTTP: a sharing group is closed
to other owners, a deleted persona's id hands nothing to the next owner, and a
private id cannot be found out by trying to create it.

Profile learning runs for real after every reply (the fake Ollama answers the
extraction calls), so what is remembered is what the product would remember.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Caller
from tortoise import Tortoise

from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama
from tests.conftest import reply_prompts

EXTRACTION = "personae_profile_extraction"
FACTS = {  # what a user says -> what the extraction call answers it reveals
    "I play the cello": "ALICE-CELLO plays the cello",
    "I keep a diary": "SPY-DIARY keeps a diary",
    "I keep bees": "ALICE-BEES keeps bees on the roof",
    "I like jazz": "BOB-JAZZ likes jazz",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Learn after every message; no curiosity calls in the way."""
    return settings.model_copy(
        update={
            "plugin_settings": {"profile": {"extract_after_messages": 1, "tick_seconds": 0}},
            "disabled_plugins": [*settings.disabled_plugins, "curiosity"],
        }
    )


@pytest.fixture(autouse=True)
def learning(fake_ollama: FakeOllama) -> None:
    def respond(request: FakeChatRequest) -> str:
        if isinstance(request.format, dict) and request.format.get("title") == EXTRACTION:
            said = request.last_user_message
            items = [
                {"action": "add", "kind": "fact", "text": fact, "confidence": 0.9}
                for phrase, fact in FACTS.items()
                if phrase in said
            ]
            return json.dumps({"items": items})
        if request.format:
            return "{}"
        return "Noted."

    fake_ollama.reply_with(respond)


async def _say(caller: Caller, runtime: Runtime, persona_id: str, text: str) -> None:
    reply = await caller.post(f"/api/personas/{persona_id}/chat", json={"message": text})
    assert reply.status == 200, reply.data
    await runtime.background.drain()  # learning has run


def _last_prompt(fake: FakeOllama) -> str:
    messages: list[dict[str, Any]] = reply_prompts(fake)[-1].json["messages"]
    return "\n".join(str(m["content"]) for m in messages)


async def _rows_of(user_id: int) -> int:
    """The user's rows in every memory-bearing table."""
    conn = Tortoise.get_connection("default")
    total = 0
    for table in ("messages", "conversations", "memory_items", "memory_revisions", "follow_ups"):
        rows = await conn.execute_query_dict(
            f"SELECT COUNT(*) AS n FROM {table} WHERE user_id = {int(user_id)}"
        )
        total += int(rows[0]["n"])
    return total


SPY = {"id": "spy", "name": "Spy", "shared": True, "sharing_group": "companions"}


@pytest.mark.both_databases
async def test_a_shared_persona_naming_a_system_group_never_reads_its_memory(
    alice: Caller, bob: Caller, runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    assert (await bob.post("/api/personas", json=SPY)).status == 201
    await _say(alice, runtime, "sage", "I play the cello")
    await _say(alice, runtime, "pip", "Any news?")
    assert "ALICE-CELLO" in _last_prompt(fake_ollama)  # pip shares sage's group

    await _say(alice, runtime, "spy", "Tell me what you know about me")

    assert "ALICE-CELLO" not in _last_prompt(fake_ollama)


@pytest.mark.both_databases
async def test_what_a_shared_persona_naming_a_system_group_learns_never_reaches_it(
    alice: Caller, bob: Caller, runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    assert (await bob.post("/api/personas", json=SPY)).status == 201
    await _say(alice, runtime, "spy", "I keep a diary")
    remembered = await alice.get("/api/personas/spy/memory")
    assert [i["text"] for i in remembered.data["items"]] == ["SPY-DIARY keeps a diary"]

    await _say(alice, runtime, "sage", "What do you remember?")

    assert "SPY-DIARY" not in _last_prompt(fake_ollama)


@pytest.mark.both_databases
async def test_a_new_persona_with_a_deleted_ones_id_starts_empty(
    alice: Caller, bob: Caller, runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    assert (await alice.post("/api/personas", json={"id": "diary", "name": "Diary"})).status == 201
    await _say(alice, runtime, "diary", "I keep bees")
    assert (await alice.get("/api/personas/diary/memory")).data["items"]
    assert await _rows_of(alice.id) > 0  # alice talked only to diary
    assert (await alice.call("DELETE", "/api/personas/diary")).status == 204
    assert await _rows_of(alice.id) == 0  # gone from the database, not just hidden

    created = await bob.post("/api/personas", json={"id": "diary", "name": "Diary"})
    memory = await bob.get("/api/personas/diary/memory")
    conversations = await bob.get("/api/personas/diary/conversations")
    await _say(bob, runtime, "diary", "I like jazz")

    assert created.status == 201
    assert memory.data["items"] == []
    assert conversations.data["conversations"] == []
    prompt = _last_prompt(fake_ollama)
    assert "ALICE-BEES" not in prompt and "I keep bees" not in prompt


@pytest.mark.both_databases
async def test_another_users_private_id_is_free_and_not_revealed(
    alice: Caller, bob: Caller, make_caller: Any, runtime: Runtime
) -> None:
    await alice.post("/api/personas", json={"id": "diary", "name": "Alice's diary"})
    await _say(alice, runtime, "diary", "I keep bees")

    created = await bob.post("/api/personas", json={"id": "diary", "name": "Bob's diary"})

    assert created.status == 201  # no 409: that would tell Bob the id exists
    assert (await alice.get("/api/personas/diary")).data["name"] == "Alice's diary"
    assert (await bob.get("/api/personas/diary")).data["name"] == "Bob's diary"
    assert (await bob.get("/api/personas/diary/memory")).data["items"] == []
    carol = await make_caller("carol")
    assert (await carol.get("/api/personas/diary")).status == 404


@pytest.mark.both_databases
async def test_a_shared_id_is_public_so_a_second_shared_persona_cannot_take_it(
    alice: Caller, bob: Caller
) -> None:
    await alice.post("/api/personas", json={"id": "guide", "name": "Guide", "shared": True})

    shared = await bob.post("/api/personas", json={"id": "guide", "name": "G", "shared": True})
    private = await bob.post("/api/personas", json={"id": "guide", "name": "Mine"})
    publish = await bob.call("PATCH", "/api/personas/guide", json={"shared": True})
    system = await bob.post("/api/personas", json={"id": "sage", "name": "Not sage"})

    assert shared.status == 409 and system.status == 409 and publish.status == 409
    assert private.status == 201
    assert (await bob.get("/api/personas/guide")).data["name"] == "Mine"  # his own first
    assert (await alice.get("/api/personas/guide")).data["name"] == "Guide"
