"""What every loopback fake shares: an aiohttp app on 127.0.0.1 that stops by
itself after ``lifetime`` seconds, usable as ``async with Fake() as fake:``."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from aiohttp import web


class LoopbackServer(ABC):
    """Subclasses build their app in :meth:`build_app`; :meth:`before_stop` may
    close what the app holds open (websockets). ``port`` 0 picks a free port; a
    restart after :meth:`stop` reuses the port, and :attr:`url` stays valid."""

    name = "The fake server"

    def __init__(self, *, lifetime: float, port: int = 0) -> None:
        self.lifetime = lifetime
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._deadline: asyncio.TimerHandle | None = None

    @abstractmethod
    def build_app(self) -> web.Application:
        """The fake's routes."""

    async def before_stop(self) -> None:  # noqa: B027 (optional: most fakes hold nothing open)
        """Close what the app holds open before it is cleaned up."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self._port is None:
            raise RuntimeError(f"{self.name} is not started; use `async with` it")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> Self:
        self._runner = web.AppRunner(
            self.build_app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port or self._requested_port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.lifetime, lambda: asyncio.ensure_future(self.stop()))
        return self

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        await self.before_stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
