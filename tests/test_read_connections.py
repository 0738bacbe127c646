"""SQLite reads a turn waits on: on the event loop's thread when they need no
waiting, in the read pool's threads when they do."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from personae.storage.connections import QUICK_STEPS, SqliteReadPool


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "reads.db"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.execute("INSERT INTO notes (text) VALUES ('first')")
    connection.commit()
    connection.close()
    return path


@pytest.fixture
def pool(db_path: Path) -> Iterator[SqliteReadPool]:
    pool = SqliteReadPool(str(db_path), busy_timeout_ms=10_000)
    yield pool
    pool.close()


def threads_started(pool: SqliteReadPool) -> int:
    return len(pool._executor._threads)


async def test_a_quick_read_runs_on_the_calling_thread(pool: SqliteReadPool) -> None:
    rows = await pool.fetch_quick("SELECT text FROM notes WHERE id = ?", [1])
    assert rows == [("first",)]
    assert threads_started(pool) == 0


async def test_a_quick_read_sees_what_another_connection_just_committed(
    pool: SqliteReadPool, db_path: Path
) -> None:
    assert await pool.fetch_quick("SELECT MAX(id) FROM notes", []) == [(1,)]
    writer = sqlite3.connect(db_path)
    writer.execute("INSERT INTO notes (text) VALUES ('second')")
    writer.commit()
    writer.close()
    assert await pool.fetch_quick("SELECT MAX(id) FROM notes", []) == [(2,)]


async def test_a_quick_read_that_would_wait_for_a_lock_waits_in_a_thread(
    pool: SqliteReadPool, db_path: Path
) -> None:
    # A connection in exclusive locking mode keeps readers out until it lets go.
    holder = sqlite3.connect(db_path, check_same_thread=False)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("INSERT INTO notes (text) VALUES ('while locked')")
    holder.commit()
    read = asyncio.ensure_future(pool.fetch_quick("SELECT text FROM notes ORDER BY id", []))
    for _ in range(5):  # the event loop keeps running while the read waits
        await asyncio.sleep(0)
    assert not read.done()
    assert threads_started(pool) == 1
    holder.close()  # lets go of the lock
    assert await read == [("first",), ("while locked",)]


async def test_a_quick_read_over_its_step_budget_finishes_in_a_thread(
    pool: SqliteReadPool,
) -> None:
    count = QUICK_STEPS * 10
    rows = await pool.fetch_quick(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "SELECT COUNT(*) FROM n",
        [count],
    )
    assert rows == [(count,)]
    assert threads_started(pool) == 1
    # The interrupted statement left the connection usable for the next quick read.
    assert await pool.fetch_quick("SELECT text FROM notes", []) == [("first",)]
    assert threads_started(pool) == 1


async def test_a_failing_quick_read_raises_the_databases_error(pool: SqliteReadPool) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await pool.fetch_quick("SELECT * FROM missing", [])
