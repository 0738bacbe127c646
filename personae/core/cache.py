"""A small read-through cache for values every request needs (who owns a token,
which personas are stored), so the hot path of a turn does not wait on the
database for them.

Libraries such as ``async-lru`` or ``aiocache`` share a load between concurrent
callers and expire entries, but an expired entry makes the next caller wait for a
reload. Here a value past half its lifetime is still served while one reload runs
in the background, so a key in steady use never waits; a value is never served
past its full lifetime, which bounds how stale another process's change can be.
Changes made through this process call :meth:`RefreshingCache.invalidate`, which
also discards any reload that started before it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger("personae.cache")


class RefreshingCache(Generic[K, V]):
    """``await cache.get(key)`` returns ``load(key)``'s value, at most ``ttl``
    seconds old; at most ``max_size`` keys are kept (least recently used go)."""

    def __init__(
        self,
        load: Callable[[K], Awaitable[V]],
        *,
        ttl: float,
        max_size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.ttl = ttl
        self.max_size = max_size
        self._clock = clock
        self._values: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}
        self._generation = 0

    async def get(self, key: K) -> V:
        if self.ttl <= 0:
            return await self._load(key)
        cached = self._values.get(key)
        if cached is not None:
            age = self._clock() - cached[0]
            if age <= self.ttl:
                self._values.move_to_end(key)
                if age > self.ttl / 2 and key not in self._loading:
                    self._start_load(key).add_done_callback(_quiet)
                return cached[1]
        future = self._loading.get(key) or self._start_load(key)
        return await asyncio.shield(future)

    def _start_load(self, key: K) -> asyncio.Future[V]:
        generation = self._generation
        started = self._clock()

        async def load() -> V:
            try:
                value = await self._load(key)
            finally:
                if self._loading.get(key) is task:
                    del self._loading[key]
            if generation == self._generation:
                keep_recent(self._values, key, (started, value), self.max_size)
            return value

        task = asyncio.ensure_future(load())
        self._loading[key] = task
        return task

    def invalidate(self, key: K | None = None) -> None:
        """Forget ``key`` (every key when None); loads already running are not kept."""
        self._generation += 1
        if key is None:
            self._values.clear()
        else:
            self._values.pop(key, None)
        self._loading.clear()

    def __len__(self) -> int:
        return len(self._values)


def keep_recent(mapping: OrderedDict[K, V], key: K, value: V, max_size: int) -> None:
    """Store ``value`` as the most recently used entry of an LRU ``mapping``,
    dropping the least recently used ones beyond ``max_size``."""
    mapping[key] = value
    mapping.move_to_end(key)
    while len(mapping) > max_size:
        mapping.popitem(last=False)


class PerObject(Generic[V]):
    """Values worked out once from immutable objects (a persona card's validated
    settings, its rendered prompt part), kept for the ``max_size`` most recently
    used (object, ``extra``) pairs. Keyed by the object's ``id()``: an entry holds
    its object, so that ``id()`` is not reused while the entry lives."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._values: OrderedDict[tuple[int, Hashable], tuple[object, V]] = OrderedDict()

    def get(self, obj: object, make: Callable[[], V], extra: Hashable = None) -> V:
        key = (id(obj), extra)
        kept = self._values.get(key)
        if kept is not None and kept[0] is obj:
            self._values.move_to_end(key)
            return kept[1]
        value = make()
        keep_recent(self._values, key, (obj, value), self.max_size)
        return value


def _quiet(future: asyncio.Future[Any]) -> None:
    """A background reload that fails keeps the old value until it expires."""
    if not future.cancelled() and future.exception() is not None:
        log.warning("reloading a cached value failed: %s", future.exception())


class SharedReads(Generic[K, V]):
    """``await reads.get(key)``: lookups made in the same turn of the event loop
    share one call of ``read(keys)``, which returns the values it found (a key it
    leaves out gets ``missing``). Many turns starting at once then wait for one
    round trip to the database, not one each. While ``direct()`` is true (the
    read is one on the calling thread, with no round trip to share), each
    lookup reads its own key at once."""

    def __init__(
        self,
        read: Callable[[list[K]], Awaitable[dict[K, V]]],
        missing: V,
        *,
        direct: Callable[[], bool] = lambda: False,
    ) -> None:
        self._read = read
        self._missing = missing
        self._direct = direct
        self._pending: dict[K, asyncio.Future[V]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V:
        if self._direct():
            return (await self._read([key])).get(key, self._missing)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop: what the old one left is void
            self._loop, self._pending = loop, {}
        future = self._pending.get(key)
        if future is None:
            future = self._pending[key] = loop.create_future()
            if len(self._pending) == 1:
                loop.call_soon(self._start)
        return await asyncio.shield(future)

    def _start(self) -> None:
        pending, self._pending = self._pending, {}
        task = asyncio.ensure_future(self._run(pending))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, pending: dict[K, asyncio.Future[V]]) -> None:
        try:
            found = await self._read(list(pending))
        except BaseException as error:
            for future in pending.values():
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for key, future in pending.items():
            if not future.done():
                future.set_result(found.get(key, self._missing))
