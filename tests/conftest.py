"""Shared fixtures: a loopback fake Ollama, SQLite and PostgreSQL databases, a runtime.

PostgreSQL tests use ``PERSONAE_TEST_POSTGRES`` (default
``postgres://postgres@127.0.0.1:5432/test``): the session creates its own database
there, truncates it between tests and drops it at the end. Outside CI they are
skipped when the server is unreachable; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.testing.fake_ollama import FakeOllama, RecordedRequest

PG_ADMIN_URL = os.environ.get("PERSONAE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
TABLES = (
    "users, identities, personas, conversations, messages, memory_items, memory_revisions, "
    "follow_ups, api_tokens, web_sessions, link_codes, plugin_state, voice_samples, voice_usage, "
    "memory_versions, conversation_summaries"
)


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _pg_execute(sql: str, url: str = PG_ADMIN_URL) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"personae_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {exc}")
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    yield _with_database(PG_ADMIN_URL, name)
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs once on SQLite (a temp file) and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'personae.db'}"
    url: str = request.getfixturevalue("postgres_url")

    async def truncate() -> None:
        try:
            await _pg_execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE", url)
        except asyncpg.UndefinedTableError:
            pass  # first test: migrations have not run yet

    asyncio.run(truncate())
    return url


@pytest.fixture
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as fake:
        yield fake


def reply_prompts(fake: FakeOllama) -> list[RecordedRequest]:
    """The persona-reply chat requests the fake received: streamed, not the
    structured-output calls plugins make in the background (profile extraction)
    nor the conversation summaries (neither streams). A reply's request may end
    with the card's post-history instructions, after the user's message."""
    return [
        r
        for r in fake.requests_to("/api/chat")
        if not r.json.get("format") and r.json.get("stream", True) is not False
    ]


def user_text(request: RecordedRequest) -> str:
    """The newest user message of a chat request (the turn's own system message,
    with recalled memory and instructions, may follow it)."""
    return str([m for m in request.json["messages"] if m["role"] == "user"][-1]["content"])


def system_text(request: RecordedRequest) -> str:
    """Every system message of a chat request (the card's first, the turn's last)."""
    return "\n\n".join(m["content"] for m in request.json["messages"] if m["role"] == "system")


def make_settings(tmp_path: Path, fake: FakeOllama, db_url: str, **overrides: Any) -> Settings:
    ollama = {"host": fake.url, "read_timeout": 5.0, "retries": 1, "retry_backoff": 0.01}
    ollama.update(overrides.pop("ollama", {}))
    return Settings(data_dir=tmp_path / "data", database_url=db_url, ollama=ollama, **overrides)


@pytest.fixture
def settings(tmp_path: Path, fake_ollama: FakeOllama, db_url: str) -> Settings:
    return make_settings(tmp_path, fake_ollama, db_url)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime(settings, load_entry_points=False)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()
