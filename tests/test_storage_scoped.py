"""The scoped stores, on SQLite and PostgreSQL: every read and write stays in its scope."""

from __future__ import annotations

import asyncio

import pytest

from personae.core.runtime import Runtime
from personae.core.types import Scope
from personae.storage import connections
from personae.storage.connections import has_read_pool
from personae.storage.models import Identity, User


async def test_memory_written_in_one_scope_is_invisible_from_every_other(runtime: Runtime) -> None:
    alice = await runtime.users.resolve("cli", "alice")
    bob = await runtime.users.resolve("cli", "bob")
    await runtime.memory.add(Scope("sage", alice), "Alice keeps bees")
    assert [i.text for i in await runtime.memory.list(Scope("sage", alice))] == ["Alice keeps bees"]
    assert await runtime.memory.list(Scope("scav", alice)) == []
    assert await runtime.memory.list(Scope("sage", bob)) == []
    assert await runtime.memory.recall([Scope("scav", alice)], "bees") == []


async def test_an_item_cannot_be_read_changed_or_deleted_through_another_scope(
    runtime: Runtime,
) -> None:
    alice = await runtime.users.resolve("cli", "alice")
    bob = await runtime.users.resolve("cli", "bob")
    item = await runtime.memory.add(Scope("sage", alice), "Alice is allergic to cats")
    for intruder in (Scope("sage", bob), Scope("scav", alice)):
        assert await runtime.memory.get(intruder, item.id) is None
        assert await runtime.memory.update(intruder, item.id, text="hacked") is None
        assert await runtime.memory.delete(intruder, item.id) is False
    stored = await runtime.memory.get(Scope("sage", alice), item.id)
    assert stored is not None and stored.text == "Alice is allergic to cats"


async def test_recall_prefers_items_that_match_the_message(runtime: Runtime) -> None:
    user = await runtime.users.resolve("cli", "carol")
    scope = Scope("sage", user)
    await runtime.memory.add(scope, "Carol plays the cello in an orchestra")
    await runtime.memory.add(scope, "Carol's favourite food is ramen")
    await runtime.memory.add(scope, "Carol lives in Lisbon")
    recalled = await runtime.memory.recall([scope], "What should I cook? I love ramen", max_items=1)
    assert [i.text for i in recalled] == ["Carol's favourite food is ramen"]


async def test_recall_stays_within_its_token_budget(runtime: Runtime) -> None:
    user = await runtime.users.resolve("cli", "dave")
    scope = Scope("sage", user)
    for n in range(20):
        await runtime.memory.add(scope, f"Dave fact number {n} " + "x" * 80)
    recalled = await runtime.memory.recall([scope], "fact", budget_tokens=100, max_items=50)
    assert 1 <= len(recalled) <= 4
    assert sum((len(i.text) + 3) // 4 for i in recalled) <= 100


async def test_history_is_kept_per_persona_user_and_conversation(runtime: Runtime) -> None:
    alice = await runtime.users.resolve("cli", "alice")
    await runtime.history.append_exchange(Scope("sage", alice), "c1", "hi sage", "hello")
    await runtime.history.append_exchange(Scope("scav", alice), "c1", "hi scav", "eh?")
    await runtime.history.append_exchange(Scope("sage", alice), "c2", "other thread", "yes")
    sage_c1 = await runtime.history.recent(Scope("sage", alice), "c1", 10)
    assert [m.content for m in sage_c1] == ["hi sage", "hello"]
    assert [m.content for m in await runtime.history.recent(Scope("scav", alice), "c1", 10)] == [
        "hi scav",
        "eh?",
    ]


async def test_history_pages_backwards_by_message_id(runtime: Runtime) -> None:
    user = await runtime.users.resolve("cli", "erin")
    scope = Scope("sage", user)
    for n in range(5):
        await runtime.history.append_exchange(scope, "c", f"q{n}", f"a{n}")
    last = await runtime.history.page(scope, "c", limit=4)
    assert [m.content for m in last] == ["q3", "a3", "q4", "a4"]
    earlier = await runtime.history.page(scope, "c", before=last[0].id, limit=4)
    assert [m.content for m in earlier] == ["q1", "a1", "q2", "a2"]


async def test_clearing_a_conversation_leaves_the_others(runtime: Runtime) -> None:
    user = await runtime.users.resolve("cli", "fay")
    scope = Scope("sage", user)
    await runtime.history.append_exchange(scope, "a", "1", "2")
    await runtime.history.append_exchange(scope, "b", "3", "4")
    assert await runtime.history.clear(scope, "a") == 2
    assert await runtime.history.recent(scope, "a", 10) == []
    assert len(await runtime.history.recent(scope, "b", 10)) == 2


async def test_concurrent_first_messages_from_one_identity_create_one_user(
    runtime: Runtime,
) -> None:
    ids = await asyncio.gather(*(runtime.users.resolve("discord", "42", "Zed") for _ in range(10)))
    assert len(set(ids)) == 1
    assert await User.all().count() == 1
    assert await Identity.filter(platform="discord", external_id="42").count() == 1


async def test_concurrent_exchanges_in_one_new_conversation_lose_nothing(
    runtime: Runtime,
) -> None:
    user = await runtime.users.resolve("cli", "gus")
    scope = Scope("sage", user)
    await asyncio.gather(
        *(runtime.history.append_exchange(scope, "new", f"q{n}", f"a{n}") for n in range(10))
    )
    stored = await runtime.history.recent(scope, "new", 100)
    assert len(stored) == 20
    assert {m.content for m in stored if m.role == "user"} == {f"q{n}" for n in range(10)}


async def test_forget_one_persona_keeps_the_others(runtime: Runtime) -> None:
    user = await runtime.users.resolve("cli", "hal")
    await runtime.memory.add(Scope("sage", user), "sage knows this")
    await runtime.memory.add(Scope("scav", user), "scav knows this")
    await runtime.history.append_exchange(Scope("sage", user), "c", "a", "b")
    counts = await runtime.forget_user(user, "sage")
    assert counts["profile"] == 1 and counts["history"] == 2
    assert await runtime.memory.list(Scope("sage", user)) == []
    assert [i.text for i in await runtime.memory.list(Scope("scav", user))] == ["scav knows this"]


async def test_export_gathers_every_plugins_data_under_its_name(runtime: Runtime) -> None:
    user = await runtime.users.resolve("cli", "ivy")
    await runtime.memory.add(Scope("sage", user), "Ivy collects stamps")
    await runtime.history.append_exchange(Scope("sage", user), "c", "hello", "hi")
    data = await runtime.export_user_data(user)
    assert data["user_id"] == user
    assert [i["text"] for i in data["plugins"]["profile"]] == ["Ivy collects stamps"]
    messages = data["plugins"]["history"][0]["messages"]
    assert [m["content"] for m in messages] == ["hello", "hi"]


async def test_plugin_state_is_kept_per_scope_and_plugin(runtime: Runtime) -> None:
    user = await runtime.users.resolve("cli", "jo")
    sage, scav = Scope("sage", user), Scope("scav", user)
    await runtime.plugin_state.set(sage, "mood", "level", 3)
    await runtime.plugin_state.set(sage, "mood", "level", 4)
    await asyncio.gather(*(runtime.plugin_state.set(scav, "mood", "level", n) for n in range(5)))
    assert await runtime.plugin_state.get(sage, "mood", "level") == 4
    assert await runtime.plugin_state.get(sage, "other", "level") is None
    assert await runtime.plugin_state.get(scav, "mood", "level") in range(5)
    assert await runtime.plugin_state.forget(user, "sage", "mood") == 1
    assert await runtime.plugin_state.items(sage, "mood") == {}
    assert list(await runtime.plugin_state.items(scav, "mood")) == ["level"]


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(runtime: Runtime) -> None:
    if not runtime.db.is_sqlite:
        pytest.skip("SQLite only")
    from tortoise import Tortoise

    conn = Tortoise.get_connection("default")
    assert (await conn.execute_query_dict("PRAGMA journal_mode"))[0]["journal_mode"] == "wal"
    assert (await conn.execute_query_dict("PRAGMA busy_timeout"))[0]["timeout"] >= 5000


async def test_plugin_state_keeps_any_json_value_including_plain_strings(
    runtime: Runtime,
) -> None:
    scope = Scope("sage", await runtime.users.resolve("cli", "kim"))
    for value in ["warm", "cold", {"a": [1, 2]}, 7, None, "8"]:
        await runtime.plugin_state.set(scope, "mood", "value", value)
        assert await runtime.plugin_state.get(scope, "mood", "value", default="x") == value


async def test_recall_sees_an_edited_item_at_once(runtime: Runtime) -> None:
    scope = Scope("sage", await runtime.users.resolve("cli", "lou"))
    item = await runtime.memory.add(scope, "Lou drinks green tea")
    assert [i.text for i in await runtime.memory.recall([scope], "tea")] == ["Lou drinks green tea"]
    await runtime.memory.update(scope, item.id, text="Lou drinks black tea")
    assert [i.text for i in await runtime.memory.recall([scope], "tea")] == ["Lou drinks black tea"]
    await runtime.memory.delete(scope, item.id)
    assert await runtime.memory.recall([scope], "tea") == []


async def test_the_history_kept_in_memory_follows_the_stored_history(runtime: Runtime) -> None:
    alice = await runtime.users.resolve("cli", "alice")
    bob = await runtime.users.resolve("cli", "bob")
    scope, other = Scope("sage", alice), Scope("sage", bob)
    history = runtime.history
    assert history.cached_recent(scope, "c", 4) is None  # never read
    await history.recent(scope, "c", 4)
    assert history.cached_recent(scope, "c", 4) == []
    for n in range(3):
        await history.append_exchange(scope, "c", f"q{n}", f"a{n}")
    await history.append_exchange(other, "c", "bob's", "not alice's")
    cached = history.cached_recent(scope, "c", 4)
    stored = await history.recent(scope, "c", 4)
    assert cached is not None
    assert [(m.id, m.content) for m in cached] == [(m.id, m.content) for m in stored]
    assert [m.content for m in cached] == ["q1", "a1", "q2", "a2"]
    assert await history.last_id(scope, "c") == stored[-1].id
    assert await history.last_id(other, "c") != stored[-1].id
    assert history.cached_recent(scope, "c", 5) is None  # read with a smaller limit
    assert history.cached_recent(other, "c", 1) is None  # bob's was never read here
    await history.clear(scope, "c")
    assert history.cached_recent(scope, "c", 4) is None
    assert await history.last_id(scope, "c") is None


async def test_conversations_are_listed_by_their_last_message(runtime: Runtime) -> None:
    alice = await runtime.users.resolve("cli", "alice")
    scope = Scope("sage", alice)
    await runtime.history.append_exchange(scope, "older", "hi", "hello")
    await runtime.history.append_exchange(scope, "newer", "hi", "hello")
    await runtime.history.append_exchange(scope, "older", "again", "hello again")
    listed = await runtime.history.conversations(scope)
    assert [row["key"] for row in listed] == ["older", "newer"]
    assert listed[0]["updated_at"] >= listed[1]["updated_at"] >= listed[1]["created_at"]


async def test_sqlite_history_reads_have_their_own_connections(runtime: Runtime) -> None:
    # So a turn's history check does not queue behind other turns' writes;
    # PostgreSQL's connection is a pool already.
    assert has_read_pool() is runtime.db.is_sqlite
    alice = await runtime.users.resolve("cli", "alice")
    scope = Scope("sage", alice)
    await runtime.history.append_exchange(scope, "c", "hi", "hello")
    stored = await runtime.history.recent(scope, "c", 2)
    assert [m.content for m in stored] == ["hi", "hello"]
    assert all(m.created_at is not None and m.created_at.tzinfo for m in stored)
    assert await runtime.history.last_id(scope, "c") == stored[-1].id


async def test_last_message_checks_made_together_share_one_query(runtime: Runtime) -> None:
    if runtime.db.is_sqlite:
        pytest.skip("on SQLite each check is a quick read on the event loop's thread")
    users = [await runtime.users.resolve("cli", f"u{n}") for n in range(30)]
    expected = {}
    for n, user in enumerate(users[:20]):
        ids = await runtime.history.append_exchange(Scope("sage", user), "c", f"q{n}", f"a{n}")
        expected[user] = ids[1]
    statements = 0
    original = connections.fetch_quick

    async def counted(sql: str, params: list[object]) -> list[tuple[object, ...]]:
        nonlocal statements
        statements += 1
        return await original(sql, params)

    connections.fetch_quick = counted  # type: ignore[assignment]
    try:
        found = await asyncio.gather(
            *(runtime.history.last_id(Scope("sage", user), "c") for user in users)
        )
    finally:
        connections.fetch_quick = original  # type: ignore[assignment]
    assert statements == 1
    assert found == [expected.get(user) for user in users]  # None: never talked
