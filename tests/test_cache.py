"""RefreshingCache: shared loads, refresh-ahead, a hard age limit, invalidation;
PerObject: values made once per object."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from personae.core.cache import PerObject, RefreshingCache


class Loader:
    """Counts loads; each returns the next number. ``gate`` holds loads until set."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, key: str) -> str:
        self.calls += 1
        number = self.calls
        await self.gate.wait()
        return f"{key}{number}"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_load() -> None:
    load = Loader()
    load.gate.clear()
    cache = RefreshingCache(load, ttl=10)
    waiting = [asyncio.ensure_future(cache.get("a")) for _ in range(20)]
    await settle()
    load.gate.set()
    assert set(await asyncio.gather(*waiting)) == {"a1"}
    assert load.calls == 1


async def test_a_fresh_value_is_served_without_loading() -> None:
    load, clock = Loader(), Clock()
    cache = RefreshingCache(load, ttl=10, clock=clock)
    assert await cache.get("a") == "a1"
    clock.now = 4.9
    assert await cache.get("a") == "a1"
    await settle()
    assert load.calls == 1


async def test_an_ageing_value_is_served_while_one_reload_runs() -> None:
    load, clock = Loader(), Clock()
    cache = RefreshingCache(load, ttl=10, clock=clock)
    await cache.get("a")
    clock.now = 6
    load.gate.clear()
    assert [await cache.get("a") for _ in range(3)] == ["a1"] * 3  # nobody waits
    load.gate.set()
    await settle()
    assert load.calls == 2  # one reload for the three reads
    assert await cache.get("a") == "a2"


async def test_a_value_is_never_served_past_its_lifetime() -> None:
    load, clock = Loader(), Clock()
    cache = RefreshingCache(load, ttl=10, clock=clock)
    await cache.get("a")
    clock.now = 10.5
    load.gate.clear()
    waiting = asyncio.ensure_future(cache.get("a"))
    await settle()
    assert not waiting.done()  # the expired value is not an answer
    load.gate.set()
    assert await waiting == "a2"


async def test_invalidate_discards_a_load_that_started_before_it() -> None:
    load = Loader()
    cache = RefreshingCache(load, ttl=10)
    load.gate.clear()
    early = asyncio.ensure_future(cache.get("a"))
    await settle()
    cache.invalidate("a")  # a change lands while the old value is being read
    load.gate.set()
    assert await early == "a1"  # that caller gets what it asked for...
    assert await cache.get("a") == "a2"  # ...but it is not kept


async def test_failed_loads_are_not_kept_and_reach_the_caller() -> None:
    calls = 0

    async def flaky(key: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database down")
        return "ok"

    cache = RefreshingCache(flaky, ttl=10)
    with pytest.raises(OSError, match="down"):
        await cache.get("a")
    assert await cache.get("a") == "ok"


async def test_least_recently_used_keys_go_first() -> None:
    load = Loader()
    cache = RefreshingCache(load, ttl=10, max_size=2)
    await cache.get("a")
    await cache.get("b")
    await cache.get("a")
    await cache.get("c")  # b is the least recently used
    assert len(cache) == 2
    calls = load.calls
    await cache.get("a")
    assert load.calls == calls
    await cache.get("b")
    assert load.calls == calls + 1


async def test_ttl_zero_reads_every_time() -> None:
    load = Loader()
    cache = RefreshingCache(load, ttl=0)
    assert [await cache.get("a") for _ in range(3)] == ["a1", "a2", "a3"]


def test_values_per_object_are_made_once_per_object_and_extra_key() -> None:
    made: list[tuple[str, str]] = []
    kept: PerObject[str] = PerObject(max_size=2)

    class Card:
        pass

    first, second = Card(), Card()

    def make(name: str, extra: str) -> Callable[[], str]:
        return lambda: made.append((name, extra)) or f"{name}/{extra}"

    assert kept.get(first, make("first", "ann"), extra="ann") == "first/ann"
    assert kept.get(first, make("first", "ann"), extra="ann") == "first/ann"
    assert kept.get(first, make("first", "bob"), extra="bob") == "first/bob"
    assert kept.get(second, make("second", "ann"), extra="ann") == "second/ann"  # drops first/ann
    assert kept.get(first, make("first", "ann"), extra="ann") == "first/ann"
    assert made == [("first", "ann"), ("first", "bob"), ("second", "ann"), ("first", "ann")]
