"""Background work that leaves the reply path: bounded, logged, drained on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("personae.background")


class BackgroundTasks:
    """Runs coroutines after replies with at most ``concurrency`` at once.

    ``spawn`` never blocks the caller; ``drain`` waits for everything spawned
    (including work spawned by that work) and is called on shutdown."""

    def __init__(self, concurrency: int = 4) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0

    def spawn(self, work: Callable[[], Awaitable[object]], name: str) -> asyncio.Task[None]:
        async def run() -> None:
            async with self._semaphore:
                try:
                    await work()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.failures += 1
                    log.exception("background work %s failed", name)

        task = asyncio.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until no work is left; True when drained, False on timeout
        (the rest is cancelled)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            _, pending = await asyncio.wait(set(self._tasks), timeout=remaining)
            if pending and deadline is not None and loop.time() >= deadline:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                log.warning("cancelled %d background task(s) at shutdown", len(pending))
                return False
        return True


def repeat(every: float, work: Callable[[], Awaitable[object]], name: str) -> asyncio.Task[None]:
    """Run ``work`` every ``every`` seconds until the returned task is cancelled
    (see :func:`cancel`). A failure is logged and the next round runs as usual."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic work %s failed", name)

    return asyncio.create_task(loop(), name=name)


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a task and wait until it has stopped."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
