"""Showing a reply while it streams: the first words appear as a message at once,
which is then edited as tokens arrive — at most one edit per channel per
``edit_interval_seconds`` — and continued in new messages past Discord's length
limit, cut at sentence or code-block boundaries. A typing indicator runs until the
first words are shown.

Delivery never stops the stream: if Discord refuses a message, or the connection
breaks or stalls (each request has ``delivery_timeout_seconds``), the failure is
logged, the rest of the reply is still read (so the runtime stores it whole), and
:attr:`ReplyWriter.failed` tells the caller. A failed edit is not a failed reply:
the text goes out in a new message and the stale one is removed if Discord lets
it. A send that fails on the connection (not on Discord's answer) is tried once
more; Discord may have created the first, so that can show a message twice,
which beats losing it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import discord

from personae.adapters.discord.delivery import DELIVERY_ERRORS, within
from personae.adapters.discord.identity import Outbox, Sent, Speaker
from personae.adapters.discord.splitting import split_once

log = logging.getLogger("personae.discord.streaming")

TYPING_REFRESH_SECONDS = 8.0
"""Discord shows "is typing" for about 10 seconds after each trigger."""
TYPING_TIMEOUT_SECONDS = 10.0


class Throttle:
    """When each channel last had a message created or edited."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[int, float] = {}

    def ready(self, channel_id: int) -> bool:
        last = self._last.get(channel_id)
        return last is None or self.clock() - last >= self.interval

    def touch(self, channel_id: int) -> None:
        self._last[channel_id] = self.clock()
        if len(self._last) > 10_000:  # forget quiet channels
            cutoff = self.clock() - self.interval
            self._last = {k: v for k, v in self._last.items() if v >= cutoff}


class Typing:
    """ "<persona> is typing..." in a channel until stopped; failures are ignored."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"typing:{self.channel.id}")

    async def _run(self) -> None:
        while True:
            try:
                await within(TYPING_TIMEOUT_SECONDS, self.channel.typing())
            except DELIVERY_ERRORS as exc:
                log.debug("typing indicator in %s failed: %s", self.channel.id, exc)
                return
            await asyncio.sleep(TYPING_REFRESH_SECONDS)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ReplyWriter:
    """Streams one reply into a channel as a persona: ``feed`` chunks, then ``finish``."""

    def __init__(
        self,
        outbox: Outbox,
        channel: Any,
        speaker: Speaker,
        throttle: Throttle,
        *,
        limit: int = 2000,
        mention: discord.abc.Snowflake | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.outbox = outbox
        self.channel = channel
        self.speaker = speaker
        self.throttle = throttle
        self.budget = limit - len(Outbox.header(speaker))
        self.mention = mention
        self.timeout = timeout
        self.typing = Typing(channel)
        self.sent: list[Sent] = []
        """Every message of this reply, in order."""
        self.failed = False
        self._tail = ""  # text after the last sealed message
        self._current: Sent | None = None  # the message showing the tail
        self._shown = ""  # what the current message shows

    async def start(self) -> None:
        self.typing.start()

    async def feed(self, chunk: str) -> None:
        self._tail += chunk
        if self.throttle.ready(self.channel.id):
            await self._flush(final=False)

    async def finish(self, text: str | None = None) -> bool:
        """Show the rest of the reply (or replace the unsealed part with ``text``);
        True when the whole reply reached Discord."""
        if text is not None:
            self._tail = text
        await self._flush(final=True)
        await self.typing.stop()
        return not self.failed

    async def _flush(self, *, final: bool) -> None:
        if self.failed:
            return
        while len(self._tail) > self.budget:
            head, rest = split_once(self._tail, self.budget)
            if not await self._show(head):
                return
            self._current, self._shown, self._tail = None, "", rest
        text = self._tail.strip()
        if text and text != self._shown:
            await self._show(text)

    async def _show(self, text: str) -> bool:
        if self._current is not None:
            try:
                await within(self.timeout, self.outbox.edit(self._current, text))
            except DELIVERY_ERRORS as exc:
                log.warning(
                    "editing %s's reply in channel %s failed (%s); continuing in a new message",
                    self.speaker.persona_id,
                    self.channel.id,
                    _describe(exc),
                )
                stale, self._current = self._current, None
                if not await self._send(text):
                    return False
                await self._remove(stale)
                return True
            self._shown = text
            self.throttle.touch(self.channel.id)
            return True
        return await self._send(text)

    async def _send(self, text: str) -> bool:
        for attempt in (1, 2):
            try:
                sent = await within(
                    self.timeout,
                    self.outbox.send(self.channel, self.speaker, text, mention=self.mention),
                )
            except discord.HTTPException as exc:
                return await self._give_up(exc)
            except DELIVERY_ERRORS as exc:
                if attempt == 2:
                    return await self._give_up(exc)
                log.warning("sending in channel %s failed (%s); trying once more",
                            self.channel.id, _describe(exc))  # fmt: skip
                continue
            self._current = sent
            self.sent.append(sent)
            await self.typing.stop()
            self._shown = text
            self.throttle.touch(self.channel.id)
            return True
        return False  # not reached

    async def _remove(self, stale: Sent) -> None:
        """Best effort: the message whose edit failed shows an older part of the text."""
        try:
            await within(self.timeout, self.outbox.delete(stale))
        except DELIVERY_ERRORS as exc:
            log.info("could not remove a stale partial reply: %s", _describe(exc))
        else:
            if stale in self.sent:
                self.sent.remove(stale)

    async def _give_up(self, exc: BaseException) -> bool:
        log.error(
            "could not deliver %s's reply in channel %s: %s",
            self.speaker.persona_id,
            self.channel.id,
            _describe(exc),
        )
        self.failed = True
        await self.typing.stop()
        return False


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
