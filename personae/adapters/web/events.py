"""Per-user event streams (``GET /api/events``): proactive messages are written
straight to every open stream of their user."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from aiohttp import ClientConnectionResetError, web

from personae.adapters.web import sse

WRITE_TIMEOUT = 5.0


class EventStream:
    """One open ``/api/events`` response."""

    def __init__(self, user_id: int, response: web.StreamResponse) -> None:
        self.user_id = user_id
        self.response = response
        self.closed = asyncio.Event()
        self._lock = asyncio.Lock()

    async def send(self, payload: bytes) -> bool:
        """Write an event; False (and the stream is closed) when the client is gone."""
        if self.closed.is_set():
            return False
        try:
            async with self._lock:
                await asyncio.wait_for(self.response.write(payload), WRITE_TIMEOUT)
        except (ConnectionError, ClientConnectionResetError, RuntimeError, TimeoutError):
            self.closed.set()
            return False
        return True


class EventHub:
    """The open event streams, by user."""

    def __init__(self) -> None:
        self._streams: dict[int, set[EventStream]] = {}
        self.closing = False

    @contextlib.contextmanager
    def register(self, stream: EventStream) -> Iterator[None]:
        self._streams.setdefault(stream.user_id, set()).add(stream)
        try:
            yield
        finally:
            streams = self._streams.get(stream.user_id, set())
            streams.discard(stream)
            if not streams:
                self._streams.pop(stream.user_id, None)

    def count(self, user_id: int | None = None) -> int:
        if user_id is not None:
            return len(self._streams.get(user_id, ()))
        return sum(len(s) for s in self._streams.values())

    async def publish(self, user_id: int, name: str, data: object) -> int:
        """Send an event to every open stream of ``user_id``; returns how many
        streams received it."""
        payload = sse.event(name, data)
        streams = list(self._streams.get(user_id, ()))
        results = await asyncio.gather(*(s.send(payload) for s in streams))
        return sum(results)

    async def close(self) -> None:
        """Tell every stream the server is shutting down, and end them."""
        self.closing = True
        streams = [s for group in self._streams.values() for s in group]
        payload = sse.event("shutdown", {"detail": "The server is shutting down."})
        await asyncio.gather(*(s.send(payload) for s in streams))
        for stream in streams:
            stream.closed.set()
