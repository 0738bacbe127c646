"""Reads a turn waits on, kept from queueing behind other turns' writes.

Tortoise serializes the statements of its one SQLite connection, each holding the
connection for a whole round trip through aiosqlite's thread and back through a
busy event loop. Under load, the history a turn must check before its first token
then waits behind the exchanges fifty other turns are writing, and behind each
other when many turns start at once. On SQLite in WAL mode any number of
connections read while one writes, and see what it committed, so these reads go
to a small pool of threads with a connection each (:class:`SqliteReadPool`).
PostgreSQL's connection is already a pool: there :func:`fetch` uses it.

The two reads every turn waits on (the last message id of its conversation and
the user's memory version) are a few index seeks each, about 20 µs. A trip to a
thread and back costs the event loop far more CPU than that when it is busy
(futures, wake-ups, the GIL changing hands: about 0.5 ms a turn at 8 turns at
once), so :func:`fetch_quick` runs such reads on the calling thread, on a
connection that never waits: its busy timeout is 0 and a progress handler stops
a statement after :data:`QUICK_STEPS` virtual-machine steps. A read that would
wait for a lock or take longer goes to the pool instead. In WAL mode a reader
takes no lock a writer holds, so that happens only in rare cases (recovery
after a crash, a connection in exclusive locking mode).

The one write every turn makes (its two messages, one INSERT) is the same kind
of work, and a trip through Tortoise's thread cost the event loop about 0.4 ms
of CPU a turn at 8 turns at once, and the turn its wait. :func:`write_now`
makes it on the calling thread, on the quick reads' connection (busy timeout 0;
a connection that sees another's commit starts its next read with an empty page
cache, one that wrote itself does not), and only while Tortoise's connection is
idle in this process: every write of the process still happens one at a time,
and no transaction of Tortoise's (a read, then a write) finds the database
changed under it. That connection never checkpoints on its own (a checkpoint
copies pages for milliseconds); every :data:`CHECKPOINT_EVERY` writes a
passive checkpoint runs on Tortoise's thread instead. With ``synchronous`` above
NORMAL a commit waits for the disk, so the write goes through Tortoise as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.exceptions import IntegrityError

READ_THREADS = 4
QUICK_STEPS = 20_000
"""The virtual-machine steps a read on the event loop's thread may take (an
indexed lookup takes a few hundred; 20,000 is well under a millisecond)."""
_STEP_GRAIN = 500
CHECKPOINT_EVERY = 1000
"""Writes made by :func:`write_now` between two passive WAL checkpoints."""
_NO_DISK_WAIT = {"OFF", "NORMAL", "0", "1"}
log = logging.getLogger("personae.storage.connections")


class SqliteReadPool:
    """Threads with a read connection each to one SQLite file.

    Reads asked for in the same turn of the event loop go to a thread together,
    as one job: each trip to a thread and back costs the busy event loop more
    CPU than the indexed reads themselves (futures, wake-ups, the GIL changing
    hands), and many turns starting at once ask for their checks together."""

    def __init__(
        self,
        path: str,
        busy_timeout_ms: int,
        threads: int = READ_THREADS,
        *,
        synchronous: str = "NORMAL",
    ) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.synchronous = synchronous.upper()
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="personae-read")
        self._local = threading.local()
        self._quick_local = threading.local()
        self._writes = 0
        self._checkpoints: set[asyncio.Task[None]] = set()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._queued: dict[asyncio.AbstractEventLoop, list[_Read]] = {}

    def _open(self, busy_timeout_ms: int) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        connection.execute("PRAGMA query_only = ON")
        with self._lock:
            self._opened.append(connection)
        return connection

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._open(self.busy_timeout_ms)
        return connection

    def _quick_connection(self) -> _QuickConnection:
        """This thread's connection for :meth:`fetch_now` and :meth:`write_now`:
        one for both, since a connection that sees only its own writes keeps its
        page cache from one statement to the next, while one that sees another
        connection's commit starts its next read with an empty cache (a turn's
        check of the history after the last turn's write cost half as much again)."""
        quick: _QuickConnection | None = getattr(self._quick_local, "connection", None)
        if quick is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in ("busy_timeout = 0", "foreign_keys = ON", "wal_autocheckpoint = 0"):
                connection.execute(f"PRAGMA {pragma}")
            connection.execute(f"PRAGMA synchronous = {self.synchronous}")
            with self._lock:
                self._opened.append(connection)
            quick = self._quick_local.connection = _QuickConnection(connection)
        return quick

    async def fetch_quick(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of a small indexed read, read on this thread when that needs
        no waiting, else through :meth:`fetch`."""
        rows = self.fetch_now(sql, params)
        return await self.fetch(sql, params) if rows is None else rows

    def fetch_now(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        """The rows of a small indexed read, read on this thread; None when it
        would have to wait or take longer (then read it with :meth:`fetch`)."""
        try:
            rows = self._quick_connection().fetch(sql, tuple(params))
        except sqlite3.OperationalError as exc:  # locked, or over its step budget
            log.debug("read moved to a thread (%s)", exc)
            return None
        log.debug("%s: %s", sql, params)
        return rows

    def write_now(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        """Run one write statement (autocommit) on this thread and return its rows
        (``RETURNING``); None when it must go through Tortoise instead: Tortoise's
        connection is busy in this process, the database is locked by another, or
        a commit would wait for the disk. A broken constraint raises Tortoise's
        :class:`~tortoise.exceptions.IntegrityError`, as the write through
        Tortoise would."""
        if self.synchronous not in _NO_DISK_WAIT:
            return None
        client = Tortoise.get_connection("default")
        if isinstance(client, TransactionalDBClient):
            return None  # the caller is in a transaction: the write belongs to it
        lock = getattr(client, "_lock", None)
        if not isinstance(lock, asyncio.Lock) or lock.locked():
            return None  # a statement or transaction of Tortoise's is under way
        try:
            rows = self._quick_connection().fetch(sql, tuple(params))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        except sqlite3.OperationalError as exc:  # locked by another process (or too long)
            log.debug("write moved to Tortoise's connection (%s)", exc)
            return None
        log.debug("%s: %s", sql, params)
        self._writes += 1
        if self._writes % CHECKPOINT_EVERY == 0:
            task = asyncio.get_running_loop().create_task(_checkpoint())
            self._checkpoints.add(task)
            task.add_done_callback(self._checkpoints.discard)
        return rows

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of a query with ``?`` placeholders."""
        log.debug("%s: %s", sql, params)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[tuple[Any, ...]]] = loop.create_future()
        queued = self._queued.setdefault(loop, [])
        if not queued:
            loop.call_soon(self._submit, loop)
        queued.append((sql, tuple(params), future))
        return await future

    def _submit(self, loop: asyncio.AbstractEventLoop) -> None:
        reads = self._queued.pop(loop, [])
        try:
            self._executor.submit(self._run, loop, reads)
        except RuntimeError as exc:  # the pool is shut down
            _deliver(reads, [(False, exc)] * len(reads))

    def _run(self, loop: asyncio.AbstractEventLoop, reads: list[_Read]) -> None:
        """In a pool thread: run ``reads`` in order, then hand the results back."""
        results: list[tuple[bool, Any]] = []
        for sql, params, _ in reads:
            try:
                results.append((True, self._connection().execute(sql, params).fetchall()))
            except Exception as exc:
                results.append((False, exc))
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_deliver, reads, results)

    def close(self) -> None:
        for task in self._checkpoints:
            task.cancel()
        self._executor.shutdown(wait=True)
        with self._lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()


class _QuickConnection:
    """A connection that gives up instead of waiting: busy timeout 0, and a
    progress handler that interrupts a statement past :data:`QUICK_STEPS`."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.steps = 0
        connection.set_progress_handler(self._step, _STEP_GRAIN)

    def _step(self) -> int:
        self.steps += _STEP_GRAIN
        return int(self.steps > QUICK_STEPS)

    def fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        self.steps = 0
        return self.connection.execute(sql, params).fetchall()


async def _checkpoint() -> None:
    """A passive WAL checkpoint on Tortoise's connection (its thread): it copies
    what it can without waiting for anyone."""
    try:
        await Tortoise.get_connection("default").execute_script("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception as exc:  # the next one catches up
        log.warning("a WAL checkpoint failed: %s", exc)


_Read = tuple[str, tuple[Any, ...], "asyncio.Future[list[tuple[Any, ...]]]"]
"""A queued read: the statement, its parameters and the future for its rows."""


def _deliver(reads: list[_Read], results: list[tuple[bool, Any]]) -> None:
    for (_, _, future), (ok, value) in zip(reads, results, strict=True):
        if not future.done():  # its caller may have given up
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


_pool: SqliteReadPool | None = None


def open_read_pool(path: str, busy_timeout_ms: int, synchronous: str = "NORMAL") -> None:
    """Open the pool for the SQLite file at ``path`` (replacing any open one)."""
    global _pool
    close_read_pool()
    _pool = SqliteReadPool(path, busy_timeout_ms, synchronous=synchronous)


def close_read_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None


def has_read_pool() -> bool:
    """Whether reads go to the SQLite pool; then :func:`fetch_quick` reads on the
    calling thread, and turns starting together gain nothing from sharing one query."""
    return _pool is not None


def json_column(value: Any) -> Any:
    """A JSON column's value as read through :func:`fetch`: SQLite hands it back
    as text, asyncpg as text or already decoded."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def marks(postgres: bool, count: int, start: int = 1) -> list[str]:
    """``count`` parameter placeholders: ``$start, ...`` for PostgreSQL, ``?`` for SQLite."""
    return [f"${n}" for n in range(start, start + count)] if postgres else ["?"] * count


async def fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of a read-only query written with ``?`` placeholders: through the
    SQLite read pool when there is one, else the default connection (whose
    placeholders, for PostgreSQL, are ``$1, $2 ...``)."""
    if _pool is not None:
        return await _pool.fetch(sql, params)
    return await _fetch_default(sql, params)


async def fetch_quick(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Like :func:`fetch`, for a read of a few index seeks that a turn waits on:
    on SQLite it runs on the calling thread when it can finish at once (see the
    module docstring), else in the read pool."""
    if _pool is not None:
        return await _pool.fetch_quick(sql, params)
    return await _fetch_default(sql, params)


def fetch_now(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
    """The rows of a read of a few index seeks, read at once on this thread
    (SQLite, see the module docstring); None when that is not possible (no read
    pool, PostgreSQL, or the read would wait): then use :func:`fetch_quick`."""
    return _pool.fetch_now(sql, params) if _pool is not None else None


def write_now(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
    """Run a small write, its parameters marked ``?``, at once on this thread,
    on SQLite (see the module docstring); None when it must go through Tortoise."""
    return _pool.write_now(sql, params) if _pool is not None else None


async def _fetch_default(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    conn = Tortoise.get_connection("default")
    if conn.capabilities.dialect == "postgres":
        pieces = sql.split("?")
        sql = pieces[0] + "".join(f"${n}{piece}" for n, piece in enumerate(pieces[1:], start=1))
    _, rows = await conn.execute_query(sql, list(params))
    return [tuple(row) for row in rows]
