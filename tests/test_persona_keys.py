"""Persona identity at the runtime level, on SQLite and PostgreSQL: memory lives
under a persona's immutable key, a sharing group belongs to one owner, deleting
a persona deletes what it holds for everyone, and deleting an account leaves no
row that names it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from tortoise import Tortoise

from personae.core.cards import PersonaCard
from personae.core.errors import CardError
from personae.core.runtime import Runtime
from personae.core.types import Scope, Turn
from personae.storage.accounts import AccountStore
from personae.storage.database import Database
from personae.storage.personas import new_key
from personae.testing.fake_ollama import FakeOllama
from tests.conftest import make_settings, reply_prompts

PERSONA_KEYS = importlib.import_module("personae.storage.migrations.0009_persona_keys")

SPY = PersonaCard(id="spy", name="Spy", extensions={"personae": {"sharing_group": "companions"}})
DIARY = PersonaCard(id="diary", name="Diary")


def _prompt(fake: FakeOllama) -> str:
    return "\n".join(m["content"] for m in reply_prompts(fake)[-1].json["messages"])


async def _users(runtime: Runtime) -> tuple[int, int]:
    return (
        await runtime.users.resolve("test", "alice", "Alice"),
        await runtime.users.resolve("test", "bob", "Bob"),
    )


async def test_a_users_persona_naming_a_system_group_reads_none_of_its_memory(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    alice, bob = await _users(runtime)
    await runtime.personas.save(SPY, owner_id=bob, shared=True)
    await runtime.memory.add(Scope("sage", alice), "SAGE-SECRET plays the cello")

    await runtime.reply(Turn(alice, "pip", "hello", "c"))
    pip_prompt = _prompt(fake_ollama)
    await runtime.reply(Turn(alice, "spy", "hello", "c"))

    assert "SAGE-SECRET" in pip_prompt  # system personas of one group share
    assert "SAGE-SECRET" not in _prompt(fake_ollama)


async def test_what_a_users_persona_in_a_system_group_remembers_never_reaches_it(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    alice, bob = await _users(runtime)
    spy = await runtime.personas.save(SPY, owner_id=bob, shared=True)
    await runtime.memory.add(spy.scope(alice), "SPY-LEARNED keeps a diary")

    await runtime.reply(Turn(alice, "sage", "hello", "c"))

    assert "SPY-LEARNED" not in _prompt(fake_ollama)
    scopes = await runtime.personas.readable_scopes(spy.card, spy.scope(alice))
    assert scopes == [spy.scope(alice)]


async def test_a_users_own_personas_of_one_group_share_with_each_other(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    alice, _ = await _users(runtime)
    group = {"personae": {"sharing_group": "mine"}}
    one = await runtime.personas.save(
        PersonaCard(id="one", name="One", extensions=group), owner_id=alice
    )
    await runtime.personas.save(PersonaCard(id="two", name="Two", extensions=group), owner_id=alice)
    await runtime.memory.add(one.scope(alice), "ONE-NOTED likes rain")

    await runtime.reply(Turn(alice, "two", "hello", "c"))

    assert "(fact, noted by one) ONE-NOTED likes rain" in _prompt(fake_ollama)


async def test_custom_personas_get_fresh_keys_and_system_ones_their_id(runtime: Runtime) -> None:
    alice, bob = await _users(runtime)
    mine = await runtime.personas.save(DIARY, owner_id=alice)
    theirs = await runtime.personas.save(DIARY, owner_id=bob)
    system = await runtime.personas.save(PersonaCard(id="lore", name="Lore"), owner_id=None)
    edited = await runtime.personas.save(DIARY.model_copy(update={"name": "D"}), owner_id=alice)

    assert mine.key != theirs.key and mine.key != "diary" and len(mine.key) <= 64
    assert edited.key == mine.key  # an edit keeps the identity
    assert system.key == "lore" and (await runtime.personas.entry("sage")).key == "sage"
    assert (await runtime.personas.entry("diary", viewer=bob)).key == theirs.key


async def test_deleting_a_persona_deletes_what_every_user_stored_under_it(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    alice, bob = await _users(runtime)
    old = await runtime.personas.save(DIARY, owner_id=alice, shared=True)
    await runtime.reply(Turn(alice, "diary", "ALICE-SAID hello", "c"))
    await runtime.reply(Turn(bob, "diary", "BOB-SAID hello", "c"))
    for user in (alice, bob):
        await runtime.memory.add(old.scope(user), "OLD-FACT keeps bees")
        await runtime.plugin_state.set(old.scope(user), "mood", "level", 3)

    assert await runtime.delete_persona(old)

    conn = Tortoise.get_connection("default")
    for table in ("messages", "conversations", "memory_items", "plugin_state"):
        rows = await conn.execute_query_dict(
            f"SELECT COUNT(*) AS n FROM {table} WHERE persona_id = '{old.key}'"
        )
        assert rows[0]["n"] == 0, table


async def test_a_new_persona_with_a_deleted_ones_id_sees_nothing_of_it(
    runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    alice, bob = await _users(runtime)
    old = await runtime.personas.save(DIARY, owner_id=alice)
    await runtime.reply(Turn(alice, "diary", "ALICE-SAID I keep bees", "c"))
    await runtime.memory.add(old.scope(alice), "OLD-FACT keeps bees")
    await runtime.delete_persona(old)
    await runtime.memory.add(old.scope(alice), "LATE-WRITE from a turn in flight")

    new = await runtime.personas.save(DIARY, owner_id=bob)
    await runtime.reply(Turn(bob, "diary", "hello", "c"))

    prompt = _prompt(fake_ollama)
    assert "ALICE-SAID" not in prompt and "OLD-FACT" not in prompt and "LATE-WRITE" not in prompt
    assert new.key != old.key
    assert await runtime.memory.list(new.scope(bob)) == []


async def test_deleting_an_account_leaves_no_row_that_names_it(
    runtime: Runtime, fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    alice, bob = await _users(runtime)
    accounts = AccountStore(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    account = await accounts.create("carol", "correct horse battery")
    carol = account.id
    await runtime.users.link(carol, "discord", "4242")
    await accounts.create_token(carol, "t")
    own = await runtime.personas.save(DIARY, owner_id=carol, shared=True)
    avatar = runtime.settings.data_dir / "avatars" / ("a" * 32 + ".png")
    avatar.parent.mkdir(parents=True, exist_ok=True)
    avatar.write_bytes(b"png")
    await runtime.personas.save(
        own.card.with_settings(avatar=avatar.name), owner_id=carol, shared=True
    )
    await runtime.reply(Turn(carol, "sage", "hello", "c"))
    await runtime.reply(Turn(alice, "diary", "ALICE-SAID hi", "c"))  # alice talks to carol's
    await runtime.memory.add(Scope("sage", carol), "Carol fact")
    await runtime.plugin_state.set(Scope("sage", carol), "mood", "level", 1)
    await runtime.memory.add(Scope("sage", alice), "Alice fact")

    counts = await runtime.delete_user(carol)

    assert counts["account"] > 0
    conn = Tortoise.get_connection("default")
    for table, column in (
        ("users", "id"),
        ("identities", "user_id"),
        ("personas", "owner_id"),
        ("conversations", "user_id"),
        ("messages", "user_id"),
        ("memory_items", "user_id"),
        ("memory_revisions", "user_id"),
        ("memory_versions", "user_id"),
        ("follow_ups", "user_id"),
        ("api_tokens", "user_id"),
        ("web_sessions", "user_id"),
        ("plugin_state", "user_id"),
        ("voice_samples", "owner_id"),
        ("voice_usage", "user_id"),
    ):
        rows = await conn.execute_query_dict(
            f"SELECT COUNT(*) AS n FROM {table} WHERE {column} = {int(carol)}"
        )
        assert rows[0]["n"] == 0, table
    rows = await conn.execute_query_dict(
        f"SELECT COUNT(*) AS n FROM messages WHERE persona_id = '{own.key}'"
    )
    assert rows[0]["n"] == 0  # what alice told carol's persona went with it
    assert not avatar.exists()
    assert [i.text for i in await runtime.memory.list(Scope("sage", alice))] == ["Alice fact"]
    assert await runtime.users.get(bob) is not None


async def test_migration_keys_existing_personas_by_their_id_and_keeps_their_data(
    tmp_path: Path, fake_ollama: FakeOllama, db_url: str
) -> None:
    settings = make_settings(tmp_path, fake_ollama, db_url)
    async with Runtime(settings, load_entry_points=False) as rt:
        alice = await rt.users.resolve("test", "alice", "Alice")
        conn = Tortoise.get_connection("default")
        dialect = conn.capabilities.dialect
        for sql in (
            PERSONA_KEYS.SQLITE_BACKWARD if dialect == "sqlite" else PERSONA_KEYS.POSTGRES_BACKWARD
        ):
            await conn.execute_script(sql)
        await conn.execute_script(
            "DELETE FROM tortoise_migrations WHERE name = '0009_persona_keys'"
        )
        await conn.execute_query(
            "INSERT INTO personas (id, card, shared, created_at, updated_at, owner_id) VALUES "
            '(\'old\', \'{"name": "Old", "id": "old"}\', false, CURRENT_TIMESTAMP, '
            f"CURRENT_TIMESTAMP, {int(alice)})"
        )
        await rt.memory.add(Scope("old", alice), "Stored before keys")
    assert await Database(settings.db_url).migrate() == ["personae.0009_persona_keys"]

    async with Runtime(settings, load_entry_points=False) as rt:
        entry = await rt.personas.entry("old", viewer=alice)
        texts = [i.text for i in await rt.memory.list(entry.scope(alice))]

    assert entry.key == "old" and entry.owner_id == alice
    assert texts == ["Stored before keys"]


async def test_an_owner_has_one_persona_per_id_even_when_two_are_saved_at_once(
    runtime: Runtime,
) -> None:
    alice, bob = await _users(runtime)
    store = runtime.personas.store
    await store.save(new_key(), "diary", {"name": "One"}, owner_id=alice)

    with pytest.raises(CardError, match="already have a persona with id 'diary'"):
        await store.save(new_key(), "diary", {"name": "Two"}, owner_id=alice)
    await store.save(new_key(), "diary", {"name": "Bob's"}, owner_id=bob)

    assert sorted(s.owner_id or 0 for s in await store.with_id("diary")) == sorted([alice, bob])
