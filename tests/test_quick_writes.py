"""The write every turn makes (its two messages), on SQLite: on the event loop's
thread while Tortoise's connection is idle, through Tortoise while a statement
or transaction of its is under way, and the WAL checkpointed all the same."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.transactions import in_transaction

from personae.core.runtime import Runtime
from personae.core.types import Scope, Turn
from personae.storage import HistoryStore, connections
from personae.storage.models import MemoryItem


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """What is tested here is SQLite's alone (PostgreSQL writes through Tortoise)."""
    return f"sqlite://{tmp_path / 'writes.db'}"


def message_inserts(caplog: pytest.LogCaptureFixture, logger: str) -> int:
    return sum(
        1
        for record in caplog.records
        if record.name == logger and "INSERT INTO messages" in str(record.args)
    )


async def test_a_turns_messages_are_written_on_the_loop_thread(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    await runtime.reply(Turn(ann, "sage", "first", "c"))  # creates the conversation
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        caplog.set_level(logging.DEBUG, logger="personae.storage.connections")
        reply = await runtime.reply(Turn(ann, "sage", "second", "c"))
    assert message_inserts(caplog, "tortoise.db_client") == 0
    assert message_inserts(caplog, "personae.storage.connections") == 1
    stored = await HistoryStore().recent(Scope("sage", ann), "c", 10)  # as another process
    assert [m.content for m in stored][-2:] == ["second", reply.text]
    assert stored[-1].id == reply.reply_message_id


async def test_while_a_transaction_is_open_the_write_waits_its_turn(runtime: Runtime) -> None:
    """A transaction that reads, then writes, must not find the database changed
    in between (SQLite would refuse its write): the exchange waits for it."""
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    scope = Scope("sage", ann)
    await runtime.history.append_exchange(scope, "c", "one", "two")
    async with in_transaction("default") as tx:
        await tx.execute_query("SELECT COUNT(*) FROM messages")  # the transaction's snapshot
        # Another task, as a turn is (not one started inside the transaction).
        exchange = asyncio.get_running_loop().create_task(
            runtime.history.append_exchange(scope, "c", "q", "a"), context=contextvars.Context()
        )
        await asyncio.sleep(0.05)
        assert not exchange.done()
        await MemoryItem.create(
            persona_id="sage", user_id=ann, kind="fact", text="Keeps bees", using_db=tx
        )
    asked, said = await exchange
    stored = await HistoryStore().recent(scope, "c", 10)
    assert [(m.id, m.content) for m in stored][-2:] == [(asked, "q"), (said, "a")]
    assert [i.text for i in await runtime.memory.list(scope)] == ["Keeps bees"]


async def test_inside_a_transaction_the_write_is_the_transactions(runtime: Runtime) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    scope = Scope("sage", ann)
    await runtime.history.append_exchange(scope, "c", "one", "two")
    with pytest.raises(RuntimeError):
        async with in_transaction("default"):
            await runtime.history.append_exchange(scope, "c", "rolled", "back")
            raise RuntimeError("the transaction fails")
    stored = await HistoryStore().recent(scope, "c", 10)
    assert [m.content for m in stored] == ["one", "two"]


async def test_the_wal_is_checkpointed_on_tortoises_thread_every_so_many_writes(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "CHECKPOINT_EVERY", 3)
    client = Tortoise.get_connection("default")
    scripts: list[str] = []
    run_script = client.execute_script

    async def execute_script(query: str) -> Any:
        scripts.append(query)
        return await run_script(query)

    monkeypatch.setattr(client, "execute_script", execute_script)
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    scope = Scope("sage", ann)
    await runtime.history.append_exchange(scope, "c", "make", "the conversation")
    for n in range(6):
        await runtime.history.append_exchange(scope, "c", f"q{n}", f"a{n}")
    for _ in range(20):
        await asyncio.sleep(0)
    assert scripts.count("PRAGMA wal_checkpoint(PASSIVE)") == 2
