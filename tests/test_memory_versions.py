"""The memory version recall's cache is checked against, on SQLite and PostgreSQL.

Database triggers move a user's version on every change of their items that
recall reads, whoever writes it. These tests write "from another process" (a
connection of their own, bypassing the store) and expect the next recall to see
the change, though the same candidates were recalled, and cached, just before."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import asyncpg

from personae.core.runtime import Runtime
from personae.core.types import Scope
from personae.storage.recall import memory_version


async def elsewhere(db_url: str, sql: str, *params: Any) -> None:
    """Run ``sql`` (``?`` placeholders) on a connection of its own and commit."""
    if db_url.startswith("sqlite://"):
        with closing(sqlite3.connect(db_url.removeprefix("sqlite://"))) as conn:
            conn.execute("PRAGMA foreign_keys = ON")  # as personae's own connections
            conn.execute(sql, [str(p) if isinstance(p, datetime) else p for p in params])
            conn.commit()
        return
    pieces = sql.split("?")
    numbered = pieces[0] + "".join(f"${n}{p}" for n, p in enumerate(pieces[1:], start=1))
    conn = await asyncpg.connect(db_url.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        await conn.execute(numbered, *params)
    finally:
        await conn.close()


async def texts(runtime: Runtime, scope: Scope, query: str) -> list[str]:
    return sorted(item.text for item in await runtime.memory.recall([scope], query))


async def test_the_version_moves_with_every_change_recall_reads_and_not_with_uses(
    runtime: Runtime, db_url: str
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    scope = Scope("sage", ann)
    assert await memory_version(ann) == 0
    item = await runtime.memory.add(scope, "Keeps bees")
    added = await memory_version(ann)
    assert added > 0

    runtime.memory.note_use([scope], [item.id])
    assert await runtime.memory.flush_uses() == 1
    assert await memory_version(ann) == added  # use counts are not what recall reads

    await runtime.memory.update(scope, item.id, text="Keeps two hives of bees")
    updated = await memory_version(ann)
    assert updated > added
    await elsewhere(db_url, "UPDATE memory_items SET confidence = 0.1 WHERE id = ?", item.id)
    assert await memory_version(ann) > updated

    before = await memory_version(ann)
    await elsewhere(db_url, "DELETE FROM users WHERE id = ?", ann)  # items go with the user
    gone = await memory_version(ann)
    assert gone > before  # and the version stays: it never counts from 0 again


async def test_recall_sees_what_another_process_changed_since_it_cached_the_rows(
    runtime: Runtime, db_url: str
) -> None:
    ann = await runtime.users.resolve("cli", "ann", "Ann")
    scope = Scope("sage", ann)
    bees = await runtime.memory.add(scope, "Keeps bees on the roof")
    hives = await runtime.memory.add(scope, "Sells honey from the bees")
    for _ in range(2):  # the second recall reuses the cached candidates
        assert await texts(runtime, scope, "bees?") == [bees.text, hives.text]

    await elsewhere(db_url, "DELETE FROM memory_items WHERE id = ?", bees.id)
    assert await texts(runtime, scope, "bees?") == [hives.text]

    now = datetime.now(UTC)
    await elsewhere(
        db_url,
        "UPDATE memory_items SET text = ?, updated_at = ? WHERE id = ?",
        "Sells honey and wax from the bees",
        now,
        hives.id,
    )
    assert await texts(runtime, scope, "bees?") == ["Sells honey and wax from the bees"]

    await elsewhere(
        db_url,
        "INSERT INTO memory_items (persona_id, user_id, kind, text, confidence, "
        "source_message_ids, uses, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "sage",
        ann,
        "fact",
        "Was stung by the bees twice",
        0.9,
        "[]",
        0,
        now,
        now,
    )
    assert await texts(runtime, scope, "bees?") == [
        "Sells honey and wax from the bees",
        "Was stung by the bees twice",
    ]
    # The store's own listing (learning reads it) follows the same version; of
    # two items updated at the same time, the newer one comes first.
    listed = await runtime.memory.list(scope, limit=10)
    assert [i.text for i in listed] == [
        "Was stung by the bees twice",
        "Sells honey and wax from the bees",
    ]
