"""Linking a Discord account to a web account over HTTP, end to end: someone
talks to a persona on the (fake) Discord, runs /link, types the code into the
web service while logged in, and from then on the web account has what the
Discord account had."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import Caller, MakeCaller
from discord.gateway import DiscordWebSocket
from discord.http import Route

from personae.adapters.discord.bot import DiscordService, PersonaeBot
from personae.adapters.discord.settings import DiscordSettings
from personae.core.clock import ManualClock
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.core.types import Scope
from personae.testing.fake_discord import FakeDiscord
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama
from tests.conftest import reply_prompts
from tests.discord.conftest import discord_settings, eventually

REPLY = "Bees are wonderful company."
LEARNED = "Keeps bees in the garden"


def respond(request: FakeChatRequest) -> str:
    """Replies, the profile plugin's extraction (one fact) and nothing to ask."""
    if isinstance(request.format, dict):
        if request.format.get("title") == "personae_profile_extraction":
            item = {"action": "add", "kind": "fact", "text": LEARNED, "confidence": 0.9}
            return json.dumps({"items": [item]})
        return json.dumps({"ask": False, "topic": "", "question": "", "items": []})
    return REPLY


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord(lifetime=120) as fake:
        yield fake
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
def people(fake_discord: FakeDiscord) -> dict[str, Any]:
    guild = fake_discord.add_guild("Test server")
    return {
        "channel": fake_discord.add_channel(guild, "general"),
        "alice": fake_discord.add_user("alice"),
    }


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(settings: Settings, fake_discord: FakeDiscord, people: dict[str, Any]) -> Settings:
    plugins = {"profile": {"extract_after_messages": 1, "tick_seconds": 0}}
    plugins["curiosity"] = {"tick_seconds": 0}
    return settings.model_copy(
        update={
            "discord": DiscordSettings.model_validate(discord_settings(fake_discord)),
            "plugin_settings": plugins,
        }
    )


@pytest.fixture
async def runtime(settings: Settings, clock: ManualClock) -> AsyncIterator[Runtime]:
    rt = Runtime(settings, load_entry_points=False, clock=clock)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@pytest.fixture
async def bot(runtime: Runtime, settings: Settings) -> AsyncIterator[PersonaeBot]:
    service = DiscordService(runtime, settings)
    await service.start()
    try:
        await service.wait_until_ready()
        assert service.bot is not None
        yield service.bot
    finally:
        await service.stop()


async def _link_code(fake: FakeDiscord, people: dict[str, Any]) -> str:
    interaction = await fake.run_command(people["channel"], people["alice"], "link")
    callback = await fake.wait_for_request(
        "POST", rf"/interactions/{interaction['id']}/{interaction['token']}/callback"
    )
    return str(callback.json["data"]["content"]).split("**")[1]


async def test_a_discord_users_memory_and_history_follow_them_to_the_web(
    bot: PersonaeBot,
    fake_discord: FakeDiscord,
    fake_ollama: FakeOllama,
    people: dict[str, Any],
    runtime: Runtime,
    make_caller: MakeCaller,
) -> None:
    fake_ollama.reply_with(respond)
    await fake_discord.send_message(
        people["channel"], people["alice"], "I keep bees in my garden", mention_bot=True
    )
    await eventually(lambda: bot.turns_answered == 1)
    await runtime.background.drain()
    discord_user = await runtime.users.resolve("discord", people["alice"]["id"])
    assert [m.text for m in await runtime.memory.list(Scope("sage", discord_user))] == [LEARNED]
    code = await _link_code(fake_discord, people)
    browser = await make_caller("alice-web", via="session")

    linked = await browser.post("/api/link", json={"code": code})
    memory = await browser.get("/api/personas/sage/memory")
    export = await browser.get("/api/me/export", params={"persona_id": "sage"})
    chat = await browser.post("/api/personas/sage/chat", json={"message": "What do I keep?"})

    assert linked.status == 200, linked.data
    assert linked.data == {"platform": "discord", "external_id": people["alice"]["id"]}
    assert [item["text"] for item in memory.data["items"]] == [LEARNED]
    [conversation] = [
        c for c in export.data["plugins"]["history"] if c["conversation"].startswith("discord:")
    ]
    assert [m["content"] for m in conversation["messages"]] == [
        "I keep bees in my garden",
        REPLY,
    ]
    assert chat.status == 200
    assert LEARNED in json.dumps(reply_prompts(fake_ollama)[-1].json["messages"])
    assert await runtime.users.resolve("discord", people["alice"]["id"]) == browser.id


async def test_a_used_wrong_or_expired_code_is_a_400(
    bot: PersonaeBot,
    fake_discord: FakeDiscord,
    people: dict[str, Any],
    alice: Caller,
    clock: ManualClock,
) -> None:
    code = await _link_code(fake_discord, people)
    first = await alice.post("/api/link", json={"code": code.lower().replace("-", "")})
    again = await alice.post("/api/link", json={"code": code})
    wrong = await alice.post("/api/link", json={"code": "AAAA-BBBB"})
    expiring = await _link_code(fake_discord, people)
    clock.advance(minutes=10, seconds=1)
    expired = await alice.post("/api/link", json={"code": expiring})
    empty = await alice.post("/api/link", json={"code": ""})

    assert first.status == 200
    for refused in (again, wrong, expired):
        assert refused.status == 400 and refused.content_type == "application/problem+json"
        assert refused.data["title"] == "Link code not accepted"
        assert "/link" in refused.data["detail"]
    assert "expired" in expired.data["detail"]
    assert empty.status == 422


async def test_linking_needs_a_login_and_a_browser_needs_the_csrf_token(
    bot: PersonaeBot,
    fake_discord: FakeDiscord,
    people: dict[str, Any],
    make_caller: MakeCaller,
    runtime: Runtime,
) -> None:
    code = await _link_code(fake_discord, people)
    anonymous = await make_caller(None)
    browser = await make_caller("alice-web", via="session")
    csrf, browser.csrf = browser.csrf, None

    nobody = await anonymous.post("/api/link", json={"code": code})
    forged = await browser.post("/api/link", json={"code": code})
    honest = await browser.post("/api/link", json={"code": code}, headers={"X-CSRF-Token": csrf})

    assert nobody.status == 401
    assert forged.status == 403 and forged.data["title"] == "CSRF token missing or wrong"
    assert honest.status == 200  # the refused attempts did not use the code up
    assert await runtime.users.resolve("discord", people["alice"]["id"]) == browser.id


@pytest.mark.parametrize("web_overrides", [{"login_rate_per_minute": 2}])
async def test_guessing_codes_is_rate_limited(alice: Caller, bob: Caller) -> None:
    guesses = [(await alice.post("/api/link", json={"code": "AAAA-BBBB"})).status for _ in range(3)]

    assert guesses == [400, 400, 429]
    assert (await bob.post("/api/link", json={"code": "AAAA-BBBB"})).status == 400
