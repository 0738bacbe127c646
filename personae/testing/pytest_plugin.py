"""pytest fixtures for plugin authors, loaded automatically when personae is
installed (a ``pytest11`` entry point).

- ``personae_fake_ollama``: a started :class:`~personae.testing.fake_ollama.FakeOllama`.
- ``personae_settings``: settings with a temporary SQLite database and data folder,
  pointing at the fake Ollama.
- ``personae_runtime``: a started runtime with the built-in plugins and every
  installed plugin, stopped after the test.

The fixtures are async; tests need pytest-asyncio (``asyncio_mode = "auto"``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.core.runtime import Runtime
from personae.core.settings import Settings
from personae.testing.fake_ollama import FakeOllama


@pytest.fixture
async def personae_fake_ollama() -> AsyncIterator[FakeOllama]:
    async with FakeOllama() as fake:
        yield fake


@pytest.fixture
def personae_settings(tmp_path: Path, personae_fake_ollama: FakeOllama) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite://{tmp_path / 'personae.db'}",
        ollama={"host": personae_fake_ollama.url, "retries": 0, "read_timeout": 10.0},
    )


@pytest.fixture
async def personae_runtime(personae_settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(personae_settings)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
