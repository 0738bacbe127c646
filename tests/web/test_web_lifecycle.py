"""Graceful shutdown and embedding: the app built by init_app runs its own
runtime, finishes (or cleanly cuts off) replies in flight, and mounts inside
another aiohttp application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from conftest import FAST_HASHER, PASSWORD
from httpx_sse import aconnect_sse

from personae.adapters.web import init_app
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.core.types import Scope
from personae.storage.accounts import AccountStore
from personae.testing.fake_ollama import FakeOllama


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[tuple[web.AppRunner, str]]:
    """The app on a real socket, owning its runtime; the test shuts it down."""
    app = init_app(settings, accounts=AccountStore(FAST_HASHER))
    runner = web.AppRunner(app, shutdown_timeout=10)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield runner, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _token(base: str) -> tuple[str, int]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        body = {"username": "alice", "password": PASSWORD}
        async with session.post(f"{base}/api/auth/signup", json=body) as response:
            account = await response.json()
        headers = {"X-CSRF-Token": account["csrf_token"]}
        async with session.post(f"{base}/api/tokens", json={"name": "t"}, headers=headers) as r:
            return (await r.json())["token"], account["id"]


async def _stored(settings: Settings, user_id: int) -> list[str]:
    async with Runtime(settings, load_entry_points=False) as rt:
        return [m.content for m in await rt.history.page(Scope("sage", user_id), "web:default")]


async def _chat_during_shutdown(
    runner: web.AppRunner, base: str, token: str
) -> tuple[list[Any], list[Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as client,
        aconnect_sse(client, "GET", "/api/events") as events,
        aconnect_sse(
            client, "POST", "/api/personas/sage/chat", json={"message": "hi", "stream": True}
        ) as chat,
    ):
        event_stream, chat_stream = events.aiter_sse(), chat.aiter_sse()
        received_events = [await anext(event_stream)]
        received = [await anext(chat_stream)]
        cleanup = asyncio.create_task(runner.cleanup())
        received += [event async for event in chat_stream]
        received_events += [event async for event in event_stream]
        await cleanup
    return received, received_events


async def test_shutdown_lets_a_reply_in_flight_finish_and_closes_event_streams(
    running: tuple[web.AppRunner, str], fake_ollama: FakeOllama, settings: Settings
) -> None:
    runner, base = running
    token, user_id = await _token(base)
    fake_ollama.reply_with(["one ", "two ", "three ", "four"])
    fake_ollama.chunk_delay = 0.05

    received, events = await _chat_during_shutdown(runner, base, token)

    assert [e.event for e in received] == ["chunk"] * 4 + ["done"]
    assert [e.event for e in events] == ["ready", "shutdown"]
    assert await _stored(settings, user_id) == ["hi", "one two three four"]


@pytest.mark.parametrize("web_overrides", [{"shutdown_timeout_seconds": 0.2}])
async def test_a_reply_that_outlasts_shutdown_ends_with_an_error_event_and_stores_nothing(
    running: tuple[web.AppRunner, str], fake_ollama: FakeOllama, settings: Settings
) -> None:
    runner, base = running
    token, user_id = await _token(base)
    fake_ollama.reply_with(["one ", "two ", "three ", "four"])
    fake_ollama.chunk_delay = 0.4

    received, _ = await _chat_during_shutdown(runner, base, token)

    assert received[0].event == "chunk"
    assert received[-1].event == "error"
    assert received[-1].json()["title"] == "Shutting down"
    assert await _stored(settings, user_id) == []


async def test_the_app_mounts_inside_an_embedders_application(settings: Settings) -> None:
    async def host_page(request: web.Request) -> web.Response:
        return web.Response(text="the host app")

    parent = web.Application()
    parent.router.add_get("/", host_page)
    parent.add_subapp("/personae", init_app(settings, accounts=AccountStore(FAST_HASHER)))
    runner = web.AppRunner(parent)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/") as host:
                assert await host.text() == "the host app"
            async with session.get(f"{base}/personae/readyz") as ready:
                assert ready.status == 200
            async with session.get(f"{base}/personae/api/me") as me:
                assert me.status == 401
                assert me.content_type == "application/problem+json"
    finally:
        await runner.cleanup()


async def test_a_served_app_moves_its_startup_objects_out_of_the_collectors_view(
    settings: Settings,
) -> None:
    import gc

    from personae.adapters.web.app import freeze_startup_objects

    app = init_app(settings, accounts=AccountStore(FAST_HASHER))
    app.on_startup.append(freeze_startup_objects)  # what `personae serve` adds
    runner = web.AppRunner(app)
    gc.unfreeze()
    try:
        await runner.setup()
        frozen = gc.get_freeze_count()
        assert runtime_started(app)  # it ran after the runtime's startup...
        assert frozen > 10_000  # ...so the runtime's objects are frozen too
    finally:
        await runner.cleanup()
        gc.unfreeze()


def runtime_started(app: web.Application) -> bool:
    from personae.adapters.web.keys import RUNTIME

    return bool(app[RUNTIME].started)
