"""End-to-end fixtures: the real app on 127.0.0.1 (a random port) with the fake
Ollama behind it, and headless Chromium driven by Playwright.

The server runs in a thread with its own event loop for the whole session, so
the tests use Playwright's sync API. Chromium is the system one
(``/usr/bin/chromium``); Playwright never downloads a browser. Without it the
tests are skipped, except in CI (``CI=true``) where they fail.

Screenshots go to ``test-artifacts/screenshots/`` at the repository root.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from argon2 import PasswordHasher

from personae.adapters.web import init_app
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.storage.accounts import AccountStore
from personae.testing.fake_ollama import FakeChatRequest, FakeOllama

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"
CHAT_RATE = 8
"""Chat turns per user per minute; each test uses its own account."""

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
FACTS = {
    "my cat is called miso": "Has a cat called Miso",
    "miso is my cat": "The user has a cat called miso.",
}
"""What the fake model "learns": a phrase in the conversation -> the note."""
FOLLOW_UP = "How is Miso doing today?"
STORY = (
    "Once upon a time a small lantern kept watch over a quiet harbour, and every "
    "night it told the fishing boats where the rocks were hiding beneath the waves."
)

T = TypeVar("T")


def respond(request: FakeChatRequest) -> str:
    """The scripted model: profile extraction learns FACTS, curiosity asks
    FOLLOW_UP, "tell me a story" gets STORY, anything else an echo."""
    title = request.format.get("title") if isinstance(request.format, dict) else None
    if title == "personae_profile_extraction":
        known, _, conversation = str(request.messages[-1]["content"]).partition("Conversation:")
        items = [
            {"action": "add", "kind": "fact", "text": note, "confidence": 0.9}
            for phrase, note in FACTS.items()
            if phrase in conversation.lower() and note not in known
        ]
        return json.dumps({"items": items})
    if title == "personae_curiosity_question":
        return json.dumps({"ask": True, "topic": "the cat", "question": FOLLOW_UP})
    if "tell me a story" in request.last_user_message.lower():
        return STORY
    return f"Nice to hear from you. You said: {request.last_user_message}"


def e2e_settings(tmp: Path, ollama_url: str) -> Settings:
    # Only "high" curiosity personas ask follow-ups (after one exchange and 1 s of
    # silence), so that follow-ups appear only in the test that wants them.
    never = {"cooldown_seconds": 0, "max_per_window": 0}
    return Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite://{tmp / 'personae.db'}",
        ollama={"host": ollama_url, "read_timeout": 5.0, "retries": 1, "retry_backoff": 0.01},
        web={
            "login_rate_per_minute": 0,
            "chat_rate_per_minute": CHAT_RATE,
            "signup_rate_per_minute": 0,
            "signup_global_rate_per_minute": 0,
        },
        plugin_settings={
            "profile": {"extract_after_messages": 1, "tick_seconds": 0.5},
            "curiosity": {
                "mode": "separate",
                "idle_seconds": 1.0,
                "min_exchanges": 1,
                "tick_seconds": 0.3,
                "levels": {"low": never, "medium": never},
            },
        },
    )


@dataclass
class LiveServer:
    """The app and the fake Ollama, running on a loop in a background thread."""

    url: str
    fake: FakeOllama
    runtime: Runtime
    loop: asyncio.AbstractEventLoop

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=30)


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("e2e")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="e2e-server", daemon=True)
    thread.start()

    async def start() -> tuple[LiveServer, web.AppRunner]:
        fake = FakeOllama()
        await fake.start()
        fake.reply_with(respond)
        fake.chunk_delay = 0.03
        runtime = Runtime(e2e_settings(tmp, fake.url), load_entry_points=False)
        await runtime.start()
        app = init_app(runtime.settings, runtime=runtime, accounts=AccountStore(FAST_HASHER))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return LiveServer(f"http://127.0.0.1:{port}", fake, runtime, loop), runner

    server, runner = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)

    async def stop() -> None:
        await runner.cleanup()
        await server.runtime.stop()
        await server.fake.stop()

    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"end-to-end tests need Chromium at {CHROMIUM} (apt install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A fresh browser profile (no cookies) at desktop size."""
    ctx = browser.new_context(base_url=live_server.url, viewport=DESKTOP, accept_downloads=True)
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


_users = iter(range(1, 10_000))


@pytest.fixture
def username(request: pytest.FixtureRequest) -> str:
    """A fresh user name per test (the server lives for the whole session)."""
    return f"{request.node.name[5:20].strip('_').replace('_', '-')}-{next(_users)}"


def sign_up(page: Any, username: str) -> None:
    """Create an account through the sign-up form; ends on the chat page."""
    page.goto("/#/login")
    page.get_by_role("button", name="New here? Create an account").click()
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/#/chat")
    page.get_by_label("Talking to").wait_for()


def api(page: Any, method: str, path: str, data: Any = None) -> Any:
    """Call the API as the page's logged-in user (cookie + CSRF header), for
    setting up what a test is not about."""
    me = page.request.get("/api/me").json()
    response = page.request.fetch(
        path, method=method, headers={"X-CSRF-Token": me["csrf_token"]}, data=data
    )
    assert response.ok, (response.status, response.text())
    return response.json() if "json" in response.headers.get("content-type", "") else None


def create_persona(page: Any, name: str, **fields: Any) -> dict[str, Any]:
    """A custom persona made through the API (ids are global: a unique one)."""
    unique = f"{name.lower().replace(' ', '-')}-{next(_users)}"
    return api(page, "POST", "/api/personas", {"name": name, "id": unique, **fields})


def upload_avatar(page: Any, persona_id: str, image: Path) -> None:
    me = page.request.get("/api/me").json()
    response = page.request.put(
        f"/api/personas/{persona_id}/avatar",
        multipart={"file": image},
        headers={"X-CSRF-Token": me["csrf_token"]},
    )
    assert response.ok, response.text()


def png_file(path: Path, color: str = "orange") -> Path:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (96, 96), color).save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot under test-artifacts/screenshots/ (the whole page, or
    the viewport: modal dialogs cover only the viewport)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    target = SCREENSHOTS / f"{name}-{'phone' if width < 720 else 'desktop'}.png"
    page.screenshot(path=str(target), full_page=full_page)
    return target
