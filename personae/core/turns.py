"""A turn's lifetime belongs to the runtime, not to whoever reads its reply.

The reply to a turn is read through a :class:`ReplyStream`. The turn itself runs in
a task the runtime owns, which holds the conversation (one turn at a time per
conversation) and produces one chunk each time the reader asks for one — so the
turn advances exactly as fast as it is read, and the exchange is stored only once
the reader has asked past the last chunk, as before. What the task adds is that
no reader can keep the conversation forever:

- a reader that stops asking (a dropped client, an adapter that forgot to close,
  a stream dropped on the floor) is given ``runtime.stall_seconds``; then the turn
  is abandoned: its model call is cancelled, the conversation is released, and
  nothing is stored;
- a reader that closes the stream (``aclose``) or whose task is cancelled ends the
  turn at once, the same way;
- a turn whose model call stalls is cancelled after ``runtime.turn_deadline_seconds``
  (the reader gets :class:`~personae.core.errors.LLMTimeout`);
- at most ``runtime.max_concurrent_turns`` turns run at once in a process, and at
  most ``runtime.max_waiting_turns`` wait for a place; a turn beyond that is refused
  at once with :class:`~personae.core.errors.Busy`, instead of joining a queue no
  one would wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from personae.core.errors import Busy, LLMTimeout, TurnAbandoned
from personae.core.types import Turn

if TYPE_CHECKING:
    from personae.core.runtime import Reply, Runtime

log = logging.getLogger("personae.turns")


class TurnGate:
    """Admission of turns: ``running`` at once, ``waiting`` more in line."""

    def __init__(self, running: int, waiting: int) -> None:
        self._places = asyncio.Semaphore(running)
        self.max_waiting = waiting
        self.waiting = 0
        self.refused = 0

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        if self._places.locked() and self.waiting >= self.max_waiting:
            self.refused += 1
            raise Busy("I'm answering a lot of messages right now; try again in a moment.")
        self.waiting += 1
        try:
            await self._places.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._places.release()


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


_END = object()


class ReplyStream:
    """The reply to one turn as an async iterator of text chunks.

    Iterate it to drive the turn; afterwards ``reply`` holds the stored result.
    Abandoning the iteration (``aclose``, a cancelled reader, or just no longer
    asking for ``runtime.stall_seconds``) stores nothing and frees the
    conversation. ``async with runtime.stream(turn) as stream:`` closes it on
    leaving the block, however it is left."""

    def __init__(self, runtime: Runtime, turn: Turn) -> None:
        self.runtime = runtime
        self.turn = turn
        self.reply: Reply | None = None
        self._task: asyncio.Task[None] | None = None
        self._asked = asyncio.Event()
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._done = False

    async def __aenter__(self) -> ReplyStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        if self._done:
            raise StopAsyncIteration
        if self._task is None:
            self._task = asyncio.create_task(
                self._run(), name=f"turn:{self.turn.persona_id}:{self.turn.conversation}"
            )
        self._asked.set()
        try:
            item = await self._items.get()
        except asyncio.CancelledError:
            self._done = True
            self._task.cancel()  # the reader is gone: so is the turn
            raise
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, _Failed):
            self._done = True
            raise item.error
        return str(item)

    async def aclose(self) -> None:
        """End the turn now; a turn not yet stored stores nothing."""
        self._done = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        runtime = self.runtime
        limits = runtime.settings.runtime
        try:
            async with runtime.turn_gate.admit():
                chunks = cast(AsyncGenerator[str, None], runtime._run_turn(self.turn, self))
                async with contextlib.aclosing(chunks):
                    loop = asyncio.get_running_loop()
                    deadline = loop.time() + limits.turn_deadline_seconds
                    while True:
                        await self._wait_for_reader(limits.stall_seconds)
                        try:
                            async with asyncio.timeout_at(deadline):
                                chunk = await anext(chunks)
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            log.warning(
                                "a turn of %s ran past runtime.turn_deadline_seconds (%s s) "
                                "and was stopped",
                                self.turn.persona_id,
                                limits.turn_deadline_seconds,
                            )
                            raise LLMTimeout(
                                "The reply took too long and was stopped; please try again."
                            ) from None
                        self._items.put_nowait(chunk)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self._items.put_nowait(_Failed(error))
            return
        self._items.put_nowait(_END)

    async def _wait_for_reader(self, stall: float) -> None:
        """Until the reader asks for the next chunk; a reader that stops asking
        abandons the turn (its model call is cancelled, nothing is stored)."""
        try:
            await asyncio.wait_for(self._asked.wait(), stall)
        except TimeoutError:
            log.warning(
                "the reader of a %s reply stopped reading for %s s (runtime.stall_seconds); "
                "the turn is abandoned and stores nothing",
                self.turn.persona_id,
                stall,
            )
            raise TurnAbandoned("The reply was abandoned.") from None
        self._asked.clear()
