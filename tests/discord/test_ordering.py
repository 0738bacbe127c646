"""A channel's messages keep their arrival order even when deciding whether each is
addressed takes different times (the state reads before a turn may finish in any
order)."""

from __future__ import annotations

import asyncio

from personae.adapters.discord.ordering import ChannelLine


async def test_places_are_served_in_arrival_order_whatever_order_they_are_ready_in() -> None:
    line = ChannelLine()
    served: list[str] = []

    async def message(name: str, decide_after: float, addressed: bool = True) -> None:
        place = line.place(10)  # taken on arrival, before any await
        try:
            await asyncio.sleep(decide_after)  # working out whether it is addressed
            if not addressed:
                return
            await place.turn()
            served.append(name)
            await asyncio.sleep(0.01)
        finally:
            place.release()

    await asyncio.gather(
        message("first", 0.05),
        message("not for us", 0.0, addressed=False),
        message("second", 0.0),
        message("third", 0.02),
    )
    assert served == ["first", "second", "third"]
    assert line.tails == {}  # an idle channel holds nothing


async def test_channels_do_not_wait_for_each_other() -> None:
    line = ChannelLine()
    slow = line.place(1)
    other = line.place(2)
    await asyncio.wait_for(other.turn(), 1)  # channel 2 is not behind channel 1
    other.release()
    slow.release()
    assert line.tails == {}
