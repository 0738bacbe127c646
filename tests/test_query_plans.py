"""The statements of a turn seek through indexes: none scans a whole table or
index, so a turn costs the same with a thousand messages or a million (SQLite's
EXPLAIN QUERY PLAN, on the statements a real turn ran)."""

from __future__ import annotations

import logging
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from personae.core.runtime import Runtime
from personae.core.types import Scope, Turn
from personae.testing.fake_ollama import FakeOllama
from tests.conftest import make_settings

BIG_TABLES = ("messages", "memory_items", "conversations", "memory_versions", "users")


def scans(db: Path, sql: str, params: Any) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", list(params or [])).fetchall()
    return [
        detail for *_, detail in plan if re.match(rf"SCAN ({'|'.join(BIG_TABLES)}|[a-z])\b", detail)
    ]


async def test_a_turns_reads_seek_through_indexes(
    tmp_path: Path, fake_ollama: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "plans.db"
    settings = make_settings(tmp_path, fake_ollama, f"sqlite://{db}")
    runtime = Runtime(settings, load_entry_points=False)
    await runtime.start()
    try:
        ann = await runtime.users.resolve("cli", "ann", "Ann")
        await runtime.memory.add(Scope("sage", ann), "Keeps bees on the roof")
        await runtime.reply(Turn(ann, "sage", "Hello there", "c"))
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
            caplog.set_level(logging.DEBUG, logger="personae.storage.connections")
            for text in ("How are the bees?", "And the roof?"):  # cached history and memory
                await runtime.reply(Turn(ann, "sage", text, "c"))
            await runtime.history.conversations(Scope("sage", ann))
        await runtime.background.drain()
    finally:
        await runtime.stop()
    statements = [
        record.args
        for record in caplog.records
        if isinstance(record.args, tuple)
        and len(record.args) == 2
        and str(record.args[0]).lstrip().upper().startswith("SELECT")
    ]
    reads = {str(sql) for sql, _ in statements}
    assert any("memory_versions" in sql for sql in reads)  # recall's check ran
    assert any("MAX(m.id)" in sql for sql in reads)  # history's check ran
    assert any("messages" in sql and "c.key" in sql for sql in reads)  # the listing
    for sql, params in statements:
        assert scans(db, str(sql), params) == [], sql


async def test_recall_reads_its_candidates_from_one_index_on_sqlite(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    """A cold recall reads a user's items from the covering index (migration
    0006), in the order it wants them: no table page, no sort."""
    from personae.storage.recall import ROW_COLUMNS, _where

    db = tmp_path / "recall.db"
    runtime = Runtime(
        make_settings(tmp_path, fake_ollama, f"sqlite://{db}"), load_entry_points=False
    )
    await runtime.start()
    try:
        ann = await runtime.users.resolve("cli", "ann", "Ann")
        for text in ("Keeps bees", "Likes green tea", "Runs on Sundays"):
            await runtime.memory.add(Scope("sage", ann), text)
            await runtime.memory.add(Scope("pip", ann), text)
    finally:
        await runtime.stop()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("ANALYZE")
        for personas in (["sage"], ["pip", "sage"]):
            sql = f"SELECT {', '.join(ROW_COLUMNS)} {_where(len(personas))}"
            plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", [ann, *personas, 200]).fetchall()
            details = [detail for *_, detail in plan]
            assert any("COVERING INDEX idx_memory_items_recall" in d for d in details), details
            if len(personas) == 1:
                assert not any("TEMP B-TREE" in d for d in details), details
