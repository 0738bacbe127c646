"""The runtime owns a turn's lifetime: however a reader abandons a reply stream —
closing it, being cancelled, dropping it, or just no longer reading — the
conversation is freed within a bounded time and nothing is stored; a stalled
model call ends at the turn's deadline; and a process refuses turns it has no
room for instead of queueing them without end."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.core.errors import Busy, LLMTimeout
from personae.core.runtime import Runtime
from personae.core.types import Scope, Turn
from personae.testing.fake_ollama import FakeOllama
from tests.conftest import make_settings

STALL = 0.3


@pytest.fixture
async def quick_runtime(
    tmp_path: Path, fake_ollama: FakeOllama, db_url: str
) -> AsyncIterator[Runtime]:
    settings = make_settings(
        tmp_path,
        fake_ollama,
        db_url,
        runtime={"stall_seconds": STALL, "turn_deadline_seconds": 2.0},
    )
    async with Runtime(settings, load_entry_points=False) as runtime:
        yield runtime


async def _user(runtime: Runtime) -> int:
    return await runtime.users.resolve("cli", "ann", "Ann")


async def _stored(runtime: Runtime, user: int) -> list[str]:
    return [m.content for m in await runtime.history.recent(Scope("sage", user), "c", 50)]


async def _next_turn_completes(runtime: Runtime, user: int) -> None:
    """The conversation is free: a new turn in it runs to the end."""
    reply = await asyncio.wait_for(runtime.reply(Turn(user, "sage", "again", "c")), 10)
    assert reply.text


async def test_closing_a_stream_midway_frees_the_conversation_and_stores_nothing(
    quick_runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    user = await _user(quick_runtime)
    fake_ollama.reply_with(["one ", "two ", "three"])
    stream = quick_runtime.stream(Turn(user, "sage", "count", "c"))
    assert await anext(stream) == "one "
    await stream.aclose()
    assert await _stored(quick_runtime, user) == []
    await _next_turn_completes(quick_runtime, user)
    assert await _stored(quick_runtime, user) == ["again", "one two three"]


async def test_a_reader_that_stops_reading_is_abandoned_after_the_stall_time(
    quick_runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    user = await _user(quick_runtime)
    fake_ollama.reply_with(["one ", "two ", "three"])
    forgotten = quick_runtime.stream(Turn(user, "sage", "count", "c"))
    assert await anext(forgotten) == "one "
    # The reader never asks again and never closes the stream.
    await _next_turn_completes(quick_runtime, user)
    assert await _stored(quick_runtime, user) == ["again", "one two three"]
    assert forgotten.reply is None


async def test_a_dropped_stream_does_not_hold_the_conversation(
    quick_runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    user = await _user(quick_runtime)
    fake_ollama.reply_with(["one ", "two ", "three"])
    stream = quick_runtime.stream(Turn(user, "sage", "count", "c"))
    await anext(stream)
    del stream
    gc.collect()
    await _next_turn_completes(quick_runtime, user)
    assert await _stored(quick_runtime, user) == ["again", "one two three"]


async def test_a_cancelled_reader_ends_the_turn_at_once(
    quick_runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    user = await _user(quick_runtime)
    started = asyncio.Event()

    async def slow(request):  # type: ignore[no-untyped-def]
        if request.last_user_message == "count":
            started.set()
            await asyncio.sleep(30)
        return "fine"

    fake_ollama.reply_with(slow)

    async def read() -> None:
        async for _ in quick_runtime.stream(Turn(user, "sage", "count", "c")):
            pass

    reader = asyncio.create_task(read())
    await asyncio.wait_for(started.wait(), 10)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    # Well within the stall time: the cancelled reader ended the turn itself.
    reply = await asyncio.wait_for(quick_runtime.reply(Turn(user, "sage", "again", "c")), STALL)
    assert reply.text == "fine"
    assert await _stored(quick_runtime, user) == ["again", "fine"]


async def test_a_stalled_model_call_ends_at_the_turn_deadline(
    quick_runtime: Runtime, fake_ollama: FakeOllama
) -> None:
    user = await _user(quick_runtime)

    async def stalled(request):  # type: ignore[no-untyped-def]
        await asyncio.sleep(30)  # past the deadline (2 s), before the read timeout (5 s)
        return "too late"

    fake_ollama.reply_with(stalled)
    with pytest.raises(LLMTimeout, match="took too long"):
        await quick_runtime.reply(Turn(user, "sage", "hello?", "c"))
    assert await _stored(quick_runtime, user) == []
    fake_ollama.reply_with("back")
    await _next_turn_completes(quick_runtime, user)


async def test_a_full_process_refuses_a_turn_at_once_with_busy(
    tmp_path: Path, fake_ollama: FakeOllama, db_url: str
) -> None:
    settings = make_settings(
        tmp_path,
        fake_ollama,
        db_url,
        runtime={"max_concurrent_turns": 1, "max_waiting_turns": 1},
    )
    release = asyncio.Event()

    async def held(request):  # type: ignore[no-untyped-def]
        await release.wait()
        return "done"

    fake_ollama.reply_with(held)
    async with Runtime(settings, load_entry_points=False) as runtime:
        user = await _user(runtime)
        running = asyncio.create_task(runtime.reply(Turn(user, "sage", "a", "c1")))
        waiting = asyncio.create_task(runtime.reply(Turn(user, "sage", "b", "c2")))
        while runtime.turn_gate.waiting < 1:  # noqa: ASYNC110 - the gate has no event
            await asyncio.sleep(0.01)
        with pytest.raises(Busy, match="try again"):
            await runtime.reply(Turn(user, "sage", "c", "c3"))
        release.set()
        assert (await running).text == "done"
        assert (await waiting).text == "done"
        assert runtime.turn_gate.refused == 1
