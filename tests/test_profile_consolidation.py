"""Learning keeps every distinct fact: pairs of notes run through the real
learning path (a reply, then extraction by the fake Ollama answering with
structured JSON, then consolidation), on SQLite and on PostgreSQL, and what is
stored is checked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.core.clock import ManualClock
from personae.core.runtime import Runtime
from personae.core.types import Scope
from personae.testing.fake_ollama import FakeOllama
from tests.test_profile_learning import Script, add, say, settings_for


@pytest.fixture
def script(fake_ollama: FakeOllama) -> Script:
    return Script(fake_ollama)


@pytest.fixture
async def runtime(tmp_path: Path, fake_ollama: FakeOllama, db_url: str) -> AsyncIterator[Runtime]:
    settings = settings_for(tmp_path, fake_ollama, db_url)
    rt = Runtime(settings, load_entry_points=False, clock=ManualClock())
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def learn_in_turn(runtime: Runtime, script: Script, *notes: str) -> Scope:
    """Each note learned from a turn of its own, in order; the scope they went to."""
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    for note in notes:
        script.learn(add(note))
        await say(runtime, ann, f"About me: {note}")
    return Scope("sage", ann)


async def stored(runtime: Runtime, scope: Scope) -> list[str]:
    return sorted(item.text for item in await runtime.memory.list(scope))


@pytest.mark.parametrize(
    "notes",
    [
        ("Takes vitamin D", "Takes vitamin B"),
        ("Has a cat aged 3", "Has a cat aged 9"),
        ("Programs in C++", "Programs in C#", "Programs in C"),
        ("Programs in C", "Programs in C#", "Programs in C++"),
        ("Remembers the code word X_400", "Remembers the code word X_0"),
        (
            "Remembers the code word X_0",
            "Remembers the code word X_400",
            "Remembers the code word X_7",
        ),
    ],
    ids=["vitamins", "cat-ages", "c-family", "c-family-reversed", "code-words", "short-code-first"],
)
async def test_notes_that_differ_in_a_letter_a_number_or_a_symbol_are_all_kept(
    runtime: Runtime, script: Script, notes: tuple[str, ...]
) -> None:
    scope = await learn_in_turn(runtime, script, *notes)
    assert await stored(runtime, scope) == sorted(notes)
    assert await runtime.memory.revisions(scope) == []


async def test_a_more_precise_note_updates_the_item_and_keeps_the_old_text(
    runtime: Runtime, script: Script
) -> None:
    scope = await learn_in_turn(runtime, script, "Works as a nurse at the city hospital")
    [old] = await runtime.memory.list(scope)
    script.learn(add("Works as a night nurse at the city hospital"))
    reply = await say(runtime, scope.user_id, "Night shifts, mostly")
    [item] = await runtime.memory.list(scope)
    assert (item.id, item.text) == (old.id, "Works as a night nurse at the city hospital")
    assert item.source_message_ids == [*old.source_message_ids, reply.user_message_id]
    [revision] = await runtime.memory.revisions(scope, item_id=item.id)
    assert (revision.action, revision.old_text, revision.new_text, revision.message_id) == (
        "update",
        "Works as a nurse at the city hospital",
        "Works as a night nurse at the city hospital",
        reply.user_message_id,
    )


async def test_a_vaguer_restatement_is_merged_into_the_precise_item(
    runtime: Runtime, script: Script
) -> None:
    scope = await learn_in_turn(
        runtime,
        script,
        "Works as a night nurse at the city hospital",
        "Works as a nurse at the city hospital",
    )
    assert await stored(runtime, scope) == ["Works as a night nurse at the city hospital"]
    [revision] = await runtime.memory.revisions(scope)
    assert (revision.action, revision.new_text) == (
        "merge",
        "Works as a nurse at the city hospital",
    )


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ("Has a sister and a brother", "has a brother, and a sister."),
        ("Lives in Berlin", "The user lives in berlin"),
        ("Programs in C++", "programs in c++!"),
    ],
)
async def test_true_duplicates_are_merged_and_the_merge_is_recorded(
    runtime: Runtime,
    script: Script,
    first: str,
    again: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scope = await learn_in_turn(runtime, script, first)
    [old] = await runtime.memory.list(scope)
    script.learn(add(again, confidence=0.95))
    with caplog.at_level(logging.INFO, logger="personae.plugins.profile"):
        reply = await say(runtime, scope.user_id, "As I said")
    [item] = await runtime.memory.list(scope)
    assert (item.id, item.text, item.confidence) == (old.id, first, 0.95)
    assert item.source_message_ids == [*old.source_message_ids, reply.user_message_id]
    [revision] = await runtime.memory.revisions(scope, item_id=item.id)
    assert (revision.action, revision.old_text, revision.new_text) == ("merge", first, again)
    assert revision.message_id == reply.user_message_id
    assert revision.source_message_ids == [reply.user_message_id]
    merges = [r.getMessage() for r in caplog.records if "merged" in r.getMessage()]
    assert merges == [
        f"profile: sage/{scope.user_id} merged {again!r} into item {old.id} {first!r}"
    ]


async def test_a_negated_note_retires_the_item_it_contradicts(
    runtime: Runtime, script: Script
) -> None:
    scope = await learn_in_turn(runtime, script, "Is vegetarian")
    [old] = await runtime.memory.list(scope)
    script.learn(add("Is not vegetarian"))
    reply = await say(runtime, scope.user_id, "Not any more")
    assert await stored(runtime, scope) == ["Is not vegetarian"]
    [revision] = await runtime.memory.revisions(scope)
    assert (revision.item_id, revision.action, revision.old_text, revision.message_id) == (
        old.id,
        "retire",
        "Is vegetarian",
        reply.user_message_id,
    )


async def test_an_update_that_changes_only_case_keeps_the_text_and_records_a_merge(
    runtime: Runtime, script: Script
) -> None:
    scope = await learn_in_turn(runtime, script, "Programs in C++")
    [old] = await runtime.memory.list(scope)
    change = {"action": "update", "item_id": old.id, "kind": "interest", "confidence": 0.9}
    script.learn(change | {"text": "programs in c++"})
    await say(runtime, scope.user_id, "C++ indeed")
    [item] = await runtime.memory.list(scope)
    assert (item.text, item.kind) == ("Programs in C++", "interest")
    assert [r.action for r in await runtime.memory.revisions(scope)] == ["merge"]


async def test_an_update_from_c_plus_plus_to_c_sharp_changes_the_text(
    runtime: Runtime, script: Script
) -> None:
    scope = await learn_in_turn(runtime, script, "Programs in C++")
    [old] = await runtime.memory.list(scope)
    change = {"action": "update", "item_id": old.id, "kind": "fact", "confidence": 0.9}
    script.learn(change | {"text": "Programs in C#"})
    await say(runtime, scope.user_id, "Sorry, C# I meant")
    assert await stored(runtime, scope) == ["Programs in C#"]
    [revision] = await runtime.memory.revisions(scope)
    assert (revision.action, revision.old_text) == ("update", "Programs in C++")
