"""What can go wrong when the bot talks to Discord, named once.

discord.py turns the answers Discord gives into :class:`discord.HTTPException`, but
a connection that is reset, refused or times out reaches the caller raw, as one of
aiohttp's client errors or an :class:`OSError` (``TimeoutError`` included). Every
place that sends, edits or shows typing catches :data:`DELIVERY_ERRORS`, so a
network fault costs one message, never the channel."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import TypeVar

import aiohttp
import discord

T = TypeVar("T")

DELIVERY_ERRORS: tuple[type[BaseException], ...] = (
    discord.HTTPException,
    aiohttp.ClientError,
    OSError,
)

_FORBIDDEN_IN_WEBHOOK_NAMES = re.compile(r"discord|clyde", re.IGNORECASE)
WEBHOOK_NAME_LIMIT = 80


def webhook_username(name: str) -> str:
    """``name`` as Discord accepts it for a webhook message: Discord refuses
    usernames containing "discord" or "clyde" in any case, and longer than 80
    characters. A zero-width joiner after the first letter keeps the name readable."""

    def joined(match: re.Match[str]) -> str:
        word = match.group(0)
        return word[0] + "\u200d" + word[1:]

    cleaned = _FORBIDDEN_IN_WEBHOOK_NAMES.sub(joined, name)
    return cleaned.strip()[:WEBHOOK_NAME_LIMIT]


async def within(seconds: float, call: Awaitable[T]) -> T:
    """``call``, or ``TimeoutError`` (a delivery error) after ``seconds``: a request
    Discord never answers must not hold the channel's turn."""
    async with asyncio.timeout(seconds):
        return await call
