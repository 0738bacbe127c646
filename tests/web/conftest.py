"""Fixtures for the HTTP service: the real app on a loopback test server, real
HTTP clients for several users, and FakeOllama behind the runtime.

Web tests run on SQLite only, except those marked ``both_databases``, which
also run on PostgreSQL (the authorization matrix and a few core flows).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from personae.adapters.web import init_app
from personae.core.plugins import DEFAULT_PLUGINS
from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.storage.accounts import AccountStore
from personae.testing.fake_ollama import FakeOllama

TABLES = (
    "users, identities, personas, conversations, messages, memory_items, memory_revisions, "
    "follow_ups, api_tokens, web_sessions, link_codes, plugin_state, voice_samples, voice_usage, "
    "memory_versions"
)
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""Still Argon2id, with cheap parameters so tests can create many accounts."""
PASSWORD = "correct horse battery"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_databases: run this web test on PostgreSQL as well as SQLite"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_kind" in metafunc.fixturenames:
        kinds: list[Any] = ["sqlite"]
        if metafunc.definition.get_closest_marker("both_databases"):
            kinds.append(pytest.param("postgres", marks=pytest.mark.postgres))
        metafunc.parametrize("db_kind", kinds)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, db_kind: str, tmp_path: Path) -> str:
    if db_kind == "sqlite":
        return f"sqlite://{tmp_path / 'personae.db'}"
    url: str = request.getfixturevalue("postgres_url")

    async def truncate() -> None:
        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=5)
        try:
            await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        except asyncpg.UndefinedTableError:
            pass
        finally:
            await conn.close()

    asyncio.run(truncate())
    return url


def _missing_plugins() -> list[str]:
    """Built-in plugins whose module is not in this tree yet (other work in
    progress); the web tests do not depend on them."""
    return [
        path.rsplit(".", 1)[-1]
        for path in DEFAULT_PLUGINS
        if importlib.util.find_spec(path) is None
    ]


@pytest.fixture
def web_overrides() -> dict[str, Any]:
    """Override in a test module to change the [web] settings."""
    return {}


@pytest.fixture
def settings(
    tmp_path: Path, fake_ollama: FakeOllama, db_url: str, web_overrides: dict[str, Any]
) -> Settings:
    web = {
        "login_rate_per_minute": 0,
        "chat_rate_per_minute": 0,
        "signup_rate_per_minute": 0,
        "signup_global_rate_per_minute": 0,
    } | web_overrides
    return Settings(
        disabled_plugins=_missing_plugins(),
        data_dir=tmp_path / "data",
        database_url=db_url,
        ollama={"host": fake_ollama.url, "read_timeout": 5.0, "retries": 1, "retry_backoff": 0.01},
        web=web,
    )


@pytest.fixture
async def server(settings: Settings, runtime: Runtime) -> AsyncIterator[TestServer]:
    app = init_app(settings, runtime=runtime, accounts=AccountStore(FAST_HASHER))
    async with TestServer(app, host="127.0.0.1") as test_server:
        yield test_server


@dataclass
class Response:
    status: int
    headers: Any
    body: bytes
    data: Any = None

    @property
    def content_type(self) -> str:
        return str(self.headers.get("Content-Type", "")).split(";")[0]


@dataclass
class Caller:
    """One HTTP client (its own cookie jar), authenticated by token or cookie."""

    session: aiohttp.ClientSession
    token: str | None = None
    csrf: str | None = None
    account: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return int(self.account["id"])

    async def call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Response:
        sent = dict(headers or {})
        if self.token and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token}"
        if self.csrf and "X-CSRF-Token" not in sent:
            sent["X-CSRF-Token"] = self.csrf
        async with self.session.request(method, path, headers=sent, **kwargs) as response:
            body = await response.read()
            data = None
            if "json" in response.headers.get("Content-Type", ""):
                data = await response.json(content_type=None)
            return Response(response.status, response.headers, body, data)

    async def get(self, path: str, **kwargs: Any) -> Response:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Response:
        return await self.call("POST", path, **kwargs)


MakeCaller = Callable[..., Awaitable[Caller]]


@pytest.fixture
async def make_caller(server: TestServer) -> AsyncIterator[MakeCaller]:
    """``await make_caller("alice")`` signs up alice and returns a token client;
    ``via="session"`` returns a cookie client; ``None`` an anonymous one."""
    sessions: list[aiohttp.ClientSession] = []

    async def make(username: str | None = None, *, via: str = "token") -> Caller:
        session = aiohttp.ClientSession(
            base_url=str(server.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        sessions.append(session)
        caller = Caller(session)
        if username is None:
            return caller
        credentials = {"username": username, "password": PASSWORD}
        signed = await caller.post("/api/auth/signup", json=credentials)
        assert signed.status == 201, signed.data
        caller.account = signed.data
        caller.csrf = signed.data["csrf_token"]
        if via == "token":
            made = await caller.post("/api/tokens", json={"name": "tests"})
            assert made.status == 201, made.data
            session.cookie_jar.clear()
            caller.csrf = None
            caller.token = made.data["token"]
        return caller

    yield make
    for session in sessions:
        await session.close()


@pytest.fixture
async def alice(make_caller: MakeCaller) -> Caller:
    """The first account (so an administrator)."""
    return await make_caller("alice")


@pytest.fixture
async def bob(make_caller: MakeCaller, alice: Caller) -> Caller:
    return await make_caller("bob")


@pytest.fixture
async def anonymous(make_caller: MakeCaller) -> Caller:
    return await make_caller(None)


def parse_sse(body: bytes) -> list[tuple[str, str]]:
    """(event, data) pairs of a complete event-stream body, for quick checks
    (the SSE tests use httpx-sse as the real client)."""
    events = []
    for block in body.decode().split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            events.append((name, "\n".join(data)))
    return events


def png_bytes(size: tuple[int, int] = (64, 48), color: str = "teal", **info: str) -> bytes:
    """A small PNG made with Pillow (text chunks from ``info``)."""
    import io

    from PIL import Image, PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    for key, value in info.items():
        meta.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG", pnginfo=meta)
    return out.getvalue()
