"""Fixtures for the Discord adapter: a loopback fake Discord (REST + gateway), a
world in it (a server, a channel, two people) and a real runtime with the real
discord.py client connected to the fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from personae.adapters.discord.bot import DiscordService, PersonaeBot
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.testing.fake_discord import FakeDiscord
from personae.testing.fake_ollama import FakeOllama
from tests.conftest import make_settings


@dataclass
class World:
    guild: dict[str, Any]
    channel: dict[str, Any]
    alice: dict[str, Any]
    bob: dict[str, Any]


@dataclass
class Harness:
    fake: FakeDiscord
    ollama: FakeOllama
    runtime: Runtime
    service: DiscordService
    settings: Settings

    @property
    def bot(self) -> PersonaeBot:
        assert self.service.bot is not None
        return self.service.bot


StartBot = Callable[..., Awaitable[Harness]]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'personae.db'}"


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord(lifetime=120) as fake:
        yield fake
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
def world(fake_discord: FakeDiscord) -> World:
    guild = fake_discord.add_guild("Test server")
    channel = fake_discord.add_channel(guild, "general")
    return World(guild, channel, fake_discord.add_user("alice"), fake_discord.add_user("bob"))


def discord_settings(fake: FakeDiscord, **overrides: Any) -> dict[str, Any]:
    return {
        "token": "fake-token",
        "api_base": fake.api_base,
        "gateway_url": fake.gateway_url,
        "edit_interval_seconds": 0,
        "guild_ready_timeout": 0.05,
        "identify_delay_seconds": 0,
        "shutdown_grace_seconds": 5,
        "user_cooldown_seconds": 0,  # tests that need it turn it on
        **overrides,
    }


@pytest.fixture
async def start_bot(
    tmp_path: Path, fake_ollama: FakeOllama, fake_discord: FakeDiscord, sqlite_url: str
) -> AsyncIterator[StartBot]:
    """``await start_bot(db_url=None, **discord_settings)``: a runtime and a connected bot."""
    started: list[Harness] = []

    async def start(db_url: str | None = None, **overrides: Any) -> Harness:
        settings = make_settings(
            tmp_path,
            fake_ollama,
            db_url or sqlite_url,
            discord=discord_settings(fake_discord, **overrides),
        )
        runtime = Runtime(settings, load_entry_points=False)
        await runtime.start()
        service = DiscordService(runtime, settings)
        harness = Harness(fake_discord, fake_ollama, runtime, service, settings)
        started.append(harness)
        await service.start()
        await asyncio.wait_for(service.wait_until_ready(), 10)
        return harness

    yield start
    for harness in reversed(started):
        await harness.service.stop()
        await harness.runtime.stop()


@pytest.fixture
async def bot(world: World, start_bot: StartBot) -> Harness:
    """The bot on SQLite, connected, with :class:`World` in the fake."""
    return await start_bot()


async def eventually(check: Callable[[], Any], timeout: float = 30.0) -> None:
    """Wait until ``check()`` (sync or async) is truthy."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


def chat_reply(text: str | list[str]) -> Callable[[Any], Any]:
    """A FakeOllama responder: ``text`` for chat turns, an empty JSON object for the
    structured requests background plugins make (fact extraction, planning)."""

    def respond(request: Any) -> Any:
        return '{"items": []}' if request.format else text

    return respond


def final_contents(fake: FakeDiscord, channel: dict[str, Any]) -> list[str]:
    """What the bot's messages in ``channel`` finally show, oldest first."""
    return [m["content"] for m in fake.created_messages(channel)]
