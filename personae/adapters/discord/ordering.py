"""Turns of one channel in arrival order, even when deciding whether a message is
for a persona takes a moment.

A message takes its place in its channel's line the moment it arrives (no await
before it), then the bot works out whether it is addressed and whether the limits
let it in, and only then waits for the places before it. A message that is not
answered leaves the line without waiting, once those before it are done."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(slots=True)
class Place:
    channel_id: int
    before: asyncio.Future[None] | None
    mine: asyncio.Future[None]
    line: ChannelLine

    async def turn(self) -> None:
        """Until every message that arrived earlier in the channel is done."""
        if self.before is not None and not self.before.done():
            await asyncio.shield(self.before)

    def release(self) -> None:
        """Done here: the next place may go once the earlier ones have gone too."""
        if self.mine.done():
            return
        if self.before is None or self.before.done():
            self._finish()
        else:
            self.before.add_done_callback(lambda _: self._finish())

    def _finish(self) -> None:
        if not self.mine.done():
            self.mine.set_result(None)
        if self.line.tails.get(self.channel_id) is self.mine:
            del self.line.tails[self.channel_id]


class ChannelLine:
    """One line per channel; it only holds channels with messages in it."""

    def __init__(self) -> None:
        self.tails: dict[int, asyncio.Future[None]] = {}

    def place(self, channel_id: int) -> Place:
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        before = self.tails.get(channel_id)
        self.tails[channel_id] = mine
        return Place(channel_id, before, mine, self)
