"""Memory over HTTP and the data contract: list, edit and delete what a persona
remembers; export everything; forget me for one persona or all, completely."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import Caller
from tortoise import Tortoise

from personae.core.runtime import Runtime
from personae.core.types import Scope
from personae.plugins.profile.consolidation import consolidate
from personae.plugins.profile.extraction import Candidate

SCOPED_TABLES = ("messages", "conversations", "memory_items", "memory_revisions", "follow_ups")


async def _rows(user_id: int, persona_id: str | None = None) -> dict[str, int]:
    """Rows per user-scoped table, counted straight from the database."""
    conn = Tortoise.get_connection("default")
    counts = {}
    for table in SCOPED_TABLES:
        sql = f"SELECT COUNT(*) AS n FROM {table} WHERE user_id = {int(user_id)}"
        if persona_id is not None:
            sql += f" AND persona_id = '{persona_id}'"
        rows = await conn.execute_query_dict(sql)
        counts[table] = int(rows[0]["n"])
    return counts


async def _remember(caller: Caller, runtime: Runtime, persona_id: str, fact: str) -> int:
    await caller.post(f"/api/personas/{persona_id}/chat", json={"message": fact})
    item = await runtime.memory.add(Scope(persona_id, caller.id), fact)
    await runtime.followups.create(
        Scope(persona_id, caller.id),
        conversation="web:default",
        platform="web",
        topic="t",
        question=f"About {fact}?",
        due_at=datetime.now(UTC),
    )
    return item.id


async def test_listing_editing_and_deleting_memory_items(alice: Caller, runtime: Runtime) -> None:
    item_id = await _remember(alice, runtime, "sage", "alice plays the cello")

    listed = await alice.get("/api/personas/sage/memory")
    edited = await alice.call(
        "PATCH", f"/api/personas/sage/memory/{item_id}", json={"text": "alice plays the viola"}
    )
    other_persona = await alice.call("DELETE", f"/api/personas/pip/memory/{item_id}")
    deleted = await alice.call("DELETE", f"/api/personas/sage/memory/{item_id}")

    assert [i["text"] for i in listed.data["items"]] == ["alice plays the cello"]
    assert edited.status == 200 and edited.data["text"] == "alice plays the viola"
    assert other_persona.status == 404  # an item lives in exactly one scope
    assert deleted.status == 204
    assert await runtime.memory.list(Scope("sage", alice.id)) == []


async def test_an_items_history_shows_what_was_merged_into_it_and_its_updates(
    alice: Caller, bob: Caller, runtime: Runtime
) -> None:
    item_id = await _remember(alice, runtime, "sage", "Works as a nurse")
    notes = [
        Candidate("add", "fact", "works as a nurse.", 0.9, message_ids=(41,)),
        Candidate("add", "fact", "Works as a night nurse", 0.9, message_ids=(42,)),
    ]
    async with runtime.memory.session(Scope("sage", alice.id)) as session:
        await consolidate(session, notes, message_id=42, max_items=100)

    history = await alice.get(f"/api/personas/sage/memory/{item_id}/history")
    not_bobs = await bob.call("GET", f"/api/personas/sage/memory/{item_id}/history")
    unknown = await alice.call("GET", "/api/personas/sage/memory/999999/history")

    assert history.data["item_id"] == item_id
    merged, updated = history.data["revisions"]
    assert (merged["action"], merged["old_text"], merged["new_text"]) == (
        "merge",
        "Works as a nurse",
        "works as a nurse.",
    )
    assert merged["source_message_ids"] == [41] and merged["message_id"] == 42
    assert (updated["action"], updated["old_text"], updated["new_text"]) == (
        "update",
        "Works as a nurse",
        "Works as a night nurse",
    )
    assert not_bobs.status == 404 and unknown.status == 404


async def test_export_contains_every_plugins_data_and_my_personas(
    alice: Caller, runtime: Runtime
) -> None:
    await _remember(alice, runtime, "sage", "alice plays the cello")
    await alice.post("/api/personas", json={"name": "Muse"})

    export = await alice.get("/api/me/export")
    one = await alice.get("/api/me/export?persona_id=pip")

    data = json.loads(export.body)
    assert "attachment" in export.headers["Content-Disposition"]
    assert data["format"] == "personae.export/1" and data["user_id"] == alice.id
    flat = json.dumps(data)
    assert "alice plays the cello" in flat
    assert data["account"]["username"] == "alice"
    assert [p["data"]["name"] for p in data["account"]["personas"]] == ["Muse"]
    assert "alice plays the cello" not in one.body.decode()


@pytest.mark.both_databases
async def test_forget_me_for_one_persona_deletes_everything_of_that_scope_only(
    alice: Caller, bob: Caller, runtime: Runtime
) -> None:
    await _remember(alice, runtime, "sage", "alice plays the cello")
    await _remember(alice, runtime, "pip", "alice has a cat")
    await _remember(bob, runtime, "sage", "bob has a dog")
    bob_before = await _rows(bob.id)

    forgot = await alice.call("DELETE", "/api/personas/sage/data")

    assert forgot.status == 200 and forgot.data["total"] >= 3
    await runtime.background.drain()
    assert await _rows(alice.id, "sage") == dict.fromkeys(SCOPED_TABLES, 0)
    assert (await _rows(alice.id, "pip"))["memory_items"] == 1
    assert await _rows(bob.id) == bob_before


@pytest.mark.both_databases
async def test_forget_me_everywhere_deletes_everything_about_me(
    alice: Caller, bob: Caller, runtime: Runtime
) -> None:
    await _remember(alice, runtime, "sage", "alice plays the cello")
    await _remember(alice, runtime, "pip", "alice has a cat")
    await _remember(bob, runtime, "sage", "bob has a dog")
    bob_before = await _rows(bob.id)

    forgot = await alice.call("DELETE", "/api/me/data")

    assert forgot.status == 200
    await runtime.background.drain()
    assert await _rows(alice.id) == dict.fromkeys(SCOPED_TABLES, 0)
    assert await _rows(bob.id) == bob_before
    export = json.loads((await alice.get("/api/me/export")).body)
    assert "alice" not in json.dumps(export["plugins"])


async def test_forget_me_works_for_a_persona_i_can_no_longer_see(
    alice: Caller, bob: Caller, runtime: Runtime
) -> None:
    await bob.post("/api/personas", json={"name": "Fleeting", "shared": True})
    await _remember(alice, runtime, "fleeting", "alice likes tea")
    await bob.call("PATCH", "/api/personas/fleeting", json={"shared": False})

    hidden = await alice.get("/api/personas/fleeting/memory")
    forgot = await alice.call("DELETE", "/api/me/data?persona_id=fleeting")

    assert hidden.status == 404
    assert forgot.status == 200
    assert await _rows(alice.id, "fleeting") == dict.fromkeys(SCOPED_TABLES, 0)
